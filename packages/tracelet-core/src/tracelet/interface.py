"""The module-level API: one active experiment per process (the slot itself lives in `tracelet.core.engine.lifecycle`)."""

from __future__ import annotations

import logging
from typing import Any, cast

from tracelet.core.engine import lifecycle
from tracelet.core.experiment import Experiment
from tracelet.core.run.config import ExperimentConfig
from tracelet.settings import TraceletSettings, parse_list

logger = logging.getLogger("tracelet")


def start_logging(
    exp_name: str,
    project: str | None = None,
    backend: str | list[str] | None = None,
    config: dict[str, Any] | None = None,
) -> Experiment:
    """Start tracking: create, start and activate an experiment (usable as a context manager too)."""
    backends = parse_list(backend) if isinstance(backend, str) else backend  # "mlflow,wandb" names two
    settings = TraceletSettings.resolve(config, project=project, backend=backends)
    experiment = Experiment(
        exp_name,
        config=ExperimentConfig.from_mapping(config, settings),  # e.g. track_metrics=False: not a global setting
        backend=settings.backend,
        project=settings.project,
        settings=settings,
        options=config,
    )
    previous = lifecycle.activate(None)
    if previous is not None and not lifecycle.inherited(previous):  # a forked child's: its parent's to stop
        logger.warning("tracelet: start_logging stops the active experiment %r first", previous.name)
        previous.stop()
    experiment.start()
    lifecycle.activate(experiment)
    return experiment


def stop_logging() -> None:
    """Stop the active experiment, delivering everything it logged."""
    experiment = lifecycle.activate(None)
    if experiment is not None:
        experiment.stop()


def get_active_experiment() -> Experiment | None:
    """The active experiment, or None."""
    return cast("Experiment | None", lifecycle.active())
