"""The ClearML backend: one instance per run, called only from that run's Tracelet worker thread.

Guarantees:

- **No auto-capture, no double capture.** The task starts with every ClearML auto-connection off (frameworks,
  TensorBoard, matplotlib, `torch.save`, argparse, stdout/stderr, resource monitoring, repository detection):
  Tracelet routes those itself, so each point reaches ClearML exactly once. Each switch can be turned back on
  in the config block.
- **The process is left as it was found.** What importing clearml and `Task.init` replace (argparse's
  methods, `sys.exit`, `sys.excepthook`, signal handlers, the `atexit` hook, the import hook `close()` adds)
  is put back right after `Task.init` and again after `close()` (see `tracelet_clearml.process`), so
  Tracelet's own SIGTERM / excepthook / atexit handling stays in charge of ending the run.
- **No hangs.** Reporting runs in-process (`tracelet_clearml.session`), repository detection is off unless
  asked for, and `close()` runs on a helper thread bounded by the stop timeout.
- **Ranks side by side.** Under `distributed=per_rank` every rank's task carries one tag per launch,
  `group:<name>-<group id>` (filter by it to compare the ranks), and user properties `tracelet.rank`,
  `tracelet.world_size`, `tracelet.node`.
- **Offline** (`offline=True` or `CLEARML_OFFLINE_MODE=1`): no configuration file, no credentials, no network.
  The session folder and its zip are in `<CLEARML_CACHE_DIR>/offline/`; ClearML also records the last task
  in `~/.clearml/.session.json` (its own bookkeeping, not avoidable through its API).

Every hook is synchronous (the worker thread is the asynchrony) and raises on a delivery failure so the core
retries the batch. A retried metric batch resumes after the points already reported.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from tracelet_clearml import session
from tracelet_clearml.artifacts import ArtifactStore
from tracelet_clearml.names import title_series
from tracelet_clearml.options import Options
from tracelet_clearml.params import hyperparameters, properties
from tracelet_clearml.process import ProcessState
from tracelet_clearml.scalars import ScalarWriter

logger = logging.getLogger("tracelet.clearml")

DEFAULT_STOP_TIMEOUT = 30.0
# Run status -> ClearML task status (as ClearML's own close() would set it for the same ending).
STATUS = {RunStatus.FINISHED: "completed", RunStatus.FAILED: "failed", RunStatus.KILLED: "stopped"}

GROUP_TAG_PREFIX = "group:"
# Where ClearML keeps single values (`Logger.report_single_value`): its own title and reserved iteration.
SUMMARY_TITLE = "Summary"
SUMMARY_ITERATION = -(2**31)
_ours: set[str] = set()  # ids of tasks Tracelet opened in this process (ClearML allows one main task)
_ours_lock = threading.Lock()


class ClearMLBackend:
    """Tracelet backend that logs runs to ClearML (a server, or an offline session for later upload)."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.options = Options()
        self.task: Any = None
        self.attached = False  # logging into a task the user opened, which Tracelet neither closes nor marks
        self._report: ScalarWriter | None = None
        self._state: ProcessState | None = None
        self._was_offline: bool | None = None
        self._offline_env: dict[str, str | None] = {}
        self._master_env: dict[str, str | None] | None = None  # ClearML's task-owner mark before the run
        self._artifacts: ArtifactStore | None = None
        self._progress: tuple[tuple[Any, ...], int] | None = None  # (batch identity, points already reported)
        self._details: dict[str, Any] = {}
        self._stop_timeout = DEFAULT_STOP_TIMEOUT

    # -- lifecycle -----------------------------------------------------------------------------------------
    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="Logs runs to ClearML, online or as offline sessions: scalars, hyperparameters, tags, "
            "statuses, artifacts and output models.",
            capabilities=["metrics", "params", "tags", "summary", "artifacts", "status", "offline", "import"],
        )

    @hookimpl
    def backend_import_runs(self, source: str, config: dict[str, Any]) -> Iterator[SourceRun]:
        """Tasks of ClearML offline sessions (`tracelet_clearml.importer`); online tasks are not read yet.

        :param source: an offline session folder (`<cache>/offline/<task id>`), its zip, or a folder of them.
        :param config: none accepted.
        """
        from tracelet_clearml import importer

        return importer.import_runs(source, config)

    @hookimpl
    def plugin_setup(self, config: dict[str, Any]) -> None:
        """Read the `clearml` config block (unknown keys warned about, bad values a ConfigurationError).

        :param config: the keys addressed to this backend.
        """
        self.config = dict(config or {})
        self.options = Options.from_config(self.config)

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        """Open the run's ClearML task (or attach to one the user opened); return its id, project and where it is.

        :param run: the run: name, project, tags, config block, metadata.
        :return: `task_id`, `project`, `offline`, `attached`, and `url` (online) or `session_folder`,
            `offline_session` (the zip written at stop) and `import_command` (offline).
        """
        if self.task is not None:
            return self._details
        opts = self.options
        settings_timeout = getattr(getattr(run, "settings", None), "stop_timeout", None)
        self._stop_timeout = float(opts.stop_timeout or settings_timeout or DEFAULT_STOP_TIMEOUT)
        if self._state is None:
            self._state = ProcessState.capture()  # before clearml's first import, which patches argparse
        try:
            self._open_task(run, opts)
        except BaseException:
            self._abandon_task()
            self._leave_process()
            raise
        return self._details

    def _abandon_task(self) -> None:
        """A start that failed after `Task.init` closes that task, so the next start is not refused for it."""
        task, self.task = self.task, None
        if task is None or self.attached:
            return
        with _ours_lock:
            _ours.discard(str(task.id))
        closer = threading.Thread(target=task.close, name="tracelet-clearml-close", daemon=True)
        closer.start()
        closer.join(float(self.options.close_timeout or self._stop_timeout))

    def _open_task(self, run: RunContext, opts: Options) -> None:
        assert self._state is not None
        from clearml import Task  # noqa: F401  (an ImportError here is reported by start())

        if not opts.auto_connect_arg_parser:
            self._state.restore_argparse()
        if self._master_env is None:
            self._master_env = session.own_process()  # before current_task(), which adopts an inherited task
        current: Task | None = Task.current_task()  # ClearML's annotation: a TypeVar bound by nothing, never None
        if current is not None:
            if str(current.id) in _ours:
                raise ConfigurationError(
                    "tracelet-clearml: another Tracelet run of this process is logging to ClearML task "
                    f"{current.id}; ClearML allows one task per process: stop that run first"
                )
            # The user opened a task themselves: log into it as it is (its reporting mode, online or offline),
            # and leave closing it to them.
            self.task, self.attached = current, True
        else:
            session.use_in_process_reporting()
            if self._was_offline is None:
                self._was_offline = session.is_offline()
                self._offline_env = session.offline_env()
            if opts.offline != self._was_offline:
                session.set_offline(bool(opts.offline))
            if opts.offline:
                session.skip_update_check()
            if opts.auto_connect_arg_parser:
                session.rearm_argparse_capture()
            if opts.streams_captured():
                session.rearm_stream_capture()
            self.task = self._init_task(Task, run, opts)
            with _ours_lock:
                _ours.add(str(self.task.id))
        self._report = ScalarWriter(self.task)
        self._artifacts = ArtifactStore(self.task)
        self._describe_source(run)
        self._details = self._start_details(run)

    def _init_task(self, task_cls: Any, run: RunContext, opts: Options) -> Any:
        from clearml.backend_api.session.defs import MissingConfigError

        task_type = opts.task_type
        if task_type not in task_cls.TaskTypes.__members__:
            raise ConfigurationError(
                f"tracelet-clearml: task_type {task_type!r} is not a ClearML task type; use one of "
                + ", ".join(task_cls.TaskTypes.__members__)
            )
        assert self._state is not None
        tags = list(dict.fromkeys([*(str(t) for t in run.tags), *opts.tags]))  # the block's `tags` join them
        group = group_label(run.metadata)
        if group:
            tags.append(f"{GROUP_TAG_PREFIX}{group}")  # the ranks of one per_rank launch share this tag
        resume: dict[str, Any] = {}
        if opts.run_id and not opts.offline:
            resume["continue_last_task"] = opts.run_id  # the same task, reopened (its reports continue)
        elif opts.run_id:
            logger.info(
                "tracelet-clearml: an offline session cannot be reopened; task %s is continued in a new task",
                opts.run_id,
            )
        try:
            task = task_cls.init(
                project_name=opts.project_name or run.project,
                task_name=opts.task_name or run.name,
                task_type=task_type,
                tags=tags or None,
                reuse_last_task_id=opts.reuse_last_task_id,
                output_uri=opts.output_uri,
                auto_connect_frameworks=opts.frameworks_argument(),
                auto_connect_arg_parser=opts.auto_connect_arg_parser,
                auto_connect_streams=opts.auto_connect_streams,
                auto_resource_monitoring=opts.auto_resource_monitoring,
                **resume,
            )
        except MissingConfigError as exc:
            raise ConfigurationError(
                "tracelet-clearml: ClearML has no server configuration: run `clearml-init`, set "
                "CLEARML_API_HOST / CLEARML_API_ACCESS_KEY / CLEARML_API_SECRET_KEY, or log offline with "
                'config={"clearml": {"offline": True}} (or CLEARML_OFFLINE_MODE=1)'
            ) from exc
        # Tracelet ends the run at exit, on SIGTERM and on an uncaught exception; ClearML's hooks would close
        # the task first (before Tracelet delivered the rest) or report the ending twice.
        _unregister_exit_hooks(task)
        session.detach_fork_hooks()
        restored = self._state.restore(streams=not opts.streams_captured(), arguments=not opts.auto_connect_arg_parser)
        if restored:
            logger.debug("tracelet-clearml: put back after Task.init: %s", ", ".join(restored))
        return task

    def _describe_source(self, run: RunContext) -> None:
        """Tracelet's own run facts (already redacted) as user properties and the task's repository, so
        ClearML's UI shows them without ClearML running `git` itself."""
        task = self.task
        meta = run.metadata or {}
        git = meta.get("git") or {}
        env = meta.get("environment") or {}
        props = {"tracelet.run_id": run.run_id, "tracelet.project": run.project}
        if run.run_dir:
            props["tracelet.run_dir"] = str(run.run_dir)
        if env.get("hostname"):
            props["tracelet.hostname"] = str(env["hostname"])
        if "dirty" in git:
            props["tracelet.git.dirty"] = str(bool(git["dirty"])).lower()
        dist = meta.get("distributed") or {}
        props.update({f"tracelet.{k}": str(dist[k]) for k in ("rank", "world_size", "node") if k in dist})
        try:
            task.set_user_properties(*props.items())
            if git.get("commit") and not self.options.detect_repository and not self.attached:
                repo, branch, commit = git.get("remote") or "", git.get("branch") or "", str(git["commit"])
                if task.data.script is not None:
                    task.set_repo(repo=repo, branch=branch, commit=commit)
                else:
                    # A new task has no script section until ClearML's own repository detection fills one, and
                    # set_repo only edits an existing one: write the section whole.
                    from clearml.backend_api.services import tasks as tasks_api

                    task._update_script(tasks_api.Script(repository=repo, branch=branch, version_num=commit))
        except Exception as exc:  # descriptive only: never worth failing the run's start over
            logger.debug("tracelet-clearml: could not record the run's source: %s", exc)

    def _start_details(self, run: RunContext) -> dict[str, Any]:
        task = self.task
        details: dict[str, Any] = {
            "task_id": str(task.id),
            "run_id": str(task.id),  # the key `tracelet sync` records and hands back (as config) to reopen it
            "project": str(task.get_project_name() or ""),
            "offline": session.is_offline(),
            "attached": self.attached,
        }
        if details["offline"]:
            folder = task.get_offline_mode_folder()
            if folder:
                zip_path = f"{Path(folder).as_posix()}.zip"  # written by close() at stop
                details.update(
                    session_folder=str(folder),
                    offline_session=zip_path,
                    import_command=session.import_command(zip_path),
                )
        else:
            url = session.task_url(task)
            if url:
                details["url"] = url
        return details

    @hookimpl
    def backend_flush(self) -> None:
        """Hand ClearML's queued events to its writer (without waiting for uploads)."""
        if self.task is not None:
            self.task.flush(wait_for_uploads=False)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        """Close the task with the run's status (bounded by `close_timeout`) and put the process back.

        :param status: how the run ended: FINISHED, FAILED or KILLED -> completed, failed, stopped.
        """
        if self.task is None:
            self._leave_process()
            return
        try:
            if self.attached:
                self.task.flush(wait_for_uploads=True)
                return
            self._close(RunStatus(status))
        finally:
            self._leave_process()

    def _close(self, status: RunStatus) -> None:
        task, offline = self.task, self.options.offline
        state = STATUS.get(status, "completed")
        if offline:
            # Offline, ClearML drops status requests; the session's task.json records what close() saves.
            task.data.status = state
            task.data.status_reason = f"tracelet: run {status.value}"
        timeout = float(self.options.close_timeout or self._stop_timeout)
        closer = threading.Thread(target=task.close, name="tracelet-clearml-close", daemon=True)
        closer.start()
        closer.join(timeout)
        with _ours_lock:
            _ours.discard(str(task.id))
        if closer.is_alive():
            raise TimeoutError(
                f"ClearML's Task.close() did not return within {timeout:g} s (stop timeout); it goes on in the "
                "background. Raise stop_timeout (or clearml close_timeout) if the server is slow."
            )
        if not offline and status is not RunStatus.FINISHED:
            # close() marked the task completed; mirror the run's real ending.
            if status is RunStatus.FAILED:
                task.mark_failed(status_reason=f"tracelet: run {status.value}", force=True)
            else:
                task.stopped(force=True, status_reason=f"tracelet: run {status.value}")
        zip_path = self._details.get("offline_session")
        if zip_path and not Path(zip_path).exists():
            logger.warning("tracelet-clearml: ClearML did not write the offline session %s", zip_path)

    def _leave_process(self) -> None:
        """Put back what ClearML replaced in the process, and ClearML's own offline switch."""
        if self.task is not None and not self.attached:
            _unregister_exit_hooks(self.task)
        if self._state is not None:
            restored = self._state.restore()
            if restored:
                logger.debug("tracelet-clearml: put back at stop: %s", ", ".join(restored))
        if self._was_offline is not None and self.options.offline != self._was_offline and not self.attached:
            session.restore_offline(self._was_offline, self._offline_env)
        if self._master_env is not None and not self.attached:
            # ClearML marked this process as its task's owner; processes started after the run inherit nothing.
            session.restore_env(self._master_env)

    # -- data ------------------------------------------------------------------------------------------------
    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        """Report each point as a scalar (title/series rule, its step and logging time); a retried batch resumes.

        :param metrics: the batch, in logging order.
        """
        if not metrics or self._report is None:
            return
        first, last = metrics[0], metrics[-1]
        identity = (len(metrics), first.name, first.step, first.timestamp, last.name, last.step, last.timestamp)
        done = self._progress[1] if self._progress is not None and self._progress[0] == identity else 0
        write = self._report.write
        try:
            for m in metrics[done:]:
                title, series = title_series(m.name)
                write(m.name, title, series, float(m.value), int(m.step), m.timestamp)
                done += 1
        finally:
            self._progress = (identity, done) if done < len(metrics) else None

    @hookimpl
    def backend_log_summary(self, summary: dict[str, float]) -> None:
        """Single values, as `Logger.report_single_value` reports them: series `name` of title `Summary` at
        ClearML's single-value iteration (the task's "Summary" table). A later value replaces an earlier one in
        ClearML's table, so a retried call is harmless.

        :param summary: name -> value.
        """
        if not summary or self._report is None:
            return
        now = time.time()
        for name, value in summary.items():
            self._report.write(name, SUMMARY_TITLE, name, float(value), SUMMARY_ITERATION, now)

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        """Update the task's hyperparameters (`General/<key>`, nested dicts as sections).

        :param params: merged params; a later value of a key wins.
        """
        if params and self.task is not None:
            mapped = hyperparameters(params)
            if mapped:
                self.task.update_parameters(mapped)

    @hookimpl
    def backend_log_tags(self, tags: dict[str, str]) -> None:
        """Set key/value tags as the task's user properties.

        :param tags: merged tags; a later value of a key wins.
        """
        if tags and self.task is not None:
            mapped = properties(tags)
            if mapped:
                # (name, value) pairs, not keyword arguments: a tag named "self" would collide with the method's
                # own parameter (TypeError), and the batch would be retried until the stop timeout.
                self.task.set_user_properties(*mapped.items())

    # -- artifacts -----------------------------------------------------------------------------------------------
    @hookimpl
    def backend_log_artifact(self, artifact: TraceletArtifact) -> ArtifactResult:
        """Upload the artifact as the next version `<name>/v<N>` (and an output model for model types).

        :param artifact: the artifact, its files being run-owned snapshots.
        """
        if self._artifacts is None:
            raise RuntimeError("the ClearML task has not started yet")
        return self._artifacts.store(artifact)

    @hookimpl
    def backend_get_artifact(self, name: str, version: str) -> TraceletArtifact | None:
        """Fetch a stored version into ClearML's cache.

        :param name: the artifact's name. :param version: "latest", "v2" or "2".
        """
        if self._artifacts is None:
            return None
        return self._artifacts.get(name, version)

    @hookimpl
    def backend_list_artifacts(self, type_filter: ArtifactType | None) -> list[TraceletArtifact]:
        """Every stored version, from the manifests kept in the artifacts' metadata.

        :param type_filter: only artifacts of this type, or all.
        """
        if self._artifacts is None:
            return []
        return self._artifacts.manifests(type_filter)


def _unregister_exit_hooks(task: Any) -> None:
    """Drop ClearML's `atexit` hooks of `task`: its `_at_exit` (closes the task) and its reporter's
    `_handle_program_exit` (stops the reporter). Both run before Tracelet's own exit handler (atexit is
    last-in-first-out), so points Tracelet delivers at exit, such as after an uncaught exception, would
    find the reporter stopped. Tracelet's stop() closes the task, which flushes and stops the reporter."""
    for owner, name in ((task, "_at_exit"), (getattr(task, "_reporter", None), "_handle_program_exit")):
        hook = getattr(owner, name, None) if owner is not None else None
        if hook is not None:
            atexit.unregister(hook)
