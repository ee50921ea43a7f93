"""W&B runs offline inside each test's folder: nothing reaches a server, nothing is read from the developer's
W&B settings or credentials. The `mlflow_server` fixture (for the multi-tracker example) is in tests/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

WANDB_DIRS = ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")


def wandb_environment(root: Path) -> dict[str, str]:
    """Offline W&B with every folder it writes to (and reads settings from) inside `root`."""
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "NETRC": str(root / "no-netrc")}
    for key in WANDB_DIRS:
        folder = root / key.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[key] = str(folder)
    return env


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith("WANDB_"):
            monkeypatch.delenv(key)
    env = wandb_environment(tmp_path / "wandb-home")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
