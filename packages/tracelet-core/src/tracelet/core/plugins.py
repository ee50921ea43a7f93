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

import difflib
import enum
import inspect
import logging
import threading
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tracelet.core.artifacts.kinds import ArtifactType
    from tracelet.core.artifacts.model import ArtifactResult, TraceletArtifact
    from tracelet.core.protocols import InstrumentedExperiment as Experiment
    from tracelet.core.records import Metric, RunContext, RunStatus

logger = logging.getLogger("tracelet")

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

    @hookspec(firstresult=True)
    def framework_detect_hyperparams(self, value: Any) -> dict[str, Any] | None:
        """Return the hyperparameters an object of this framework holds (an optimizer's lr, momentum, ...), keyed
        relative to the variable that holds it; None when it is not this framework's. Called by
        `capture_hyperparams()` (`tracelet.core.hyperparams`) for objects the core's own rules do not take."""


class CollectorPlugin:
    """Hooks of a collector: what a run records about itself (system and GPU metrics, git, environment, ...).

    Order within one run: `collector_metadata` and `collector_start` on the thread that calls `start()` (both
    must be quick: no sampling, no waiting); then, on the run's one collector thread, a first
    `collector_sample`, `collector_begin` (slow one-off work) and a `collector_sample` every
    `metrics_interval` seconds; at `stop()` a last `collector_sample` on that thread, then `collector_stop` on
    the stopping thread. A raising hook is reported once per collector and kind of error; the run goes on.
    A collector class may name the `ExperimentConfig` switch that enables it in `config_switch`
    (default `"track_system_metrics"`).
    """

    @hookspec
    def collector_metadata(self, experiment: Experiment) -> dict[str, Any] | None:
        """Return run metadata to merge (redacted by the core), before any backend starts.

        :param experiment: the starting run (read its `config` and `settings`; do not log yet).
        """

    @hookspec
    def collector_start(self, experiment: Experiment) -> None:
        """Install what watches the run (patches, stream tees) on the thread that calls `start()`.

        :param experiment: the run, started: logging to it works.
        """

    @hookspec
    def collector_begin(self, experiment: Experiment) -> None:
        """Slow one-off work (reading a diff, listing packages) on the collector thread, after the first sample.

        :param experiment: the running run; log params and artifacts to it.
        """

    @hookspec
    def collector_sample(self) -> dict[str, float] | None:
        """Return the current readings as metric name -> value (on the collector thread)."""

    @hookspec
    def collector_stop(self, experiment: Experiment) -> None:
        """Undo `collector_start` and log what the run's end completes (a console log), after the last sample.

        :param experiment: the stopping run; artifacts logged here are still delivered.
        """


SPEC_CLASSES: tuple[type, ...] = (PluginInterface, BackendPlugin, FrameworkPlugin, CollectorPlugin)


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows every Tracelet hook."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    for spec in SPEC_CLASSES:
        pm.add_hookspecs(spec)
    return pm


def hook_names() -> list[str]:
    """Every hook a plugin may implement, in the order the spec classes declare them."""
    return [name for spec in SPEC_CLASSES for name in vars(spec) if name.startswith(_HOOK_PREFIXES)]


_HOOK_PREFIXES = ("plugin_", "backend_", "framework_", "collector_")
_IMPL_ATTR = PROJECT_NAME + "_impl"  # where pluggy's HookimplMarker leaves its options on a function
_warned_undecorated: set[tuple[str, str]] = set()
_warn_lock = threading.Lock()


def _members(plugin: Any) -> list[tuple[str, Any]]:
    """(attribute, value) pairs of a plugin's routines, looked up without running properties."""
    out = []
    for attr in dir(plugin):
        try:
            value = inspect.getattr_static(plugin, attr)
        except AttributeError:
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if inspect.isroutine(value):
            out.append((attr, value))
    return out


def hook_problems(plugin: Any) -> list[str]:
    """What is wrong with a plugin's hooks: each unknown `@hookimpl` name, with the closest real hook.

    A misspelled hook would otherwise be registered without a word and never called (pluggy keeps hooks it has
    no spec for, waiting for one; pytest rejects them with `check_pending`, and so does Tracelet).
    """
    known = hook_names()
    problems = []
    for attr, value in _members(plugin):
        opts = getattr(value, _IMPL_ATTR, None)
        if not isinstance(opts, dict):
            continue
        hook = opts.get("specname") or attr
        if hook in known:
            continue
        close = difflib.get_close_matches(hook, known, n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else f"; hooks are: {', '.join(known)}"
        problems.append(f"unknown hook `{hook}`{hint}")
    return problems


def warn_undecorated(plugin: Any, name: str) -> list[str]:
    """Warn (once per plugin class and method) about methods named like a hook but not marked `@hookimpl`.

    Returns the names of such methods. pluggy registers only marked methods, so these are never called.
    """
    known = set(hook_names())
    owner = plugin if isinstance(plugin, type) or inspect.ismodule(plugin) else type(plugin)
    owner_name = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
    found = []
    for attr, value in _members(plugin):
        if attr in known and not isinstance(getattr(value, _IMPL_ATTR, None), dict):
            found.append(attr)
            key = (f"{getattr(owner, '__module__', '')}.{owner_name}", attr)
            with _warn_lock:
                if key in _warned_undecorated:
                    continue
                _warned_undecorated.add(key)
            logger.warning(
                "tracelet: plugin %r: method `%s` of %s has a hook's name but no @hookimpl, so it is never "
                "called; decorate it with `@hookimpl` (from tracelet.plugin) or rename it",
                name,
                attr,
                owner_name,
            )
    return found


def check_plugin(plugin: Any, name: str) -> None:
    """Refuse a plugin with unknown hooks (ConfigurationError naming plugin, hook and the closest real hook);
    warn about hook-named methods that lack `@hookimpl`."""
    problems = hook_problems(plugin)
    if problems:
        raise ConfigurationError(f"plugin {name!r}: " + "; ".join(problems))
    warn_undecorated(plugin, name)


def register_checked(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register `plugin` in `pm` after `check_plugin`; pluggy's own refusals become ConfigurationError."""
    check_plugin(plugin, name)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # e.g. an argument the hookspec does not have
        raise ConfigurationError(f"plugin {name!r}: {exc}") from exc
