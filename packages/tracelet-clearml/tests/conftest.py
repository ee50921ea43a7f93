"""ClearML tests run offline, with HOME and CLEARML_CACHE_DIR in a temporary folder: no clearml.conf, no
credentials, and nothing written into the developer's own home or cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clearml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bare HOME and ClearML cache for each test; ClearML settings from the developer's shell removed."""
    for key in list(os.environ):
        if key.startswith(("CLEARML_", "TRAINS_", "TRACELET_")):
            monkeypatch.delenv(key)
    for key in ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID"):
        # ClearML marks a process that opens a task in these; a user-opened task in a test leaves the mark, which
        # later tests' child processes would inherit. Recorded as absent, so the test's end removes it again.
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml-cache"))
    monkeypatch.setenv("TRACELET_DIR", str(tmp_path / "runs"))
    return home


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "clearml-cache"
