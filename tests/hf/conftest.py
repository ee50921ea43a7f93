"""Fixtures for the Hugging Face tests: tiny models from configs on CPU, nothing downloaded."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pytest

from tracelet_testsupport.mlflow import copy_sqlite_store

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is fetched; a test that tried would fail
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore", ".*does not have many workers.*")
logging.getLogger("transformers").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def no_ambient_trackers(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_MODE", "WANDB_PROJECT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def sqlite_uri(tmp_path: Path, mlflow_sqlite_template: Path) -> str:
    """A fresh, empty MLflow sqlite store of the test's own (a copy of the session's empty one)."""
    return copy_sqlite_store(mlflow_sqlite_template, tmp_path / "store" / "mlflow.db")
