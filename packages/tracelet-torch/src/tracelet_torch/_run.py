"""The run a Lightning logger, accelerate tracker or Trainer callback logs into when it was given none: the
script's active run (left running), else one it starts with its own arguments and ends itself."""

from __future__ import annotations

from typing import Any

import tracelet
from tracelet.plugin import RunStatus


def active_or_start(
    name: str, project: str | None, backend: str | list[str] | None, config: dict[str, Any] | None
) -> tuple[Any, bool]:
    """The run to log into and whether the caller owns it: the active experiment (not owned), else one started
    with these `start_logging` arguments (owned: the caller ends it)."""
    active = tracelet.get_active_experiment()
    if active is not None:
        return active, False
    return tracelet.start_logging(name, project=project, backend=backend, config=config), True


def end_own(experiment: Any, status: RunStatus) -> None:
    """Stop a run the caller started with `status`, and forget it as the active one (it is stopped already:
    nothing more happens)."""
    experiment.stop(status=status)
    if tracelet.get_active_experiment() is experiment:
        tracelet.stop_logging()
