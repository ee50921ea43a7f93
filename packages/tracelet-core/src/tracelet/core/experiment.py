"""The experiment: the public object training code logs to (the spec's `Experiment`).

This module is the facade: settings merge, the hot path, and wiring the parts, each of which lives in its own
module: the orchestrator and its workers deliver (`orchestrator`, `worker`), `runrecord` writes the run
folder, `backend_config` tells each backend its config, `automagic` holds framework plugins and capture,
`artifacts.manager` handles artifacts, `collectors` samples periodic metrics, and `lifecycle` stops the run at
exit and keeps a forked child's hands off it.

Guarantees: `log_metric` and friends only build a tuple and append it (no I/O, no locks, never raise for a
tracker's sake); `stop()` delivers everything each backend can take within its stop timeout and is
idempotent; nothing a backend or framework plugin does can raise into the training loop after `start()`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet.core.contract import discovery
from tracelet.core.contract.records import PARAMS, SUMMARY, TAGS, Append, Event, RunContext, RunStatus, StopReport
from tracelet.core.contract.redact import redact_mapping
from tracelet.core.contract.values import normalize_params, plain, summary_values, to_float, to_step
from tracelet.core.engine import lifecycle
from tracelet.core.engine.backend import Backend
from tracelet.core.engine.runrecord import RunRecord
from tracelet.core.engine.wiring import bind_backends
from tracelet.core.orchestrator import Orchestrator
from tracelet.core.plugins import PluginType
from tracelet.core.run import automagic as magic  # not `automagic`: the spec's parameter of that name
from tracelet.core.run.backend_config import backend_config, run_context
from tracelet.core.run.config import AutomagicConfig, ExperimentConfig, warn_unsupported
from tracelet.exceptions import BackendError, ConfigurationError, TraceletException
from tracelet.settings import TraceletSettings, parse_list

if TYPE_CHECKING:
    from tracelet.core.artifacts.kinds import ArtifactType
    from tracelet.core.artifacts.manager import ArtifactManager
    from tracelet.core.artifacts.model import ArtifactResult, TraceletArtifact
    from tracelet.core.engine.collectors import CollectorRunner

logger = logging.getLogger("tracelet")

_time = time.time


def _new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def _safe_dirname(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "default"


class Experiment:
    """One tracked run, fanned out to every selected backend."""

    def __init__(
        self,
        name: str,
        config: ExperimentConfig | Mapping[str, Any] | None = None,
        backend: list[str] | None = None,
        tags: list[str] | None = None,
        automagic: bool = False,
        automagic_config: AutomagicConfig | None = None,
        artifacts: bool = False,
        automagic_artifacts: bool = False,
        *,
        project: str | None = None,
        settings: TraceletSettings | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("an experiment needs a non-empty name")
        if isinstance(config, Mapping):  # a start_logging-style dict: settings, ExperimentConfig fields, backend keys
            given = dict(config)
            settings = settings if settings is not None else TraceletSettings.resolve(given)
            options = {**given, **(options or {})}
            config = ExperimentConfig.from_mapping(given, settings)
        settings = settings if settings is not None else TraceletSettings()
        if config is not None:
            settings = config.overlay(settings)
        self.config = config if config is not None else ExperimentConfig.from_settings(settings)
        if automagic:
            self.config.enable_automagic = True
        if artifacts:
            self.config.enable_artifacts = True
        if automagic_artifacts:
            self.config.automagic_artifacts = True
        self.settings = settings
        self.automagic_config = automagic_config or AutomagicConfig()
        self._given_config = config is not None
        self.options: dict[str, Any] = dict(options or {})
        names = parse_list(backend) if isinstance(backend, str) else list(backend or settings.backend or ["local"])
        self.backend_names: list[str] = list(dict.fromkeys(names))
        self.project = project or settings.project
        self._name = name
        self._tags = list(tags or [])
        self._id = _new_run_id()
        self._created_at = datetime.now(timezone.utc)
        self._iteration = 0
        self._append: Append = _not_started
        self.status = RunStatus.RUNNING
        self.report: StopReport | None = None
        self.run_dir: Path | None = None
        self._record: RunRecord | None = None
        self._orchestrator: Orchestrator | None = None
        self._frameworks = magic.Frameworks()
        self._collectors: CollectorRunner | None = None
        self._artifacts: ArtifactManager | None = None
        self._state_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._detached = False  # in a forked child (tracelet.core.engine.lifecycle): the parent owns this run
        self._distributed: Any = None  # tracelet.core.run.distributed.Plan: what this rank of a job does
        self._node: Any = None  # an idle node leader's system-metrics writer (tracelet.core.run.idle.NodeMetrics)

    # -- properties --------------------------------------------------------------------------------------------
    @property
    def iteration(self) -> int:
        return self._iteration

    @property
    def name(self) -> str:
        return self._name

    @property
    def id(self) -> str:
        return self._id

    @property
    def experiment_id(self) -> str:
        return self._id

    @property
    def created_at(self) -> datetime:
        return self._created_at

    @property
    def tags(self) -> list[str]:
        return list(self._tags)

    @property
    def backends(self) -> list[Backend]:
        """The active backend plugins, each with a `name`."""
        return self._orchestrator.backends if self._orchestrator is not None else []

    @property
    def orchestrator(self) -> Orchestrator | None:
        return self._orchestrator

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> Experiment:
        """Start the experiment and initialize all backends."""
        caller = magic.user_frame(2)  # before any tracelet frame is pushed: whose variables automagic sees
        with self._state_lock:
            if self._started:
                return self
            self._started = True
            try:
                self._start(caller)
            except BaseException:
                self._started = False
                self._abort()
                raise
        return self

    def _start(self, caller: Any) -> None:
        settings = self.settings
        from tracelet.core.run import distributed, idle  # the launcher's environment: read when a run starts

        plan = self._distributed = distributed.plan(self)
        if not plan.active:
            if not (plan.local_only and settings.local_store):
                # rank0 policy, rank != 0: every method a no-op (`IdleRank`); the leader of a node other than
                # rank 0's writes its node's system metrics into rank 0's run, in the background.
                self.__class__ = IdleRank
                self._node = idle.start_node_metrics(self, plan)
                return
            self.backend_names = []  # distributed_local_store: this rank's points in its local store only
        self._name = plan.run_name
        if "local" in self.backend_names and not settings.local_store:
            raise ConfigurationError("backend 'local' was selected but the local store is off (TRACELET_LOCAL_STORE)")
        warn_unsupported(self.config if self._given_config else None, settings)
        specs = [discovery.find(PluginType.BACKEND, n) for n in self.backend_names]  # fail fast on unknown names
        self.backend_names = list(dict.fromkeys(spec.name for spec in specs))  # as the plugins spell them
        specs = list({spec.name: spec for spec in specs}.values())
        if not self.config.track_metrics:  # dry run: log_metric is a no-op (documented on the method)
            self.__class__ = DryRun
        from tracelet.core.engine.collectors import CollectorRunner  # git, environment, argv: only when a run starts

        log_metric = self._distributed.wrap_system(self.log_metric) if self._distributed else self.log_metric
        self._collectors = CollectorRunner(self, log_metric=log_metric)
        metadata = self._collectors.metadata()
        if plan.info.is_distributed:
            metadata["distributed"] = plan.metadata
        journal = None
        if settings.local_store:
            self.run_dir = Path(settings.dir) / _safe_dirname(self.project) / self._id
            self._record = RunRecord(self.run_dir, self._identity())
            configs = {n: plain(redact_mapping(backend_config(n, self.options))) for n in self.backend_names}
            try:
                journal = self._record.open(metadata, configs)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot create the local store at {self.run_dir}: {exc}. Point TRACELET_DIR elsewhere, "
                    "or set TRACELET_LOCAL_STORE=false to run without it"
                ) from exc
        self._artifacts = self._make_artifact_manager()
        orch = Orchestrator(
            journal,
            max_buffered=settings.max_buffered,
            stop_timeout=settings.stop_timeout,
            progress=self._record_progress if self._record is not None else None,
            artifact_handler=self._artifacts.deliver,
            bind=self._bind_append,
        )
        self._orchestrator = orch
        backend_metadata = {**metadata, "config": redact_mapping(self.options)}
        for worker in bind_backends(
            specs, partial(self._context_for, metadata=backend_metadata), orch, clock=orch.clock
        ):
            orch.add_worker(worker)
        orch.start()  # binds the hot path's append (`_bind_append`)
        lifecycle.register(self)
        lifecycle.detach_in_child(self)
        self._await_backends(orch, settings.start_timeout)
        lifecycle.run_exit_hook_first()  # before the teardown hooks the backends' libraries registered
        if self._record is not None:
            self._record.record_backend_runs(orch.started_details())
        self._frameworks.instrument(self, self.settings.automagic_frameworks, self._context_for)
        if self.config.enable_automagic and self.automagic_config.detect_hyperparameters:
            found = magic.simple_locals(caller, self.automagic_config, self._frameworks.detect)
            if found:
                self.log_params(found)
        self._start_collectors()
        self._artifacts.start()

    def _identity(self) -> dict[str, Any]:
        return {
            "run_id": self._id,
            "name": self._name,
            "project": self.project,
            "created_at": self._created_at.isoformat(),
            "tags": self._tags,
            "backends": self.backend_names,
        }

    def _await_backends(self, orch: Orchestrator, timeout: float) -> None:
        answered = dict(orch.await_started(timeout))
        for name in self.backend_names:
            if name not in answered:
                logger.warning("tracelet: backend %r is still starting; logging goes on", name)
            elif (exc := answered[name]) is not None:
                cls = ConfigurationError if isinstance(exc, (ConfigurationError, ImportError)) else BackendError
                raise cls(f"backend {name!r} failed to start: {type(exc).__name__}: {exc}") from exc

    def _make_artifact_manager(self) -> ArtifactManager:
        from tracelet.core.artifacts.manager import ArtifactManager

        return ArtifactManager(
            append=self._emit,
            backends=lambda: self.backends,
            record_error=self._record_delivery_error,
            backend_names=self.backend_names,
            config=self.config,
            options=self.options,
            store_dir=self.settings.dir,
            run_dir=self.run_dir,
            wait_timeout=self.settings.stop_timeout,
        )

    def _record_delivery_error(self, backend: str, where: str, exc: BaseException) -> None:
        """An artifact delivery failed: counted in that backend's stop report."""
        if self._orchestrator is not None:
            self._orchestrator.record_error(backend, where, exc)

    def _start_collectors(self) -> None:
        if self._collectors is not None:  # hooks installed, sampling started on the collector thread
            self._collectors.start()

    def _context_for(self, name: str, metadata: dict[str, Any] | None = None) -> RunContext:
        return run_context(
            name,
            run_id=self._id,
            run_name=self._name,
            project=self.project,
            created_at=self._created_at,
            tags=self._tags,
            options=self.options,
            run_dir=str(self.run_dir) if self.run_dir else None,
            settings=self.settings,
            metadata=metadata,
        )

    def stop(self, *, status: RunStatus | str = RunStatus.FINISHED) -> StopReport | None:
        """Stop the experiment: deliver everything, end each backend's run, close the journal."""
        status = RunStatus(status)
        with self._state_lock:
            if self._stopped or not self._started or self._detached:
                return self.report
            self._stopped = True
        self._frameworks.uninstrument(self)
        if self._collectors is not None:
            self._collectors.stop()
        if self._artifacts is not None:
            self._artifacts.stop()
        self._append = _after_stop
        assert self._orchestrator is not None
        self.report = self._orchestrator.stop(status)
        self._append = _after_stop  # again: the dispatcher may have swapped the append until it stopped
        if self._artifacts is not None:
            self._artifacts.close()  # artifact results no backend answered: failed, saying what to do
        self.status = status
        lifecycle.unregister(self)
        lifecycle.deactivate(self)  # a stopped run is nobody's active experiment (get_active_experiment: None)
        if self._record is not None:
            failed = self._artifacts.failed_artifacts() if self._artifacts is not None else None
            self._record.end(status, self.report, failed)
        if not self.report.complete and self.run_dir is not None:
            logger.warning(
                "tracelet: run %s ended with undelivered events; they are kept in %s", self._id, self.run_dir
            )
        return self.report

    def _record_progress(self, cursors: dict[str, int]) -> None:
        """The orchestrator's checkpoint (every couple of seconds): cursors and the artifacts that failed."""
        assert self._record is not None
        failed = self._artifacts.failed_artifacts() if self._artifacts is not None else None
        self._record.record_progress(cursors, failed)

    def end(self) -> StopReport | None:
        """Alias for stop()."""
        return self.stop()

    def _abort(self) -> None:
        """A backend could not start: end the others' runs as failed and say so in the journal."""
        self.status = RunStatus.FAILED
        if self._collectors is not None:  # undo what collectors installed (console tee, argparse patch)
            self._collectors.stop()
        if self._orchestrator is not None:
            self.report = self._orchestrator.stop(RunStatus.FAILED)
        lifecycle.unregister(self)
        if self._record is not None and self._record.journal is not None:
            self._record.end(RunStatus.FAILED, self.report)

    def detach_after_fork(self) -> None:
        """In a forked child (called by `tracelet.core.engine.lifecycle`): what the child logs is dropped, without
        growing memory, and stop() does nothing, so the parent's run.json and frameworks are left alone."""
        self._detached = True
        dropped: deque[Event] = deque(maxlen=0)
        self._append = dropped.append

    def _bind_append(self, append: Append) -> None:
        """The orchestrator hands the hot path its append (and swaps it under memory pressure)."""
        if not self._detached and not self._stopped:
            self._append = append

    def _emit(self, event: Event) -> None:
        """Append through whatever the hot path uses now (for parts that hold on to a callable)."""
        self._append(event)

    def __enter__(self) -> Experiment:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C is the user stopping the run, not a failure
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self.stop(status=status)
        lifecycle.deactivate(self)

    # -- logging: the hot path -------------------------------------------------------------------------------------
    def log_metric(self, name: str, value: Any, iteration: int | None = None) -> None:
        """Log a scalar metric value (a no-op, values unchecked, when the config has `track_metrics=False`)."""
        # The hot path: type checks and one deque append. Names that are not str are turned into str by the
        # dispatcher, off this thread. The literal "m" is records.METRIC (a constant loads faster than a global).
        if type(value) is not float:
            value = to_float(value)
        if iteration is None:
            iteration = self._iteration
        elif type(iteration) is not int:
            iteration = to_step(iteration)
        self._append(("m", name, value, iteration, _time()))

    def log_metric_at(self, name: str, value: Any, iteration: int | None, timestamp: float | None) -> None:
        """Log a scalar with the wall-clock time it was produced at (seconds since the epoch; None: now).

        For integrations that relay points carrying their own time, such as TensorBoard's `walltime`; values
        are taken as in `log_metric` (an accelerator's tensor is converted on the delivery side).
        """
        if type(value) is not float:
            value = to_float(value)
        if iteration is None:
            iteration = self._iteration
        elif type(iteration) is not int:
            iteration = to_step(iteration)
        if timestamp is None:
            timestamp = _time()
        elif type(timestamp) is not float:
            timestamp = float(timestamp)
        self._append(("m", name, value, iteration, timestamp))

    def log_params(self, params: dict[str, Any]) -> None:
        """Log experiment parameters/hyperparameters."""
        self._append((PARAMS, normalize_params(params), _time()))

    def log_hyperparameter(self, name: str, value: Any) -> None:
        """Log a single hyperparameter (alias for compatibility)."""
        self.log_params({name: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Log key/value tags (beyond the list of tags the experiment was created with)."""
        self._append((TAGS, {str(k): str(v) for k, v in redact_mapping(tags).items()}, _time()))

    def log_summary(self, values: Mapping[str, Any], iteration: int | None = None) -> None:
        """Record the run's single values (final or best figures: `train_runtime`, `best_accuracy`, ...).

        Each tracker keeps them where it keeps one value per name: W&B `run.summary`, ClearML single values,
        MLflow (which has none) a metric point at `iteration`. `iteration` defaults to the highest step
        logged before this call (0 when none). A later call sets a name again (the last value wins); values
        must be real numbers (TypeError otherwise, naming the entry). A backend without its own hook for
        single values receives them as metric points at that step. Read back with `LocalRun.summary()`.
        """
        step = None if iteration is None else to_step(iteration)
        self._append((SUMMARY, summary_values(values), step, _time()))

    def set_iteration(self, iteration: int) -> None:
        """Set the current iteration/step number."""
        self._iteration = to_step(iteration)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every backend has taken what was logged so far; False if `timeout` passed first."""
        return self._orchestrator.flush(timeout) if self._orchestrator is not None else True

    # -- artifacts ---------------------------------------------------------------------------------------------------
    # The explicit artifact methods work in every started experiment (the spec's basic example logs a file after a
    # plain start_logging). `enable_artifacts` / `artifacts=True` switch on the automatic part: with
    # `automagic_artifacts` or `watch_filesystem`, new files in `artifact_watch_dirs` are logged as artifacts.
    # Config keys (the experiment's config dict): `artifact_routing` ({type: [backend, ...]}) overrides where a type
    # goes; `artifact_watch_interval`, `artifact_watch_settle` (seconds) and `artifact_watcher` ("auto", "watchdog",
    # "polling") tune watching.
    def _artifact_manager(self) -> ArtifactManager:
        if self._artifacts is None:
            raise TraceletException("the artifact system is not available before start()")
        return self._artifacts

    def create_artifact(
        self, name: str, artifact_type: ArtifactType, description: str | None = None
    ) -> TraceletArtifact:
        """Create a new artifact builder."""
        from tracelet.core.artifacts.model import TraceletArtifact

        return TraceletArtifact(name, artifact_type, description)

    def log_artifact(
        self, artifact: TraceletArtifact | str, artifact_path: str | None = None, *, wait: bool | float = False
    ) -> dict[str, ArtifactResult]:
        """Log an artifact (or a file or folder path) to every backend it routes to.

        The files are snapshotted into the run before this returns, so later writes do not change what was
        logged; backends store it on their own threads. Returns one ArtifactResult per target backend, pending
        until delivered (`result.wait()`), or already final with `wait=True` (or `wait=<seconds>`). A failing
        backend yields a result with `error` set; it never raises here.

        `artifact_path` takes MLflow's own `log_artifact(local_path, artifact_path)`: the folder inside the
        artifact that the file (under its own name) or the folder's files go to. Only with a path.
        """
        if artifact_path is None:
            return self._artifact_manager().log(artifact, wait=wait)
        if not isinstance(artifact, (str, os.PathLike)):
            raise ConfigurationError(
                "log_artifact(path, artifact_path): artifact_path goes with a file or folder path; for a "
                "TraceletArtifact, give each file its path with add_file(local_path, artifact_path)"
            )
        return self._artifact_manager().log_under(artifact, artifact_path, wait=wait)

    def get_artifact(
        self, name: str, version: str = "latest", backend: str | None = None, *, load: bool = False
    ) -> TraceletArtifact | None:
        """Retrieve an artifact by name and version ("latest", "v2") from `backend` (default: the local store
        first). Its files point at the stored copies; pickled objects are only unpickled with `load=True`."""
        return self._artifact_manager().get(name, version=version, backend=backend, load=load)

    def list_artifacts(
        self, type_filter: ArtifactType | None = None, backend: str | None = None
    ) -> list[TraceletArtifact]:
        """List available artifacts (every stored version), optionally of one type."""
        return self._artifact_manager().list(type_filter=type_filter, backend=backend)

    def log_file_artifact(self, local_path: str, artifact_path: str | None = None) -> dict[str, ArtifactResult]:
        """Legacy method for logging one file as an artifact named after it, typed by its extension."""
        return self._artifact_manager().log_file(local_path, artifact_path)

    def skip_capture(self, path: str | os.PathLike[str]) -> None:
        """Files under folder `path` are not captured automatically (folder watcher, `torch.save` capture):
        for an integration that logs them itself, such as Trainer checkpoints, so nothing is logged twice."""
        self._artifact_manager().skip_capture(path)

    def capture_skipped(self, path: str | os.PathLike[str]) -> bool:
        """Whether automatic capture must leave `path` alone (it is under a folder given to `skip_capture`)."""
        return self._artifacts is not None and self._artifacts.capture_skipped(path)

    # -- automagic (tracelet.core.run.automagic) -------------------------------------------------------------------------
    def capture_hyperparams(self) -> dict[str, Any]:
        """Capture the caller's simple local variables (numbers, strings, booleans) as parameters."""
        found = magic.simple_locals(sys._getframe(1), self.automagic_config, self._frameworks.detect)
        if found:
            self.log_params(found)
        return found

    def capture_model(self, model: Any) -> dict[str, Any]:
        """Describe a model through the framework plugins (or generically) and log it as parameters."""
        info = self._frameworks.describe("framework_describe_model", model=model) or magic.generic_model_info(model)
        self.log_params({f"model/{k}": v for k, v in info.items()})
        return info

    def capture_dataset(self, dataset: Any) -> dict[str, Any]:
        """Describe a dataset through the framework plugins (or generically) and log it as parameters."""
        info = self._frameworks.describe("framework_describe_dataset", dataset=dataset) or (
            magic.generic_dataset_info(dataset)
        )
        self.log_params({f"dataset/{k}": v for k, v in info.items()})
        return info

    def __repr__(self) -> str:
        return f"<Experiment {self._name!r} id={self._id} backends={self.backend_names} status={self.status.value}>"


def _not_started(event: Event) -> None:
    raise TraceletException("the experiment has not been started: call start() first")


_warned_after_stop = False


def _after_stop(event: Event) -> None:
    global _warned_after_stop
    if not _warned_after_stop:
        _warned_after_stop = True
        logger.warning("tracelet: logging after the experiment stopped is ignored")


class DryRun(Experiment):
    """An experiment whose config has `track_metrics=False` (a dry run): `log_metric` and `log_metric_at` are
    no-ops that check nothing and cost nothing; params, tags and artifacts are recorded as usual."""

    def log_metric(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: metrics are off in this run."""

    def log_metric_at(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: metrics are off in this run."""


class IdleRank(Experiment):
    """An experiment on a rank that does not report (the `rank0` policy, rank != 0; `tracelet.core.run.distributed`).

    Every method is a no-op that accepts anything and never raises, cheaper than rank 0's `log_metric` (one call,
    no conversion: a value rank 0 would refuse is not looked at). `stop()` returns at once, ending the node's
    system-metrics writer where this rank runs one (`tracelet.core.run.idle`). `start()` made it one.
    """

    def log_metric(self, *args: Any, **kwargs: Any) -> None:
        return None

    def log_metric_at(self, *args: Any, **kwargs: Any) -> None:  # TensorBoard's relay logs through it
        return None

    def log_params(self, *args: Any, **kwargs: Any) -> None:
        return None

    def log_hyperparameter(self, *args: Any, **kwargs: Any) -> None:
        return None

    def set_tags(self, *args: Any, **kwargs: Any) -> None:
        return None

    def set_iteration(self, *args: Any, **kwargs: Any) -> None:
        return None

    def log_summary(self, *args: Any, **kwargs: Any) -> None:
        return None

    def flush(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def log_artifact(self, *args: Any, **kwargs: Any) -> dict[str, ArtifactResult]:
        return {}

    def log_file_artifact(self, *args: Any, **kwargs: Any) -> dict[str, ArtifactResult]:
        return {}

    def get_artifact(self, *args: Any, **kwargs: Any) -> None:
        return None

    def list_artifacts(self, *args: Any, **kwargs: Any) -> list[TraceletArtifact]:
        return []

    def skip_capture(self, *args: Any, **kwargs: Any) -> None:
        return None

    def capture_skipped(self, *args: Any, **kwargs: Any) -> bool:
        return True  # nothing is captured on this rank: every path is left alone

    def capture_hyperparams(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    def capture_model(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    def capture_dataset(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    def stop(self, *args: Any, **kwargs: Any) -> None:
        lifecycle.deactivate(self)  # as on rank 0: a stopped run is nobody's active experiment
        node, self._node = self._node, None
        if node is not None:
            lifecycle.unregister(self)
            node.close()
        return None

    def end(self, *args: Any, **kwargs: Any) -> None:
        return self.stop()
