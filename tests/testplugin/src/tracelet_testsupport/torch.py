"""Helpers shared by the tracelet-torch tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FAST = {"track_system": False, "track_git": False, "track_env": False}


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
