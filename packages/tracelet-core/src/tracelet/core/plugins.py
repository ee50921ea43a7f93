"""The plugin contract: pluggy hookspecs that backends, frameworks and collectors implement.

A plugin is published through an entry point in one of the groups `tracelet.backends`, `tracelet.frameworks`
or `tracelet.collectors`. The entry point names a class (instantiated once per run, so per-run state lives on
the instance) or a module (registered as it is). Its hook implementations are marked with
`tracelet.hookimpl` and may accept any subset of a hook's arguments, as in pytest.

Each hook lives in exactly one spec class: pluggy refuses a hook specified twice, so the classes share no
hooks and do not inherit from each other. The core calls every backend on that backend's own worker thread,
through a plugin manager that holds only that backend, so one raising plugin never stops another.

Each hookspec says, pytest-style, what its arguments are (`:param:`), what its return value is used for, what
raising does (retried, recorded, or fails `start()`) and whether it is optional. Raising `ConfigurationError`
is how a hook says "permanent: retrying cannot help". Plugins are registered through `register_checked` (and
checked by `check_plugin` in `register_plugin` and `tracelet plugins`, so all three agree): a `@hookimpl` whose
name is not a hook is a ConfigurationError naming the closest real hook (pluggy alone would keep it, waiting
for a spec, and never call it), so is an argument the hookspec does not have (naming hook and argument), and a
hook-named method without `@hookimpl` is warned about once. The author guide, docs/plugins.md, lists every hook; a test keeps it in step with these specs.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import threading
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import pluggy

from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tracelet.core.artifacts.kinds import ArtifactType
    from tracelet.core.artifacts.model import ArtifactResult, TraceletArtifact
    from tracelet.core.contract.protocols import InstrumentedExperiment as Experiment
    from tracelet.core.contract.records import Metric, RunContext, RunStatus
    from tracelet.core.contract.sources import SourceRun

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
    """Describes a plugin to `tracelet plugins` and to the orchestrator.

    A plugin states only what its entry point does not say (`description`, `homepage`, `capabilities`): the
    core fills `name` (the entry point's name), `type` (its group), `distribution` and `version` (the
    distribution that declares it), and for a plugin added with `register_plugin`, `name` and `type` from the
    registration (see `tracelet.core.contract.discovery.PluginSpec.metadata`). A stated value that disagrees with the
    entry point is overruled and `tracelet plugins` warns about it.
    """

    name: str = ""
    version: str = ""
    description: str = ""
    type: PluginType | None = None
    distribution: str | None = None
    homepage: str | None = None
    capabilities: list[str] = attrs.field(factory=list)


class PluginInterface:
    """Lifecycle hooks common to every plugin."""

    @hookspec(firstresult=True)
    def plugin_metadata(self) -> PluginMetadata | None:
        """Describe the plugin to `tracelet plugins` (its DESCRIPTION column and capabilities line).

        :return: a `PluginMetadata` stating what the entry point does not: `description`, `homepage` and
            `capabilities` (e.g. ``["metrics", "params", "tags", "artifacts"]``), shown to users. Tracelet fills
            `name`, `type`, `distribution` and `version` from the entry point (a stated value that disagrees is
            overruled, with a warning in `tracelet plugins`). None: nothing to show.

        Also read in distributed runs: the capability ``"attach"`` says the backend can join one tracker run
        from several processes (see `tracelet.core.run.distributed`).

        Raising: `tracelet plugins` shows the error as a warning; a distributed run treats the plugin as
        having no capabilities. Optional.
        """

    @hookspec
    def plugin_setup(self, config: dict[str, Any]) -> None:
        """Prepare a backend with the configuration addressed to it, before any other hook of its run.

        Called once per run, on the backend's worker thread (for backends only; frameworks and collectors read
        their settings from the experiment).

        :param config: the same dict as `run.config`: the experiment's ``config={"<name>": {...}}`` block,
            overlaid with ``<name>_<key>`` entries (prefix removed); values as the user gave them (strings from
            the environment included: parse them, e.g. with `tracelet.plugin.parse_bool`). `<name>` is the name
            the plugin was selected by. Unknown keys should be warned about, not ignored silently.

        Raising: `ConfigurationError`, `ImportError`, `TypeError` or `ValueError` fail `start()` with the
        message (the other backends' runs end FAILED); any other exception is retried with backoff, as
        `backend_start_run` is. Optional.
        """

    @hookspec
    def plugin_teardown(self) -> None:
        """Release what `plugin_setup` acquired (clients, threads, temporary files).

        Called once on the worker thread, after `backend_end_run`, also when the run ended FAILED or KILLED.

        Raising: recorded in the backend's stop report (``errors``: ``teardown: <Error>``); not retried.
        Optional.
        """


class BackendPlugin:
    """Hooks of an experiment-tracking backend.

    Delivery hooks run on the backend's own worker thread, in logging order; raising from one has the batch
    retried with capped backoff until the run's stop deadline (a transient failure: outage, timeout). Raise
    `ConfigurationError` instead when the tracker refuses the data itself and retrying cannot help (a
    permanent failure): the batch is then split until the refused events stand alone, the rest is delivered,
    and the refused ones are counted in the run's stop report (`refused`; they stay in the journal). Retries
    of a plugin's own should go through `tracelet.plugin.retry`, which stops at the run's stop deadline.
    Artifact hooks: `backend_accepts_artifact` and
    `backend_snapshot_artifact` run on the caller's thread inside `log_artifact` (decide and snapshot, no
    uploads); `backend_log_artifact` runs on the worker and is tried 3 times, after which its ArtifactResult
    carries the error; `backend_get_artifact` / `backend_list_artifacts` answer the caller. Types the user
    routes explicitly (config `artifact_routing`) skip `backend_accepts_artifact`.
    """

    # Attributes a backend may set (on its class, or on the instance by the end of `backend_start_run`: the
    # core reads them once the run has started). Declared here, with their defaults, so they are typed.

    #: The kinds of data ("metrics", "params", "tags", "summary") the backend records by reading the run's
    #: journal itself (as the local store does): counted delivered without a hook, not reported `no_hook`.
    journal_record: Collection[str] = ()
    #: True: `backend_log_metrics` may be called for several batches at once (up to the `max_in_flight`
    #: config key, default 4), each on its own thread; params, tags and artifacts still go one at a time.
    concurrent_batches: bool = False

    @hookspec(firstresult=True)
    def backend_start_run(self, run: RunContext) -> dict[str, Any] | None:
        """Open the run in the tracker.

        Called once per run on the backend's worker thread, after `plugin_setup`; `start()` waits for it (up
        to `start_timeout`) but not for an outage: delivery waits for the run instead.

        :param run: the `RunContext` (run id, name, project, tags, config, redacted metadata, run folder).
        :return: plain details worth recording (the tracker's run id, its URL); they appear in the stop report
            (``report.backends[name].details``) and in the run's ``run.json``. None: nothing to record.

        Raising: `ConfigurationError`, `ImportError`, `TypeError` or `ValueError` fail `start()` (permanent:
        bad settings, a missing library). Anything else is retried with capped backoff until the run's stop
        deadline, so an unreachable tracker does not stop training; a retry must not open a second run (look
        for the one a lost response created). Optional, but a tracker usually needs it.
        """

    @hookspec
    def backend_log_metrics(self, metrics: list[Metric], run: RunContext) -> None:
        """Deliver a batch of metric points to the tracker.

        Called on the backend's worker thread with up to 10,000 points per call (whatever was logged since the
        last call, split where params, tags or artifacts were logged in between), in logging order. Values are
        floats and may be NaN or ±inf; names are str. A plugin whose `concurrent_batches` attribute is true
        (see "Several batches in flight" in the plugin guide, docs/plugins.md) is called from up to
        `max_in_flight` sender threads at once instead, never beside its params, tags or artifact hooks.

        :param metrics: the points, each a `Metric` (name, value, step, timestamp in seconds since the epoch,
            taken when `log_metric` was called).
        :param run: the run's `RunContext` (passed when the implementation names it, like every `run` below).

        Raising: the whole batch is retried with capped backoff until the run's stop deadline; later events wait
        behind it. So never write part of a batch and then raise: remember how far it got and resume there, or
        make the write idempotent. `ConfigurationError` is permanent ("the tracker refuses this data"): the
        batch is split until the refused points stand alone, the rest is delivered, the refused ones are
        counted (``refused``) and stay in the journal. Optional: without it the stop report says
        ``no_hook: {"metrics": n}`` instead of counting points delivered.
        """

    @hookspec
    def backend_log_params(self, params: dict[str, Any], run: RunContext) -> None:
        """Deliver parameters (hyperparameters) to the tracker.

        :param params: name -> value, merged from consecutive `log_params` calls until one changes the value of
            a key already in the dict (that call starts the next delivery, so every value reaches the tracker,
            in order); values are plain (str, int, float, bool, None, and nested dicts and lists of those),
            secrets already redacted. A key may come again with another value in a later call: the tracker's
            rule applies (keep the latest, or keep the first and say so).
        :param run: the run's `RunContext`.

        Raising: as `backend_log_metrics` (retried; `ConfigurationError` refuses for good). Optional (reported
        as ``no_hook: {"params": n}``).
        """

    @hookspec
    def backend_log_tags(self, tags: dict[str, str], run: RunContext) -> None:
        """Deliver key/value tags to the tracker.

        :param tags: key -> value, both str, merged from consecutive `set_tags` calls (a later value wins). The
            experiment's list of tags is in `run.tags`, not here.
        :param run: the run's `RunContext`.

        Raising: as `backend_log_metrics`. Optional (reported as ``no_hook: {"tags": n}``).
        """

    @hookspec
    def backend_log_summary(self, summary: dict[str, float], step: int, run: RunContext) -> None:
        """Deliver a run's single values (`Experiment.log_summary`): final or best figures such as
        `train_runtime`, kept where the tracker keeps one value per name (W&B `run.summary`, ClearML single
        values), not as a series.

        :param summary: name -> value (float, may be NaN or ±inf), merged from consecutive `log_summary` calls
            (a later value of a name wins).
        :param step: the step the values belong to: the one given to `log_summary`, else the highest metric
            step logged before them (0 when none), for trackers that keep them as a point of a series.
        :param run: the run's `RunContext`.

        Raising: as `backend_log_metrics`. Optional: without it the values are delivered through
        `backend_log_metrics` as points at `step` (so every tracker that takes metrics keeps them); a backend
        with neither is reported as ``no_hook: {"summary": n}``.
        """

    @hookspec(firstresult=True)
    def backend_accepts_artifact(self, artifact: TraceletArtifact, run: RunContext) -> bool | None:
        """Decide whether this backend takes an artifact (by type or size); called inside `log_artifact` on the
        caller's thread, so it must be quick (no I/O). Types routed explicitly (config ``artifact_routing``)
        skip it.

        :param artifact: the `TraceletArtifact` being logged (name, type, files, objects, metadata).
        :param run: the run's `RunContext`.
        :return: False declines it; None or True accepts it.

        Raising: this backend's `ArtifactResult` for it is failed with the error; the others are unaffected.
        Optional (default: accept every artifact).
        """

    @hookspec(firstresult=True)
    def backend_snapshot_artifact(
        self, artifact: TraceletArtifact, staging_dir: str, run: RunContext
    ) -> dict[str, Any] | None:
        """Save a backend-specific form of the artifact's live objects now, while they are at hand (e.g. a
        tracker's own model format); called inside `log_artifact` on the caller's thread, before any upload.

        :param artifact: the `TraceletArtifact` being logged; `artifact.objects` holds the live objects.
        :param staging_dir: a folder owned by the run for this backend's files (removed once delivered).
        :param run: the run's `RunContext`.
        :return: plain data (paths under `staging_dir`, ...) handed to `backend_log_artifact` as `snapshot`;
            None: nothing saved.

        Raising: this backend's `ArtifactResult` is failed with the error. Optional.
        """

    @hookspec(firstresult=True)
    def backend_log_artifact(
        self, artifact: TraceletArtifact, snapshot: dict[str, Any] | None, run: RunContext
    ) -> ArtifactResult | None:
        """Store an artifact in the tracker, on the backend's worker thread in logging order.

        :param artifact: the `TraceletArtifact`; its files are snapshots owned by the run (the user's files
            may have changed since); `artifact.files[i].local_path` is readable until this hook returns.
        :param snapshot: what `backend_snapshot_artifact` returned for it, or None.
        :param run: the run's `RunContext`.
        :return: an `ArtifactResult` (or a dict of its fields: `uri`, `version`, `metadata`) saying where it
            went; it completes the result `log_artifact` returned. Version artifacts with the manifest helpers
            (`tracelet.plugin.plan`, `read`, `load`) to read them back like the local store does.

        Raising: tried 3 times with backoff (never past the stop deadline), then the result carries the error
        and delivery goes on; `ConfigurationError` fails it at once. Optional: implementing it declares that
        the backend takes artifacts.
        """

    @hookspec(firstresult=True)
    def backend_get_artifact(self, name: str, version: str, run: RunContext) -> TraceletArtifact | None:
        """Read one stored artifact back (``experiment.get_artifact``), on the caller's thread.

        :param name: the artifact's name.
        :param version: ``"latest"`` or ``"v1"``, ``"v2"``, ...
        :param run: the run's `RunContext`.
        :return: a `TraceletArtifact` whose files point at local copies, or None when absent.

        Raising: with ``backend=`` named, the caller gets a `BackendError`; otherwise a warning is logged and
        the next backend is asked. Optional.
        """

    @hookspec(firstresult=True)
    def backend_list_artifacts(
        self, type_filter: ArtifactType | None, run: RunContext
    ) -> list[TraceletArtifact] | None:
        """List the run's stored artifact versions (``experiment.list_artifacts``), on the caller's thread.

        :param type_filter: an `ArtifactType` to keep only that type, or None for all.
        :param run: the run's `RunContext`.
        :return: `TraceletArtifact` manifests, every version; None: nothing.

        Raising: as `backend_get_artifact`. Optional.
        """

    @hookspec
    def backend_flush(self, run: RunContext) -> None:
        """Push anything the backend buffers itself to the tracker; called at the end of the run, before
        `backend_end_run`, on the worker thread.

        :param run: the run's `RunContext`.

        Raising: recorded in the stop report (``errors``), not retried; `backend_end_run` is still called.
        Optional (a backend that writes synchronously has nothing to do).
        """

    @hookspec
    def backend_end_run(self, status: RunStatus, run: RunContext) -> None:
        """Close the run in the tracker with its final status, after everything logged was delivered (or the
        stop deadline passed); on the worker thread.

        :param status: `RunStatus.FINISHED`, `FAILED` (an exception ended the run, or another backend could
            not start) or `KILLED` (Ctrl-C, SIGTERM, or ``stop(status="KILLED")``).
        :param run: the run's `RunContext`.

        Raising: recorded in the stop report (``errors``), not retried by the worker (retry inside with
        `tracelet.plugin.retry` if the tracker needs it). Optional, but without it the tracker's run never ends.
        """

    @hookspec(firstresult=True)
    def backend_import_runs(self, source: str, config: dict[str, Any]) -> Iterable[SourceRun] | None:
        """Read runs out of the tracker, for ``tracelet import --from <name>`` and `tracelet.import_runs`.

        Called on the caller's thread, on an instance no run uses (`plugin_setup` is not called): the
        importing counterpart of delivery. The core writes each run into the local store through the journal
        writer, recognises runs imported before (by tracker, uri and run id) and reports a run that fails.

        :param source: what the user named: a tracking URI, a run folder or file (the plugin says which).
        :param config: ``--config KEY=VALUE`` pairs (values parsed from JSON where they parse): which runs to
            take (an experiment, run ids, ...). Unknown keys should be a `ConfigurationError`.
        :return: the runs, as `tracelet.plugin.SourceRun`s, best lazily (a generator listing page by page);
            each streams its events with the tracker's own steps and timestamps. None: this plugin cannot
            read `source`.

        Raising: while listing, the whole source is reported failed (the next source is still read); from a
        run's `events()`, that run is reported failed and nothing of it is kept. Optional: implementing it
        declares that the backend can import (capability ``"import"``).
        """


class FrameworkPlugin:
    """Hooks of an ML-framework integration that feeds the experiment without code changes."""

    @hookspec
    def framework_instrument(self, experiment: Experiment) -> None:
        """Patch the framework so what it emits reaches `experiment`; called in `start()` for each installed
        framework plugin (or those in `automagic_frameworks`).

        :param experiment: the started run: log to it with `log_metric`, `log_params`, `log_artifact`.

        Raising: a warning says the integration is not active; the run goes on. Optional.
        """

    @hookspec
    def framework_uninstrument(self, experiment: Experiment) -> None:
        """Undo `framework_instrument`; called in `stop()`, before the backends finish.

        :param experiment: the stopping run.

        Raising: a warning is logged; the run still stops. Optional.
        """

    @hookspec(firstresult=True)
    def framework_describe_model(self, model: Any) -> dict[str, Any] | None:
        """Describe a model for ``capture_model``.

        :param model: any object the user passed.
        :return: facts (parameter count, layers, ...) logged as ``model/<key>`` params; None when the model is
            not this framework's (the next plugin, then a generic description, is tried).

        Raising: a warning is logged and the next plugin is tried. Optional.
        """

    @hookspec(firstresult=True)
    def framework_describe_dataset(self, dataset: Any) -> dict[str, Any] | None:
        """Describe a dataset for ``capture_dataset``.

        :param dataset: any object the user passed.
        :return: facts (size, shapes, ...) logged as ``dataset/<key>`` params; None when it is not this
            framework's.

        Raising: a warning is logged and the next plugin is tried. Optional.
        """

    @hookspec(firstresult=True)
    def framework_detect_hyperparams(self, value: Any) -> dict[str, Any] | None:
        """Return the hyperparameters an object of this framework holds (an optimizer's lr, momentum, ...), keyed
        relative to the variable that holds it; None when it is not this framework's. Called by
        `capture_hyperparams()` (`tracelet.core.run.hyperparams`) for objects the core's own rules do not take.

        :param value: an object found among the caller's variables.
        :return: name -> plain value, or None when the object is not this framework's.

        Raising: a warning is logged and the object is left out. Optional.
        """


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

    #: The `ExperimentConfig` field (a bool; else the `TraceletSettings` field of that name) that enables the
    #: collector, set on its class; a name neither has leaves it on. None: on in every run with an
    #: `ExperimentConfig` (a metrics-only run starts only the collectors of the default switch).
    config_switch: str | None = "track_system_metrics"

    @hookspec
    def collector_metadata(self, experiment: Experiment) -> dict[str, Any] | None:
        """Return run metadata to merge (redacted by the core), before any backend starts.

        :param experiment: the starting run (read its `config` and `settings`; do not log yet).
        :return: metadata to merge into the run's description; None: nothing.

        Raising: reported once per collector and kind of error; the run goes on. Optional.
        """

    @hookspec
    def collector_start(self, experiment: Experiment) -> None:
        """Install what watches the run (patches, stream tees) on the thread that calls `start()`.

        :param experiment: the run, started: logging to it works.

        Raising: reported once per collector and kind of error; the run goes on. Optional.
        """

    @hookspec
    def collector_begin(self, experiment: Experiment) -> None:
        """Slow one-off work (reading a diff, listing packages) on the collector thread, after the first sample.

        :param experiment: the running run; log params and artifacts to it.

        Raising: reported once per collector and kind of error; the run goes on. Optional.
        """

    @hookspec
    def collector_sample(self) -> dict[str, float] | None:
        """Return the current readings (on the collector thread), every `metrics_interval` seconds.

        :return: metric name -> value, logged at the run's current step; None: nothing this time.

        Raising: reported once per collector and kind of error; sampling goes on. Optional.
        """

    @hookspec
    def collector_stop(self, experiment: Experiment) -> None:
        """Undo `collector_start` and log what the run's end completes (a console log), after the last sample.

        :param experiment: the stopping run; artifacts logged here are still delivered.

        Raising: reported once per collector and kind of error; the run still stops. Optional.
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


def _hookimpls(
    plugin: Any, members: list[tuple[str, Any]] | None = None
) -> Iterator[tuple[str, str, Any, dict[str, Any]]]:
    """(attribute, hook name, routine, `@hookimpl` options) for each routine of a plugin marked `@hookimpl`;
    `members`: the plugin's `_members`, when the caller has them already."""
    for attr, value in _members(plugin) if members is None else members:
        opts = getattr(value, _IMPL_ATTR, None)
        if isinstance(opts, dict):
            yield attr, opts.get("specname") or attr, value, opts


def implemented_hooks(plugin: Any) -> list[str]:
    """The hooks a plugin (a class, an object or a module) implements with `@hookimpl`, by hook name, in the
    order the spec classes declare them; hook wrappers and unknown names are not counted."""
    found = {hook for _, hook, _, opts in _hookimpls(plugin) if not (opts.get("wrapper") or opts.get("hookwrapper"))}
    return [name for name in hook_names() if name in found]


def hook_problems(plugin: Any, members: list[tuple[str, Any]] | None = None) -> list[str]:
    """What is wrong with a plugin's hooks: each unknown `@hookimpl` name, with the closest real hook.

    A misspelled hook would otherwise be registered without a word and never called (pluggy keeps hooks it has
    no spec for, waiting for one; pytest rejects them with `check_pending`, and so does Tracelet).
    """
    known = hook_names()
    problems = []
    for _, hook, _, _ in _hookimpls(plugin, members):
        if hook in known:
            continue
        import difflib  # only when a hook name is wrong: not paid at `import tracelet`

        close = difflib.get_close_matches(hook, known, n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else f"; hooks are: {', '.join(known)}"
        problems.append(f"unknown hook `{hook}`{hint}")
    return problems


def warn_undecorated(plugin: Any, name: str, members: list[tuple[str, Any]] | None = None) -> list[str]:
    """Warn (once per plugin class and method) about methods named like a hook but not marked `@hookimpl`.

    Returns the names of such methods. pluggy registers only marked methods, so these are never called.
    """
    known = set(hook_names())
    owner = plugin if isinstance(plugin, type) or inspect.ismodule(plugin) else type(plugin)
    owner_name = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
    found = []
    for attr, value in _members(plugin) if members is None else members:
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


@functools.cache
def _spec_arguments() -> dict[str, list[str]]:
    """Hook name -> the arguments its hookspec declares (read once: signatures cost tens of microseconds)."""
    return {
        name: [a for a in inspect.signature(fn).parameters if a != "self"]
        for spec in SPEC_CLASSES
        for name, fn in vars(spec).items()
        if name.startswith(_HOOK_PREFIXES)
    }


def signature_problems(plugin: Any, members: list[tuple[str, Any]] | None = None) -> list[str]:
    """What pluggy would refuse in a plugin's hook signatures: each argument a hook implementation takes that its
    hookspec does not have, naming the hook, the argument and the arguments it may take. `members`: the
    plugin's `_members`, when the caller has them already."""
    specs = _spec_arguments()
    problems = []
    for attr, hook, value, _ in _hookimpls(plugin, members):
        if hook not in specs:
            continue  # an unknown hook name: hook_problems says so
        allowed = specs[hook]
        try:
            params = list(inspect.signature(value).parameters.values())
        except (TypeError, ValueError):
            continue
        bound = not inspect.ismodule(plugin) and not isinstance(inspect.getattr_static(plugin, attr), staticmethod)
        if params and bound:
            params = params[1:]  # the instance (or class) a method is bound to: not a hook argument
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        # pluggy passes arguments by name and leaves those with a default alone, as it does here
        extra = [p.name for p in params if p.name not in allowed and p.kind in positional and p.default is p.empty]
        if extra:
            names = ", ".join(f"`{a}`" for a in extra)
            takes = ", ".join(f"`{a}`" for a in allowed) or "none"
            method = f" (method `{attr}`)" if attr != hook else ""
            problems.append(
                f"hook `{hook}`{method} takes {names}, which the hookspec does not have; "
                f"its arguments are: {takes} (take any subset of them, by these names)"
            )
    return problems


def check_plugin(plugin: Any, name: str) -> list[str]:
    """What `register_plugin` calls, so that a plugin is refused where it is registered, for the reason a run
    would refuse it: `register_checked` into a scratch plugin manager. A class is not instantiated for it
    (pluggy binds `self` only on an instance): its hook names and arguments are checked by the same rules."""
    if isinstance(plugin, type):
        return warn_undecorated(plugin, name, _refuse(plugin, name))
    return register_checked(new_plugin_manager(), plugin, name)


def _refuse(plugin: Any, name: str) -> list[tuple[str, Any]]:
    """Raise the ConfigurationError of `register_checked`; return the plugin's members (one pass over its
    attributes serves every check: a plugin class has hundreds of them)."""
    members = _members(plugin)
    problems = hook_problems(plugin, members) + signature_problems(plugin, members)
    if problems:
        raise ConfigurationError(f"plugin {name!r}: " + "; ".join(problems))
    return members


def register_checked(pm: pluggy.PluginManager, plugin: Any, name: str) -> list[str]:
    """Register `plugin` in `pm`, refusing a plugin whose hooks cannot be called with a ConfigurationError naming
    the plugin: an unknown hook name (with the closest real hook), an argument its hookspec does not have
    (naming hook and argument), or anything else pluggy refuses. Warns (once per class and method) about
    hook-named methods without `@hookimpl` and returns their names."""
    members = _refuse(plugin, name)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # pluggy's other rules (a wrapper that is not a generator, ...)
        raise ConfigurationError(f"plugin {name!r}: {exc}") from exc
    return warn_undecorated(plugin, name, members)
