"""The plugin contract: pluggy hookspecs that backends, frameworks and collectors implement.

A plugin is published through an entry point in one of the groups `tracelet.backends`, `tracelet.frameworks`
or `tracelet.collectors`. The entry point names a class (instantiated once per run, so per-run state lives on
the instance) or a module (registered as it is). Its hook implementations are marked with
`tracelet.hookimpl` and may accept any subset of a hook's arguments, as in pytest.

Each hook lives in exactly one spec class: pluggy refuses a hook specified twice, so the classes share no
hooks and do not inherit from each other. The core calls every backend on that backend's own worker thread,
through a plugin manager that holds only that backend, so one raising plugin never stops another.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

if TYPE_CHECKING:
    from tracelet.core.artifacts import ArtifactResult, ArtifactType, TraceletArtifact
    from tracelet.core.experiment import Experiment
    from tracelet.core.records import Metric, RunContext, RunStatus

PROJECT_NAME = "tracelet"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class PluginType(enum.Enum):
    """What a plugin does; each type has its own entry-point group."""

    BACKEND = "backend"
    FRAMEWORK = "framework"
    COLLECTOR = "collector"


ENTRY_POINT_GROUPS: dict[PluginType, str] = {
    PluginType.BACKEND: "tracelet.backends",
    PluginType.FRAMEWORK: "tracelet.frameworks",
    PluginType.COLLECTOR: "tracelet.collectors",
}


@attrs.define
class PluginMetadata:
    """Describes a plugin to `tracelet plugins` and to the orchestrator."""

    name: str
    version: str
    description: str = ""
    type: PluginType = PluginType.BACKEND
    distribution: str | None = None
    homepage: str | None = None
    capabilities: list[str] = attrs.field(factory=list)


class PluginInterface:
    """Lifecycle hooks common to every plugin."""

    @hookspec(firstresult=True)
    def plugin_metadata(self) -> PluginMetadata | None:
        """Return the plugin's metadata (name, version, description, type)."""

    @hookspec
    def plugin_setup(self, config: dict[str, Any]) -> None:
        """Prepare the plugin with the configuration addressed to it, before any other hook of a run."""

    @hookspec
    def plugin_teardown(self) -> None:
        """Release what `plugin_setup` acquired; called once, after the run has ended."""


class BackendPlugin:
    """Hooks of an experiment-tracking backend.

    Delivery hooks run on the backend's own worker thread, in logging order; raising from one has the batch
    retried with capped backoff until the run's stop deadline. Artifact hooks: `backend_accepts_artifact` and
    `backend_snapshot_artifact` run on the caller's thread inside `log_artifact` (decide and snapshot, no
    uploads); `backend_log_artifact` runs on the worker and is tried 3 times, after which its ArtifactResult
    carries the error; `backend_get_artifact` / `backend_list_artifacts` answer the caller. Types the user
    routes explicitly (config `artifact_routing`) skip `backend_accepts_artifact`.
    """

    @hookspec(firstresult=True)
    def backend_start_run(self, run: RunContext) -> dict[str, Any] | None:
        """Open a run in the tracker; return details to record, such as its id or URL."""

    @hookspec
    def backend_log_metrics(self, metrics: list[Metric], run: RunContext) -> None:
        """Deliver a batch of metric points, in logging order."""

    @hookspec
    def backend_log_params(self, params: dict[str, Any], run: RunContext) -> None:
        """Deliver parameters (merged in logging order; a later value of a key wins)."""

    @hookspec
    def backend_log_tags(self, tags: dict[str, str], run: RunContext) -> None:
        """Deliver key/value tags."""

    @hookspec(firstresult=True)
    def backend_accepts_artifact(self, artifact: TraceletArtifact, run: RunContext) -> bool | None:
        """Return False to decline an artifact (by type or size); None or True accepts it."""

    @hookspec(firstresult=True)
    def backend_snapshot_artifact(
        self, artifact: TraceletArtifact, staging_dir: str, run: RunContext
    ) -> dict[str, Any] | None:
        """Save backend-specific forms of live objects under `staging_dir`; return plain data for the upload."""

    @hookspec(firstresult=True)
    def backend_log_artifact(
        self, artifact: TraceletArtifact, snapshot: dict[str, Any] | None, run: RunContext
    ) -> ArtifactResult | None:
        """Store an artifact whose files are snapshots owned by the run; return where it went."""

    @hookspec(firstresult=True)
    def backend_get_artifact(self, name: str, version: str, run: RunContext) -> TraceletArtifact | None:
        """Return the named artifact at `version` ("latest", "v1", ...), or None when absent."""

    @hookspec(firstresult=True)
    def backend_list_artifacts(
        self, type_filter: ArtifactType | None, run: RunContext
    ) -> list[TraceletArtifact] | None:
        """Return the run's artifacts, optionally only those of one type."""

    @hookspec
    def backend_flush(self, run: RunContext) -> None:
        """Push anything the backend buffers itself to the tracker."""

    @hookspec
    def backend_end_run(self, status: RunStatus, run: RunContext) -> None:
        """Close the run in the tracker with its final status, after everything was delivered."""


class FrameworkPlugin:
    """Hooks of an ML-framework integration that feeds the experiment without code changes."""

    @hookspec
    def framework_instrument(self, experiment: Experiment) -> None:
        """Patch the framework so what it emits reaches `experiment`."""

    @hookspec
    def framework_uninstrument(self, experiment: Experiment) -> None:
        """Undo `framework_instrument`."""

    @hookspec(firstresult=True)
    def framework_describe_model(self, model: Any) -> dict[str, Any] | None:
        """Return facts about a model (parameter count, layers, ...), or None when it is not this framework's."""

    @hookspec(firstresult=True)
    def framework_describe_dataset(self, dataset: Any) -> dict[str, Any] | None:
        """Return facts about a dataset (size, shapes, ...), or None when it is not this framework's."""


class CollectorPlugin:
    """Hooks of a periodic metric source (system, GPU, ...)."""

    @hookspec
    def collector_sample(self) -> dict[str, float] | None:
        """Return the current readings as metric name -> value."""


SPEC_CLASSES: tuple[type, ...] = (PluginInterface, BackendPlugin, FrameworkPlugin, CollectorPlugin)


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows every Tracelet hook."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    for spec in SPEC_CLASSES:
        pm.add_hookspecs(spec)
    return pm
