"""The Weights & Biases backend: one instance per run, called only from that run's Tracelet worker thread.

Guarantees:
- **No prompt, no hang at start.** Online without an API key, `start()` fails at once with a ConfigurationError
  naming both fixes (`preflight`), before wandb is even imported. `wandb.init` runs with W&B's init timeout.
- **Every point kept.** W&B drops a `step=` that is not larger than the last one. This backend never passes
  `step=`: each row carries Tracelet's step as the metric `tracelet/step` (option `step_metric`), declared the
  x-axis of every metric with `define_metric("*", step_metric=...)`. Points logged out of order, or on several
  scales (epochs and batches), all stay. Consecutive points of one step go out in one `run.log` call (one
  history row); a row also carries the time the first of its points was logged as `_timestamp`.
- **Offline, stop() returns with the run whole in its `.wandb` file.** W&B's `finish()` can return before its
  service has written the last records. The backend then waits for the log's exit record, bounded by the
  stop timeout (`txlog.has_exit` reads only the last two blocks).
- **Isolation.** Every wandb call runs through `calls.BoundedCaller`: a killed W&B service makes calls fail, a
  stalled one makes them time out; both are delivery errors of this backend, retried by the worker and
  reported at stop, never an exception or a hang in the training loop. Retries never send a row twice. A run
  started after the service died gets a new one (`_forget_dead_service`).
- **No side effects on other runs.** Runs are created with `reinit="create_new"`, so several Tracelet runs
  (one after another, or side by side) each get their own W&B run, and `wandb.run` is left alone.
- W&B's console capture, its system-metrics sampler and its own metadata collection (command line, git) are
  off unless the config turns them on (`console`, `system_metrics`, `metadata`): Tracelet's collectors do
  those jobs, and W&B would record the command line unredacted. Tracelet's redacted command line and git facts
  are in `run.config["tracelet"]`.
- **Ranks side by side.** Under `distributed=per_rank` each rank's run joins one W&B `group` per launch
  (`<name>-<group id>`, unless the config or `WANDB_RUN_GROUP` names a `group`), and `run.config["tracelet"]["distributed"]` holds
  its rank, world size and node.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

from tracelet.plugin import (
    ArtifactResult,
    ArtifactType,
    ConfigurationError,
    Metric,
    PluginMetadata,
    RunContext,
    RunStatus,
    SourceRun,
    TraceletArtifact,
    group_label,
    hookimpl,
)
from tracelet_wandb import preflight, txlog
from tracelet_wandb.artifacts import LocalCopy, alias_for, build, from_download, from_manifest_text, wandb_name
from tracelet_wandb.calls import BoundedCaller
from tracelet_wandb.options import INIT_KEYS, Options

logger = logging.getLogger("tracelet.wandb")

T = TypeVar("T")

STEP_METRIC = "tracelet/step"
RENAMED_PREFIX = "metric/"
TAG_MAX_CHARS = 64  # W&B refuses longer run tags
DEFAULT_CALL_TIMEOUT = 30.0
DEFAULT_INIT_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 30.0
# FAILED and KILLED are both non-zero, which W&B shows as a failed run; 255 is what W&B itself records
# for a run ended by Ctrl-C.
EXIT_CODES = {RunStatus.FINISHED: 0, RunStatus.RUNNING: 0, RunStatus.FAILED: 1, RunStatus.KILLED: 255}
OPTIONS = frozenset(f.name for f in attrs.fields(Options))
CONFIG_TAGS = "tags"  # set_tags(...) key/values live in the run config under this branch
CONFIG_TRACELET = "tracelet"  # Tracelet's own facts about the run (run id, renamed metrics)


def _merge(old: Any, new: Any) -> Any:
    """Nested dicts merge key by key (a later value wins); anything else replaces what was there. Used for the
    branches this backend fills itself (`tags`, `tracelet`), whose keys arrive in several calls."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for key, value in new.items():
            out[key] = _merge(old.get(key), value)
        return out
    return new


