"""Fixtures and helpers of the tracelet-torch tests (and the Hugging Face ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

FAST = {"track_system": False, "track_git": False, "track_env": False}


@pytest.fixture(autouse=True)
def no_ambient_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def sqlite_uri(tmp_path: Path, mlflow_sqlite_template: Path) -> str:
    """A fresh, empty MLflow sqlite store of the test's own (a copy of the session's empty one)."""
    from tracelet_testsupport.mlflow import copy_sqlite_store

    return copy_sqlite_store(mlflow_sqlite_template, tmp_path / "store" / "mlflow.db")


def event_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall_time)] as TensorBoard itself reads the event files under `logdir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def store_points(run_id: str) -> dict[str, list[tuple[int, float, float]]]:
    from tracelet.store import open_run

    return {k: [(m.step, m.value, m.timestamp) for m in v] for k, v in open_run(run_id).metrics().items()}


def config(**extra: Any) -> dict[str, Any]:
    return {**FAST, **extra}
