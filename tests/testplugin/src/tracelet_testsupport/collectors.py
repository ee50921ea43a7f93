"""Helpers for the collector tests: build a run with chosen switches, read back what the local store kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracelet import Experiment
from tracelet.core.run.config import ExperimentConfig
from tracelet.settings import TraceletSettings
from tracelet.store import LocalRun

ALL_OFF = dict(
    track_metrics=True,
    track_environment=False,
    track_args=False,
    track_stdout=False,
    track_checkpoints=False,
    track_system_metrics=False,
    track_git=False,
)


def make_experiment(
    name: str = "collect",
    backend: list[str] | None = None,
    settings: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    **switches: Any,
) -> Experiment:
    """An experiment with every collector switch off except those given (local store, short interval)."""
    config = ExperimentConfig(**{**ALL_OFF, **switches})
    resolved = TraceletSettings.resolve({"metrics_interval": 0.2, "env_packages": True, **(settings or {})})
    return Experiment(name, config=config, backend=backend or ["local"], settings=resolved, options=options)


def stored(exp: Experiment) -> LocalRun:
    assert exp.run_dir is not None
    return LocalRun(exp.run_dir)


def run_json(exp: Experiment) -> dict[str, Any]:
    assert exp.run_dir is not None
    return json.loads((Path(exp.run_dir) / "run.json").read_text())