def _forget_dead_service() -> None:
    """W&B keeps its connection to a service process that has died (killed, out of memory) for the rest of the
    process, so every later `wandb.init` fails with it (MailboxClosedError) and every later run loses its W&B
    data. Forget such a connection, so that the next `wandb.init` starts a new service. W&B has no public way to
    ask: this reads its internals and does nothing when they are not as expected."""
    try:
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib.service import service_token

        setup = wandb_setup._singleton
        connection = getattr(setup, "_connection", None)
        process = connection._proc._process if connection is not None and connection._proc is not None else None
        if setup is None or setup._pid != os.getpid() or process is None or process.poll() is None:
            return
        cleanup = getattr(connection, "_cleanup", None)
        if callable(cleanup):
            cleanup()  # drops W&B's exit hook for it, which would only fail (and print) at exit
        setup._connection = None
        service_token.clear_service_in_env()  # or the next init would connect to the dead one again
    except Exception as exc:  # internals moved: W&B's own behaviour stays as it is
        logger.debug("tracelet-wandb: could not check W&B's service process: %r", exc)
        return
    logger.warning(
        "tracelet-wandb: W&B's service process had exited (code %s); starting a new one for this run", process.poll()
    )


def _console(value: Any) -> str:
    if value is None or value is False:
        return "off"
    if value is True:
        return "auto"
    return str(value)


