"""What plugins may use of the experiment they serve (`framework_instrument(experiment)`, collector hooks).

Protocols, not the `Experiment` and `ExperimentConfig` classes, so the plugin contract (`tracelet.core.plugins`)
depends on neither the experiment's module nor the run layer (`tracelet.core.run`), and a plugin's tests can hand
in any object with these members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tracelet.settings import TraceletSettings


class RunConfig(Protocol):
    """The experiment's switches, as plugins and the artifact manager read them (`ExperimentConfig` has them all;
    the README's "What is captured" table says what each does)."""

    @property
    def track_metrics(self) -> bool: ...

    @property
    def track_environment(self) -> bool: ...

    @property
    def track_args(self) -> bool: ...

    @property
    def track_stdout(self) -> bool: ...

    @property
    def track_checkpoints(self) -> bool: ...

    @property
    def track_system_metrics(self) -> bool: ...

    @property
    def track_git(self) -> bool: ...

    @property
    def enable_automagic(self) -> bool: ...

    @property
    def automagic_frameworks(self) -> set[str] | None: ...

    @property
    def enable_artifacts(self) -> bool: ...

    @property
    def automagic_artifacts(self) -> bool: ...

    @property
    def artifact_watch_dirs(self) -> list[str] | None: ...

    @property
    def watch_filesystem(self) -> bool: ...


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
    @property
    def config(self) -> RunConfig: ...

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
