"""What plugins may use of the experiment they serve (`framework_instrument(experiment)`, collector hooks).

A Protocol, not the `Experiment` class, so the plugin contract (`tracelet.core.plugins`) does not depend on the
experiment's module, and a plugin's tests can hand in any object with these members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tracelet.core.run.config import ExperimentConfig
    from tracelet.settings import TraceletSettings


class InstrumentedExperiment(Protocol):
    """The experiment as a framework integration sees it."""

    @property
    def name(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def iteration(self) -> int: ...

    #: The effective per-experiment settings; `config.enable_automagic` says whether automatic capture
    #: beyond metrics (hyperparameters, models) is wanted.
    config: ExperimentConfig
    #: The global settings the run resolved (`metrics_interval`, `dir`, ...).
    settings: TraceletSettings

    #: The experiment's config dict (`start_logging(config=...)`); integrations read their own keys from it.
    options: dict[str, Any]

    def log_metric(self, name: str, value: Any, iteration: int | None = None) -> None: ...

    def log_metric_at(self, name: str, value: Any, iteration: int | None, timestamp: float | None) -> None: ...

    def create_artifact(self, name: str, artifact_type: Any, description: str | None = None) -> Any: ...

    def log_params(self, params: dict[str, Any]) -> None: ...

    def set_tags(self, tags: dict[str, Any]) -> None: ...

    def set_iteration(self, iteration: int) -> None: ...

    def log_artifact(self, artifact: Any, *, wait: bool | float = False) -> dict[str, Any]: ...

    def skip_capture(self, path: Any) -> None: ...

    def capture_skipped(self, path: Any) -> bool: ...