class WandbBackend:
    """Tracelet backend that logs runs to Weights & Biases (online, or offline to be synced later)."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.options = Options()
        self.mode: str | None = None
        self.wb_run: Any = None
        self.details: dict[str, Any] = {}
        self._calls = BoundedCaller("tracelet-wandb-io")
        self._step_key = STEP_METRIC
        self._names: dict[str, str] = {}  # Tracelet metric name -> W&B key
        self._renamed: dict[str, str] = {}
        self._config_tree: dict[str, Any] = {}  # what run.config holds, to merge nested params
        self._progress: list[Any] | None = None  # [batch identity, rows sent, rows]
        self._copies: LocalCopy | None = None
        self._cache: Path | None = None
        self._offline_noted = False
        self._finished = False
        self._stop_timeout = DEFAULT_STOP_TIMEOUT

    # -- lifecycle -----------------------------------------------------------------------------------------
    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="Logs runs to Weights & Biases: metrics, config, tags, statuses and artifacts.",
            capabilities=["metrics", "params", "tags", "summary", "artifacts", "status", "import"],
        )

    @hookimpl
    def backend_import_runs(self, source: str, config: dict[str, Any]) -> Iterator[SourceRun]:
        """Runs of W&B transaction logs (`tracelet_wandb.importer`); online runs are not read yet.

        :param source: a run's `.wandb` file, its run folder, or a folder of run folders.
        :param config: none accepted.
        """
        from tracelet_wandb import importer

        return importer.import_runs(source, config)

    @hookimpl
    def plugin_setup(self, config: dict[str, Any]) -> None:
        """:param config: the `wandb` config block overlaid with `wandb_*` keys (see the README's options)."""
        self.options = Options.from_config(config)  # typed; unknown keys warned about
        # Converted values over what was given (a key no field takes stays, warned about, for code reading it).
        typed = {k: v for k, v in self.options.as_config().items() if v is not None}
        self.config = {**dict(config or {}), **typed}

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        """Open the W&B run (once; a retry after a timeout reuses the run that call created).

        :param run: the Tracelet run: its name becomes the W&B run name, its project the W&B project unless
            `project` is configured, its tags the W&B tags.
        :returns: the run's id, project and mode, plus its URL online, or its offline folder and the exact
            `wandb sync` command offline.
        """
        if self.wb_run is None:
            if self.mode is None:
                self.mode = preflight.check(self.config)  # before wandb's import: no prompt, no slow failure
            self._step_key = str(self.config.get("step_metric") or STEP_METRIC)
            self._stop_timeout = self._timeout("stop_timeout", getattr(run.settings, "stop_timeout", None))
            import wandb  # ImportError here is reported by start()

            init_timeout = self._timeout("init_timeout", DEFAULT_INIT_TIMEOUT)
            settings = {
                "console": _console(self.config.get("console")),
                "x_disable_stats": not bool(self.config.get("system_metrics", False)),
                # W&B's own metadata (command line, git remote, ...) is collected unredacted: Tracelet's
                # redacted facts go to config["tracelet"] instead, unless `metadata` asks for W&B's.
                "x_disable_meta": not bool(self.config.get("metadata", False)),
                "disable_git": not bool(self.config.get("metadata", False)),
                "reinit": "create_new",
                "init_timeout": init_timeout,
                **({"base_url": self.config["base_url"]} if self.config.get("base_url") else {}),
                **dict(self.config.get("settings") or {}),
            }
            kwargs = {k: self.config[k] for k in INIT_KEYS if self.config.get(k) is not None}
            resume_id = self.config.get("run_id")  # set by `tracelet sync` to finish a run's own W&B run in place
            if resume_id and "id" not in kwargs and self.mode in preflight.ONLINE_MODES:
                kwargs.update(id=str(resume_id), resume=kwargs.get("resume") or "allow")
            elif resume_id and "id" not in kwargs:
                # An offline run's folder cannot be reopened: the sync sends the whole run to a new W&B run.
                logger.info("tracelet-wandb: offline, W&B run %s cannot be reopened; a new run is made", resume_id)
            kwargs.setdefault("project", run.project)
            group = group_label(run.metadata)
            if group and not os.environ.get("WANDB_RUN_GROUP"):  # W&B's own variable, like the config, wins
                kwargs.setdefault("group", group)  # the ranks of one per_rank launch, side by side
            facts = {"run_id": run.run_id}
            facts.update(
                {k: run.metadata[k] for k in ("source", "argv", "git", "distributed") if (run.metadata or {}).get(k)}
            )
            self._config_tree = {CONFIG_TRACELET: facts}
            given = [*(str(t) for t in run.tags), *self.options.tags]  # the block's `tags` join the run's
            tags = [t[:TAG_MAX_CHARS] for t in dict.fromkeys(given) if t]

            def init() -> None:
                _forget_dead_service()
                wb_run = wandb.init(
                    name=run.name,
                    tags=tags or None,
                    config=dict(self._config_tree),
                    mode=self.mode,  # type: ignore[arg-type]
                    settings=wandb.Settings(**settings),
                    **kwargs,
                )
                wb_run.define_metric(self._step_key)
                wb_run.define_metric("*", step_metric=self._step_key)
                self.wb_run = wb_run

            self._call(init, "wandb.init", init_timeout + 5.0)
        if self._copies is None:
            root = (
                Path(run.run_dir).resolve() / "wandb-artifacts"
                if run.run_dir
                else Path(tempfile.mkdtemp(prefix="tracelet-wandb-"))
            )
            self._copies = LocalCopy(root)
        self.details = self._describe()
        return self.details

    def _describe(self) -> dict[str, Any]:
        wb = self.wb_run
        details: dict[str, Any] = {"run_id": wb.id, "project": wb.project, "mode": self.mode}
        if self.mode in preflight.ONLINE_MODES:
            details["url"] = wb.url
            details["entity"] = wb.entity
        elif self.mode in preflight.OFFLINE_MODES:
            folder = str(wb.settings.sync_dir)
            details["run_folder"] = folder
            details["transaction_log"] = str(wb.settings.sync_file)
            details["sync_command"] = f"wandb sync {shlex.quote(folder)}"
        return details

    @hookimpl
    def backend_flush(self) -> None:
        """Nothing to do: each hook hands its data to W&B's service before returning."""

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        """Finish the W&B run with an exit code for `status`: FINISHED 0, FAILED 1, KILLED 255.

        :param status: how the Tracelet run ended.
        """
        if self.wb_run is None or self._finished:
            return
        code = EXIT_CODES.get(RunStatus(status), 1)

        def finish() -> None:
            self.wb_run.finish(exit_code=code)
            self._finished = True

        started = time.monotonic()
        self._call(finish, "run.finish", self._stop_timeout)
        if self.mode in preflight.OFFLINE_MODES:
            self._await_transaction_log(started + self._stop_timeout)

    def _await_transaction_log(self, deadline: float) -> None:
        """Offline, W&B's `finish()` can return while its service still holds the last records in memory (as
        measured: the last ~30 rows, for up to a few hundred ms). stop() promises everything delivered, and an
        offline run is its `.wandb` file: wait, bounded by the stop timeout, until the file ends with the exit
        record."""
        path = self.wb_run.settings.sync_file
        while True:
            try:
                if txlog.has_exit(path):
                    return
            except (OSError, txlog.TransactionLogError) as exc:
                logger.debug("tracelet-wandb: reading %s: %s", path, exc)
            if time.monotonic() >= deadline:
                logger.warning("tracelet-wandb: W&B's service had not written the end of %s by the stop timeout; "
                               "it finishes writing it in the background", path)  # fmt: skip
                return
            time.sleep(0.01)

    @hookimpl
    def plugin_teardown(self) -> None:
        self._calls.close()

    # -- data ------------------------------------------------------------------------------------------------
    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        """One `run.log` per row: consecutive points of one step share a row, keyed by the step metric.

        :param metrics: points in logging order.
        """
        if not metrics or self.wb_run is None:
            return
        first, last = metrics[0], metrics[-1]
        identity = (len(metrics), first.name, first.step, first.timestamp, last.name, last.step, last.timestamp)
        if self._progress is None or self._progress[0] != identity:
            self._progress = [identity, 0, self._rows(metrics)]
        progress = self._progress
        self._call(lambda: self._log_rows(progress), "run.log")
        self._progress = None

    def _rows(self, metrics: list[Metric]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        row: dict[str, Any] = {}
        step: Any = None
        names = self._names
        key = self._step_key
        for name, value, s, ts in metrics:
            mapped = names.get(name) or self._map(name)
            if not rows or s != step or mapped in row:
                row = {key: s, "_timestamp": ts}
                rows.append(row)
                step = s
            row[mapped] = value
        if self._renamed:
            self._note_renames()
        return rows

    def _log_rows(self, progress: list[Any]) -> None:
        """On the io thread: progress is counted per row, so a retry resumes after what went out."""
        log = self.wb_run.log
        rows = progress[2]
        # No yield of the GIL between rows: every run.log already gives it up twice (W&B hands the record to its
        # asyncio thread over a socket and waits for that thread's answer), so a training thread waiting for the
        # GIL runs then. A `time.sleep(0)` per row added a third hand-off: profiled (cProfile, offline, 1 metric
        # a step), it was a quarter of the delivery time on a busy 2-core machine.
        while progress[1] < len(rows):
            log(rows[progress[1]])
            progress[1] += 1

    def _map(self, name: str) -> str:
        """W&B reserves keys starting with '_' (its own _step, _runtime, _timestamp) and the step key is ours:
        such metric names go under `metric/`; every other name passes unchanged."""
        mapped = name
        if name.startswith("_") or name == self._step_key or not name:
            mapped = f"{RENAMED_PREFIX}{name or '_'}"
            self._renamed[mapped] = name
            logger.warning("tracelet-wandb: metric %r is logged to W&B as %r (a name W&B reserves)", name, mapped)
        self._names[name] = mapped
        return mapped

    def _note_renames(self) -> None:
        self._update_config({CONFIG_TRACELET: {"renamed": dict(self._renamed)}}, merge=True)
        self._renamed = {}

    @hookimpl
    def backend_log_summary(self, summary: dict[str, float]) -> None:
        """Single values go to `run.summary` (a later value of a name replaces it), named as metrics are.

        :param summary: name -> value.
        """
        if not summary or self.wb_run is None:
            return
        update = {(self._names.get(name) or self._map(name)): value for name, value in summary.items()}
        self._call(lambda: self.wb_run.summary.update(update), "summary.update")

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        """Params go to `run.config`; nested dicts stay nested (W&B shows a tree). A param logged again
        replaces its whole value, as it does in Tracelet's own store.

        :param params: merged params of consecutive log_params calls, a later value of a key winning.
        """
        if params and self.wb_run is not None:
            self._update_config(params)

    @hookimpl
    def backend_log_tags(self, tags: dict[str, str]) -> None:
        """Key/value tags go to `run.config` under the `tags` branch (W&B's run tags are plain labels).

        :param tags: key/value tags, a later value of a key winning.
        """
        if tags and self.wb_run is not None:
            self._update_config({CONFIG_TAGS: dict(tags)}, merge=True)

    def _update_config(self, values: dict[str, Any], merge: bool = False) -> None:
        """Set top-level config keys; with `merge`, dict values merge into the branch key by key."""
        tree = dict(self._config_tree)
        for key, value in values.items():
            tree[str(key)] = _merge(tree.get(str(key)), value) if merge else value
        update = {str(k): tree[str(k)] for k in values}
        self._call(lambda: self.wb_run.config.update(update, allow_val_change=True), "config.update")
        self._config_tree = tree

    # -- artifacts -----------------------------------------------------------------------------------------------
    @hookimpl
    def backend_log_artifact(self, artifact: TraceletArtifact) -> ArtifactResult:
        """Log `artifact` as a `wandb.Artifact` of its type, aliased `tracelet-v<N>` and `latest`.

        :param artifact: the artifact, its files and serialized objects being snapshots owned by the run.
        """
        if self.wb_run is None or self._copies is None:
            raise RuntimeError("the W&B run has not started yet")
        import wandb

        version = self._copies.version_for(artifact)
        folder, _ = self._copies.write(artifact, version)
        wb_artifact = build(wandb, artifact, version, folder)
        aliases = [alias_for(version), "latest"]
        self._call(lambda: self.wb_run.log_artifact(wb_artifact, aliases=aliases), "run.log_artifact")
        self._copies.logged(artifact)
        name = wandb_name(artifact.name)
        entity = self.details.get("entity")
        where = f"{entity}/" if entity else ""
        return ArtifactResult(
            backend="wandb",
            uri=f"wandb-artifact://{where}{self.wb_run.project}/{name}:{aliases[0]}",
            version=version,
            metadata={
                "name": name,
                "type": artifact.type.value,
                "aliases": aliases,
                "mode": self.mode,
                "local_copy": str(folder),
                "references": [r.uri for r in artifact.references],
            },
        )

    @hookimpl
    def backend_get_artifact(self, name: str, version: str) -> TraceletArtifact | None:
        """Online: download the version from W&B. Offline: read this backend's local copy (said once).

        :param name: the Tracelet artifact name.
        :param version: "latest", "v2", ...
        """
        if self._copies is None:
            return None
        if self.mode not in preflight.ONLINE_MODES:
            self._note_offline()
            return self._copies.get(name, version)
        alias = "latest" if str(version).lower() == "latest" else alias_for(f"v{str(version).lstrip('vV')}")

        path = f"{self.details.get('entity')}/{self.wb_run.project}/{wandb_name(name)}:{alias}"
        # Reads run on the caller's thread and talk to W&B's HTTP API, not to the service the worker uses: they
        # neither wait for nor block delivery.
        try:
            found = self._api().artifact(path)
        except Exception as exc:
            if "not found" in str(exc).lower() or "does not" in str(exc).lower():
                return None
            raise
        target = self._cache_dir() / wandb_name(name) / alias
        found.download(root=str(target))
        return from_download(target)

    @hookimpl
    def backend_list_artifacts(self, type_filter: ArtifactType | None) -> list[TraceletArtifact]:
        """Online: every artifact this run logged to W&B, from its Tracelet manifest. Offline: the local copy.

        :param type_filter: only artifacts of this type, or all.
        """
        if self._copies is None:
            return []
        if self.mode not in preflight.ONLINE_MODES:
            self._note_offline()
            return self._copies.list(type_filter)

        path = f"{self.details.get('entity')}/{self.wb_run.project}/{self.wb_run.id}"
        out: list[TraceletArtifact] = []
        for art in self._api().run(path).logged_artifacts():
            if not any(a.startswith("tracelet-v") for a in art.aliases):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                local = art.get_entry("manifest.json").download(root=tmp)
                found = from_manifest_text(Path(local).read_text(encoding="utf-8"))
            if type_filter is None or found.type is type_filter:
                out.append(found)
        return out

    def _note_offline(self) -> None:
        if not self._offline_noted:
            self._offline_noted = True
            assert self._copies is not None
            logger.warning(
                "tracelet-wandb: W&B is %s, so artifacts are read from this backend's local copy in %s "
                "(W&B gets them with `wandb sync`)",
                self.mode,
                self._copies.root,
            )

    def _api(self) -> Any:
        import wandb

        overrides = {"base_url": self.config["base_url"]} if self.config.get("base_url") else {}
        return wandb.Api(overrides=overrides, timeout=int(self._timeout("call_timeout", DEFAULT_CALL_TIMEOUT)))

    def _cache_dir(self) -> Path:
        if self._cache is None:
            assert self._copies is not None
            self._cache = self._copies.root.parent / "wandb-cache"
        return self._cache

    # -- plumbing --------------------------------------------------------------------------------------------
    def _timeout(self, key: str, default: Any) -> float:
        value = self.config.get(key, default)
        try:
            return float(value if value is not None else DEFAULT_STOP_TIMEOUT)
        except (TypeError, ValueError):
            raise ConfigurationError(f"tracelet-wandb: {key} must be a number of seconds, got {value!r}") from None

    def _call(self, fn: Callable[[], T], what: str, timeout: float | None = None) -> T:
        if timeout is None:
            timeout = self._timeout("call_timeout", DEFAULT_CALL_TIMEOUT)
        return self._calls.call(fn, timeout, what)
