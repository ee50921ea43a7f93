"""Tracelet's pytest plugin (entry point ``pytest11``: ``tracelet``), loaded by pytest wherever tracelet is
installed. It only defines fixtures, so it costs nothing until a test asks for one; the conformance kit
itself is `tracelet.testing.BackendConformance` (a base class), not a fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def tracelet_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean Tracelet environment for one test: no ``TRACELET_*`` variables from the shell, the local store
    in ``tmp_path/tracelet-runs``, no system metrics; any run still active is stopped afterwards."""
    for key in list(os.environ):
        if key.startswith("TRACELET_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TRACELET_DIR", str(tmp_path / "tracelet-runs"))
    monkeypatch.setenv("TRACELET_TRACK_SYSTEM", "false")
    yield tmp_path / "tracelet-runs"
    import tracelet

    tracelet.stop_logging()
