"""The module-level API: one active experiment per process."""

from __future__ import annotations

import logging
import threading
from typing import Any

from tracelet.core.experiment import Experiment
from tracelet.settings import TraceletSettings, parse_list

logger = logging.getLogger("tracelet")

_active: Experiment | None = None
_lock = threading.Lock()


def start_logging(
    exp_name: str,
    project: str | None = None,
    backend: str | list[str] | None = None,
    config: dict[str, Any] | None = None,
) -> Experiment:
    """Start tracking: create, start and activate an experiment (usable as a context manager too)."""
    global _active
    backends = parse_list(backend) if isinstance(backend, str) else backend  # "mlflow,wandb" names two
    settings = TraceletSettings.resolve(config, project=project, backend=backends)
    experiment = Experiment(
        exp_name, backend=settings.backend, project=settings.project, settings=settings, options=config
    )
    with _lock:
        previous, _active = _active, None
    if previous is not None:
        logger.warning("tracelet: start_logging stops the active experiment %r first", previous.name)
        previous.stop()
    experiment.start()
    with _lock:
        _active = experiment
    return experiment


def stop_logging() -> None:
    """Stop the active experiment, delivering everything it logged."""
    global _active
    with _lock:
        experiment, _active = _active, None
    if experiment is not None:
        experiment.stop()


def get_active_experiment() -> Experiment | None:
    """The active experiment, or None."""
    return _active


def _forget(experiment: Experiment) -> None:
    global _active
    with _lock:
        if _active is experiment:
            _active = None
