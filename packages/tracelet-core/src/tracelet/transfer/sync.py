"""`tracelet sync`: deliver a local run's journal to any installed backend, later, exactly where it left off.

Guarantees:

- **The live path.** Each target backend gets a `BackendWorker` (the live run's worker class) reading the
  run's journal through `JournalSource`, so it receives the same hook calls as a live run: metrics with their
  original steps and timestamps, params, tags, artifacts (from the run's stored snapshots), then
  `backend_end_run` with the run's final status (KILLED for a run whose process died; `tracelet.core.engine.owner`).
- **Idempotent and resumable.** Every batch the worker asks for proves the ones before it were delivered; the
  cursor is written to run.json (`sync.<backend>.cursor`, see `tracelet.transfer.state`) right then, with the
  backend's run id as soon as its run exists. A second sync delivers nothing; a sync stopped by Ctrl-C, a
  timeout, an outage or SIGKILL resumes from the last recorded cursor into the same backend run (config key
  `run_id`, which backends that can reopen a run accept). At most the one batch in flight when the process
  died is delivered again; MLflow stores a repeated metric point (same key, step, timestamp, value) once,
  and artifact events are recorded one by one, so they are not stored twice.
- **Leftovers of a live run.** With no targets, a run's own backends that did not receive everything (a
  tracker down past the stop timeout, or a run whose process died) are finished in place: the same backend
  run (its id comes from run.json), from the event where the live run stopped. A backend that opens another
  run instead (it cannot reopen that one: W&B or ClearML offline) is given the whole run from event 0.
  Artifacts the live run failed to deliver (`delivery.<backend>.failed_artifacts`, an outage at that moment)
  are sent into the same backend run first; one that fails again stays pending for the next sync.
- **One sync per run at a time** (a `flock` on `<run>/sync.lock`); a run that is still alive is refused.

Config for a target: the config its live run used (secrets masked there are left out: give them again, or
through the tracker's environment variables), then what the previous sync used, then `config=`. A value
in `config=` for a key that says where the run lives (its name holds uri, url, host, server, project,
entity, workspace, dir, mode, offline or run_id) that differs from the recorded one means another
destination: delivery to it starts afresh (a new backend run, from the first event). Other keys (timeouts,
say) only tune the delivery. `config` takes `KEY: value` for every
target and `{backend: {KEY: value}}` (or `backend.KEY`, or `backend_KEY` as in a live run's config dict:
`mlflow_tracking_uri`) for one. An artifact whose upload fails is retried like any batch and recorded only
once it landed, so a sync that gave up on it (timeout, Ctrl-C) sends it again next time.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import attrs

from tracelet.core.contract import discovery
from tracelet.core.contract.records import ARTIFACT, RunContext, RunStatus
from tracelet.core.engine import backoff, journal
from tracelet.core.engine.backend import Backend
from tracelet.core.engine.wiring import bind_backends
from tracelet.core.engine.worker import BackendWorker
from tracelet.core.plugins import PluginType
from tracelet.exceptions import ConfigurationError, TraceletException
from tracelet.transfer import state as state_mod
from tracelet.transfer.progress import Progress

logger = logging.getLogger("tracelet")

LOCK_FILE = "sync.lock"
# Config keys that say where a backend's run lives: another value there is another destination.
_DESTINATION = re.compile(r"uri|url|host|server|project|entity|workspace|dir|mode|offline|run_id", re.IGNORECASE)
END_TIMEOUT = 60.0  # seconds for a backend to end its run once everything is delivered
POLL = 0.1

try:
    import fcntl
except ImportError:  # Windows: no flock; two syncs of one run at once are then the user's to avoid
    fcntl = None  # type: ignore[assignment]


@attrs.define
class BackendSync:
    """What one target received in one sync."""

    backend: str
    run_id: str | None = None
    delivered: int = 0  # events delivered by this sync
    cursor: int = 0  # events delivered in all (this sync and before)
    events: int = 0  # events in the journal
    status: str | None = None  # the status the backend run was ended with
    complete: bool = False
    skipped: str | None = None  # why nothing was done (up to date, would deliver (dry run), ...)
    error: str | None = None
    errors: dict[str, int] = attrs.field(factory=dict)
    lost: int = 0  # events this sync could not send: lost to damage in the journal (`SyncReport.damage`)


@attrs.define
class SyncReport:
    """One run's sync: per target backend, what was delivered; `damage`: what of the journal was skipped
    (`tracelet.core.engine.journal.Damage.describe()`, with the byte offset and the events lost)."""

    run_id: str
    path: str
    status: str
    backends: dict[str, BackendSync] = attrs.field(factory=dict)
    damage: list[str] = attrs.field(factory=list)

    @property
    def complete(self) -> bool:
        return all(b.complete or b.skipped == "up to date" for b in self.backends.values())


class SyncState:
    """run.json's `sync` entries, updated from several worker threads, written atomically on each change."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.meta = meta
        self._lock = threading.Lock()

    def update(self, name: str, **fields: Any) -> None:
        with self._lock:
            entries = self.meta.setdefault(state_mod.SYNC_KEY, {})
            entry = entries.setdefault(name, {})
            entry.update(fields)
            entry["updated_at"] = datetime.now(timezone.utc).isoformat()
            journal.write_meta(self.run_dir, self.meta)

    def add_artifact(self, name: str, token: str) -> None:
        with self._lock:
            entry = self.meta.setdefault(state_mod.SYNC_KEY, {}).setdefault(name, {})
            entry.setdefault("artifacts", []).append(token)
            journal.write_meta(self.run_dir, self.meta)

    def refuse_artifact(self, name: str, token: str) -> None:
        with self._lock:
            entry = self.meta.setdefault(state_mod.SYNC_KEY, {}).setdefault(name, {})
            entry.setdefault("refused_artifacts", []).append(token)
            journal.write_meta(self.run_dir, self.meta)

    def artifacts(self, name: str) -> set[str]:
        with self._lock:
            return set(((self.meta.get(state_mod.SYNC_KEY) or {}).get(name) or {}).get("artifacts") or [])


class JournalSource:
    """The worker's event source for a finished run: its journal, read forward from the worker's cursor."""

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        end: int,
        name: str,
        state: SyncState,
        start: int = 0,
        resume_run: str | None = None,
        pending: Iterable[str] = (),
    ) -> None:
        """:param start: the first event to deliver: how far the backend run `resume_run` already got.
        :param resume_run: the backend's run id that `start` counts for (None when unknown).
        :param pending: tokens of artifact events the live run failed to deliver to `resume_run` (sent first)."""
        self.run_dir = run_dir
        self.run_id = run_id
        self.end = end
        self.name = name
        self.state = state
        self.cancelled = False
        self.resume_run = resume_run
        self.restarted = False  # the backend opened another run than `resume_run`: delivery began at event 0
        self.checked = False  # the first fetch happened: the start point above is settled
        # The last cursor proven delivered (the worker confirmed it before any cancel); after a cancel the
        # worker's own cursor may count hook calls that reached no plugin (see `_cancel`), this one never does.
        self.confirmed_at = start
        self.worker: BackendWorker | None = None
        self.pending = list(pending)
        self.still_pending: list[str] = []  # pending artifacts that failed again: the next sync tries them
        self._events: Iterator[tuple[int, tuple]] | None = None
        self._held: tuple[int, tuple] | None = None  # read past a gap (damage): the next fetch starts with it
        self._next = -1
        self._recorded = -1

    def fetch(self, cursor: int, limit: int) -> tuple[int, list[tuple]]:
        if self.cancelled:  # hook calls since the cancel reached no plugin: they prove nothing delivered
            return cursor, []
        if not self.checked:  # the first call, on the worker's thread, once its backend run has started
            cursor = self._first_event(cursor)
            if not self.restarted:  # a new backend run gets every artifact with the whole journal
                self._send_pending()
            self.checked = True  # after any reset: sync's loop ends delivery only once this is settled
        if cursor >= self.end:
            return cursor, []
        if self._events is None or self._next != cursor:
            self._events = journal.read_events(self.run_dir / journal.EVENTS_FILE, cursor)
            self._held = None
        want = min(limit, self.end - cursor)
        out: list[tuple] = []
        first: int | None = None
        while len(out) < want:
            item = self._held or next(self._events, None)
            self._held = None
            if item is None:
                break
            seq, event = item
            if first is None:
                first = seq
            if seq >= self.end or seq != first + len(out):  # a gap (damage skipped): returned by the next fetch
                self._held = item
                break
            out.append(event)
        if not out:  # nothing readable up to the end: the worker counts the rest lost
            self._next = self.end
            return self.end, []
        assert first is not None
        self._next = first + len(out)
        return first, out

    def confirmed(self, cursor: int) -> None:
        """The worker's cursor moved: every event before it was delivered (its batches in flight included), so
        record it now; a sync stopped from here on resumes there."""
        if self.cancelled or cursor == self._recorded:  # after a cancel, hook calls reached no plugin
            return
        # Proven before it is written: a Ctrl-C handled on the main thread between the two must still record it
        # (the record on disk is what a watcher, or the user, acts on; `_wrap_up` records `confirmed_at`).
        self._recorded = self.confirmed_at = cursor
        self.state.update(self.name, cursor=cursor)

    def _first_event(self, cursor: int) -> int:
        """Where delivery starts: `cursor` when the backend reopened the run that far along, else event 0.

        A resumed delivery (leftovers of a live run, a dead run, an interrupted sync) starts past the events the
        backend run `resume_run` already holds. A backend that cannot reopen that run (ClearML offline, W&B
        offline, a third-party tracker without the `run_id` key) opens a new one instead: starting that one
        mid-journal would leave it without the run's params and first points, so it gets the whole run.
        """
        worker = self.worker
        if cursor <= 0 or worker is None:
            return cursor
        opened = (worker.backend.details or {}).get("run_id")
        if not opened or str(opened) == str(self.resume_run):
            return cursor  # the same run reopened, or a backend without run ids (nothing to tell apart)
        logger.warning(
            "tracelet: backend %r opened run %s instead of continuing %s; it receives the whole run (%d events)",
            self.name,
            opened,
            self.resume_run or "the live run's",
            self.end,
        )
        self.restarted = True
        self.state.update(self.name, run_id=str(opened), cursor=0, artifacts=[])
        worker.cursor = 0  # on the worker's own thread, before it delivered anything: its next batch is event 0
        return 0

    def _send_pending(self) -> None:
        """Send the artifacts the live run failed to deliver (its worker moved past them) into the backend run.

        On the worker's thread, once the run is open. Each is tried a few times (until the sync's deadline); one
        that still fails stays pending (its token is not recorded), one the backend refuses for good
        (ConfigurationError) is recorded as refused, so it does not keep the run behind forever.
        """
        from tracelet.core.artifacts.manager import DELIVERY_ATTEMPTS, DELIVERY_BACKOFF

        worker = self.worker
        todo = set(self.pending) - self.state.artifacts(self.name)
        if worker is None or not todo:
            return
        backend = worker.backend
        payloads: dict[str, dict[str, Any]] = {}
        for seq, event in journal.read_events(self.run_dir / journal.EVENTS_FILE):  # artifacts are rare: a scan
            if seq >= self.end:
                break
            if event[0] == ARTIFACT and isinstance(event[1], dict) and str(event[1].get("token")) in todo:
                payloads[str(event[1]["token"])] = event[1]
        for token in self.pending:
            if token not in todo:
                continue
            payload = payloads.get(token)
            if payload is None:  # the journal lost it (a torn tail): nothing can send it; say so, once
                logger.warning(
                    "tracelet: artifact event %s is not in %s's journal; it cannot be sent to %r",
                    token,
                    self.run_id,
                    self.name,
                )
                self.state.refuse_artifact(self.name, token)
                continue
            if self.name not in (payload.get("targets") or ()):
                continue  # the live run never sent it here (routing): nothing is owed

            def send(p: dict[str, Any] = payload) -> None:
                self.deliver_artifact(backend, p)

            try:
                backoff.retry(send, attempts=DELIVERY_ATTEMPTS, start=DELIVERY_BACKOFF)
            except Exception as exc:
                if backoff.is_permanent(exc):
                    worker.errors.record("log_artifact refused", exc, retrying=False)
                    self.state.refuse_artifact(self.name, token)
                else:
                    worker.errors.record("log_artifact", exc, retrying=False)
                    self.still_pending.append(token)

    def deliver_artifact(self, backend: Backend, payload: dict[str, Any]) -> None:
        """One artifact from the run's snapshot, once per backend (recorded by its event's token).

        A failed upload raises, unlike a live run's handler: the worker then retries it with backoff until the
        sync's timeout (its cursor stays before the artifact, so a later sync tries again), or counts it refused
        when the plugin raised ConfigurationError. Recording the token anyway would lose the artifact for good:
        every later sync would skip it as delivered.
        """
        from tracelet.core.artifacts import TraceletArtifact

        token = str(payload.get("token") or "")
        if token and token in self.state.artifacts(self.name):
            return
        try:
            artifact = TraceletArtifact.from_dict(_relocate(payload["artifact"], self.run_id, self.run_dir))
        except Exception as exc:  # a damaged record will not heal by retrying: refused, counted, reported
            raise ConfigurationError(f"artifact event in {self.run_dir} cannot be read: {exc}") from exc
        missing = [f.local_path for f in artifact.files if not os.path.exists(f.local_path)]
        if missing:  # the snapshot went once every target had it: the local store's version is the run's copy
            from tracelet.core.artifacts.manager import stored_copy

            kept = stored_copy(self.run_dir, token)
            if kept is not None:
                artifact = kept
                missing = [f.local_path for f in artifact.files if not os.path.exists(f.local_path)]
        if missing:  # the run folder lost the stored copy: no retry brings it back
            raise ConfigurationError(
                f"artifact {artifact.name!r}: stored copy {missing[0]} is missing from the run folder"
            )
        accepted = (
            not backend.implements("backend_accepts_artifact")
            or backend.call("backend_accepts_artifact", artifact=artifact) is not False
        )
        if accepted:
            # A backend's own snapshot (e.g. an MLflow model folder) is only meaningful to that backend.
            snapshot = (payload.get("snapshots") or {}).get(backend.name)
            if snapshot is not None:
                snapshot = _relocate(snapshot, self.run_id, self.run_dir)
            backend.call("backend_log_artifact", artifact=artifact, snapshot=snapshot)
        if self.cancelled:  # the call may have reached no plugin (see `_cancel`): a later sync sends it again
            return
        if token:
            self.state.add_artifact(self.name, token)


def _relocate(value: Any, run_id: str, run_dir: Path) -> Any:
    """Paths into the run folder, valid where the folder is now (it may have been moved or copied)."""
    if isinstance(value, dict):
        return {k: _relocate(v, run_id, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, run_id, run_dir) for v in value]
    if isinstance(value, str) and os.sep in value and run_id in value and not os.path.exists(value):
        parts = Path(value).parts
        if run_id in parts:
            moved = run_dir.joinpath(*parts[parts.index(run_id) + 1 :])
            if moved.exists():
                return str(moved)
    return value


def _parse_targets(to: str | Iterable[str] | None) -> list[str]:
    if to is None:
        return []
    items = [to] if isinstance(to, str) else list(to)
    return [n.strip() for item in items for n in str(item).split(",") if n.strip()]


def _config_for(name: str, config: dict[str, Any], targets: Iterable[str] = ()) -> dict[str, Any]:
    """`config` addressed to `name`: plain keys for every target; `{name: {...}}`, `name.key` and `name_key`
    (the prefix form a live run's config dict takes, e.g. `mlflow_tracking_uri`) for it alone."""
    # A `<target>_key` entry belongs to that target only, never to every target as a plain key.
    prefixed = tuple(f"{t}_" for t in {name, *targets})
    others = {k for k, v in config.items() if isinstance(v, dict)}
    out = {k: v for k, v in config.items() if k not in others and "." not in k and not k.startswith(prefixed)}
    block = config.get(name)
    if isinstance(block, dict):
        out.update(block)
    for prefix in (f"{name}_", f"{name}."):
        out.update({k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix)})
    return out


def final_status(run: Any) -> str:
    """The status to end backend runs with; raises for a run that is (or may be) still running."""
    meta = run.meta
    recorded = meta.get("status")
    if recorded != RunStatus.RUNNING.value:
        return str(recorded)
    from tracelet.core.engine import owner

    alive = owner.liveness(run.path, meta)
    if alive == "dead":
        return owner.DEAD_STATUS
    who = meta.get("owner") or {}
    if alive == "alive":
        raise TraceletException(
            f"run {run.id} is still running (pid {who.get('pid')} on {who.get('host')}); its own workers are "
            "delivering it. Sync it after it ends"
        )
    raise TraceletException(
        f"run {run.id} says RUNNING and whether its process is alive cannot be told (no owner record, or its "
        f'folder cannot be locked). If it is dead, set "status" in {run.path / journal.META_FILE} and sync again'
    )


def _context(run: Any, name: str, config: dict[str, Any]) -> RunContext:
    from tracelet.settings import TraceletSettings

    meta = run.meta
    try:
        created = datetime.fromisoformat(str(meta.get("created_at")))
    except ValueError:
        created = datetime.now(timezone.utc)
    return RunContext(
        run_id=run.id,
        name=str(meta.get("name") or run.id),
        project=str(meta.get("project") or "default"),
        created_at=created,
        tags=list(meta.get("tags") or []),
        config=config,
        metadata=dict(meta.get("metadata") or {}),
        run_dir=str(run.path),
        settings=TraceletSettings(),
    )


class _Plan:
    """One target of one sync: where delivery starts, the config, and (once running) its worker and source."""

    def __init__(self, name: str, point: dict[str, Any], config: dict[str, Any], spec: Any) -> None:
        self.name = name
        self.point = point
        self.config = config
        self.spec = spec
        self.worker: BackendWorker | None = None
        self.source: JournalSource | None = None
        self.finishing = False
        self.start = 0
        self.recorded_run = False
        self.result = BackendSync(name)


def sync(
    run: Any,
    to: str | Iterable[str] | None = None,
    *,
    config: dict[str, Any] | None = None,
    dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    dry_run: bool = False,
    progress: bool | None = False,
    out: TextIO | None = None,
) -> SyncReport:
    """Deliver local run `run` (a `LocalRun`, run id, unique prefix or folder) to the backends `to`.

    With `to=None`, the run's own backends that did not receive everything are finished in place. Returns a
    `SyncReport`; `timeout` (seconds) bounds the whole delivery (None: until done), after which the cursor is
    kept and a later sync resumes. `progress`: True for a bar on a terminal (plain lines otherwise), False
    for nothing, None for lines on `out`. Raises ConfigurationError for unknown backends, TraceletException
    for a run that is still running or being synced by another process.
    """
    from tracelet import store

    local = run if isinstance(run, store.LocalRun) else store.open_run(str(run), dir)
    if local.meta_error is not None:
        raise TraceletException(
            f"run {local.id}: {local.meta_error}; `tracelet verify --repair {local.path}` rebuilds it (the damaged "
            "one is kept beside it), then sync again"
        )
    status = final_status(local)
    dead = local.dead
    names = _parse_targets(to) or state_mod.leftover_backends(local.meta, dead)
    report = SyncReport(local.id, str(local.path), status)
    if not names:
        return report
    specs = {}
    for n in names:
        spec = discovery.find(PluginType.BACKEND, n)
        if spec.name == state_mod.SOURCE_BACKEND:
            raise ConfigurationError("the local store is where runs are synced from; choose another backend")
        specs[spec.name] = spec
    with _SyncLock(local.path, local.id, dry_run):
        local.meta = journal.read_meta(local.path)  # the latest record, now that no other sync writes it
        reader = journal.JournalReader(local.path / journal.EVENTS_FILE)
        for _ in reader.events():
            pass
        total = reader.end_seq  # sequence numbers: events lost to damage count, and are reported lost
        report.damage = [d.describe() for d in reader.damage]
        plans = []
        for name, spec in specs.items():
            point = state_mod.starting_point(local.meta, name, dead)
            given = _config_for(name, dict(config or {}), specs)
            recorded = dict(point.get("config") or {})
            if any(k in recorded and recorded[k] != v and _DESTINATION.search(k) for k, v in given.items()):
                point = {"run_id": None, "details": {}, "config": {}, "cursor": 0, "artifacts": []}  # elsewhere
                recorded = {}
            cfg = {**recorded, **given}
            if point.get("run_id") and "run_id" not in given:
                cfg["run_id"] = point["run_id"]
            plan = _Plan(name, point, cfg, spec)
            res = plan.result
            res.run_id, res.cursor, res.events = point.get("run_id"), int(point.get("cursor") or 0), total
            if (
                point.get("ended")
                and res.cursor >= total
                and point.get("status") in (status, None)
                and not point.get("pending_artifacts")
            ):
                res.skipped, res.complete, res.status = "up to date", True, point.get("status") or status
            elif dry_run:
                res.skipped = "dry run"
            plans.append(plan)
            report.backends[name] = res
        if dry_run or all(p.result.skipped for p in plans):
            return report
        _run(
            local,
            [p for p in plans if not p.result.skipped],
            total,
            RunStatus(status),
            timeout,
            Progress.create(
                progress, out, f"sync {local.id}", sum(total - p.result.cursor for p in plans if not p.result.skipped)
            ),
        )
    return report


def _run(
    local: Any, plans: list[_Plan], total: int, status: RunStatus, timeout: float | None, progress: Progress
) -> None:
    state = SyncState(local.path, local.meta)
    secret_free = _non_secret
    for plan in plans:
        start = min(plan.result.cursor, total)
        state.update(
            plan.name,
            run_id=plan.point.get("run_id"),
            details=plan.point.get("details") or {},
            config=secret_free(plan.config),
            cursor=start,
            events=total,
            ended=False,
            status=None,
            artifacts=list(plan.point.get("artifacts") or []),
        )
        plan.source = JournalSource(
            local.path,
            local.id,
            total,
            plan.name,
            state,
            start,
            resume_run=plan.point.get("run_id"),
            pending=plan.point.get("pending_artifacts") or (),
        )
        context_for = partial(_context, local, config=plan.config)
        plan.worker = bind_backends([plan.spec], context_for, plan.source, cursor=start)[0]
        plan.source.worker = plan.worker
        plan.result.cursor = plan.start = start
    deadline = None if timeout is None else time.monotonic() + timeout
    for plan in plans:
        assert plan.worker is not None
        plan.worker.start()
    try:
        while not all(p.worker is not None and p.worker.done.is_set() for p in plans):
            for plan in plans:
                restarted_from = plan.start
                _step(plan, state, total, status)
                if progress.total is not None and plan.start < restarted_from:  # now sent from event 0
                    progress.total += restarted_from - plan.start
            progress.update(sum(p.worker.cursor - p.start for p in plans if p.worker is not None))
            if deadline is not None and time.monotonic() >= deadline:
                _cancel(plans)
                break
            time.sleep(POLL)
    except KeyboardInterrupt:
        _cancel(plans)
        _wrap_up(plans, state, total, status)
        progress.close("interrupted; run the same sync again to resume")
        raise
    for plan in plans:
        assert plan.worker is not None
        plan.worker.done.wait(END_TIMEOUT)
    _wrap_up(plans, state, total, status)
    progress.close(None, [p.result for p in plans])


def _step(plan: _Plan, state: SyncState, total: int, status: RunStatus) -> None:
    worker = plan.worker
    assert worker is not None
    if worker.started.is_set() and not plan.recorded_run and worker.start_error is None:
        details = _plain(worker.backend.details)
        if details or worker.done.is_set():
            plan.recorded_run = True
            plan.result.run_id = details.get("run_id") or plan.result.run_id
            state.update(plan.name, run_id=plan.result.run_id, details=details)
    if plan.source is not None and plan.source.restarted and plan.start:  # counted from event 0 from now on
        plan.start = plan.result.cursor = 0
    settled = plan.source is None or plan.source.checked or worker.done.is_set()
    if not plan.finishing and settled and worker.cursor >= total and worker.started.is_set():
        plan.finishing = True
        worker.finish(status, worker.clock.monotonic() + END_TIMEOUT, total)


def _cancel(plans: list[_Plan]) -> None:
    """Stop delivering now, leave the backend runs as they are (a later sync resumes them)."""
    for plan in plans:
        if plan.source is None or plan.worker is None or plan.worker.done.is_set() or plan.finishing:
            continue
        plan.source.cancelled = True
        backend = plan.worker.backend
        backend.pm.unregister(backend.plugin)  # the worker's remaining hook calls (end, teardown) reach nobody
        plan.worker.finish(RunStatus.KILLED, plan.worker.clock.monotonic(), 0)


def _wrap_up(plans: list[_Plan], state: SyncState, total: int, status: RunStatus) -> None:
    for plan in plans:
        worker, res = plan.worker, plan.result
        assert worker is not None
        cursor = worker.cursor
        if plan.source is not None and plan.source.restarted:
            res.cursor = 0  # a new backend run, delivered from event 0
        if plan.source is not None and plan.source.cancelled:
            cursor = min(cursor, plan.source.confirmed_at)  # only what reached the plugin before the cancel
        res.delivered = max(cursor - res.cursor, 0)
        res.cursor = cursor
        res.errors = worker.errors.summary()
        res.lost = worker.dropped
        if worker.start_error is not None:
            res.error = f"{type(worker.start_error).__name__}: {worker.start_error}"
            continue
        details = _plain(worker.backend.details)
        res.run_id = details.get("run_id") or res.run_id
        ended = plan.finishing and worker.done.is_set() and cursor >= total
        res.complete = ended
        if plan.source is not None and plan.source.still_pending:
            res.complete = False  # the backend run is ended, yet lacks these: the next sync sends them
            res.error = (
                f"{len(plan.source.still_pending)} artifact(s) the live run failed to deliver failed "
                f"again; run `tracelet sync {plan.source.run_id}` again to send them"
            )
        res.status = status.value if ended else None
        state.update(
            plan.name, run_id=res.run_id, details=details or None, cursor=cursor, ended=ended, status=res.status
        )


def _plain(value: Any) -> dict[str, Any]:
    from tracelet.core.contract.values import plain

    out = plain(dict(value or {}))
    return out if isinstance(out, dict) else {}


def _non_secret(config: dict[str, Any]) -> dict[str, Any]:
    """Config recorded in run.json: what redaction would mask is left out."""
    from tracelet.core.contract.redact import MASK, redact_mapping

    return {k: v for k, v in _plain(redact_mapping(config)).items() if v != MASK}


class _SyncLock:
    """One sync per run at a time (a dry run only reads, and takes no lock)."""

    def __init__(self, run_dir: Path, run_id: str, dry_run: bool) -> None:
        self.path = run_dir / LOCK_FILE
        self.run_id = run_id
        self.skip = dry_run or fcntl is None
        self.fd: int | None = None

    def __enter__(self) -> _SyncLock:
        if self.skip:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise TraceletException(
                f"another `tracelet sync` is delivering run {self.run_id} now; wait for it, or stop it and run "
                "this again (it resumes)"
            ) from None
        self.fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def select_runs(
    refs: Iterable[str] = (),
    *,
    all_runs: bool = False,
    project: str | None = None,
    since: str | None = None,
    dir: str | os.PathLike[str] | None = None,
) -> list[Any]:
    """Runs named by id/prefix/folder, or every run (`all_runs`), narrowed by `project` and `since`."""
    from tracelet import store

    refs = list(refs)
    if refs:
        runs = [store.open_run(r, dir) for r in refs]
    elif all_runs or project or since:
        runs = store.list_runs(dir)
    else:
        raise ConfigurationError("name runs to sync, or select them with --all, --project or --since")
    if project:
        runs = [r for r in runs if r.project == project]
    if since:
        cutoff = parse_since(since)
        runs = [r for r in runs if _created(r) >= cutoff]
    return runs


def _created(run: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(run.created_at))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_since(text: str) -> datetime:
    """An ISO date or time ("2026-11-28", "2026-11-28T04:00"), or an age ("90m", "6h", "2d", "1w")."""
    text = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(time.time() - float(text[:-1]) * units[text[-1]], timezone.utc)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"--since {text!r}: expected an ISO date/time (2026-11-28, 2026-11-28T04:00) or an age (90m, 6h, 2d)"
        ) from None
    return when if when.tzinfo else when.astimezone(timezone.utc)


def sync_runs(
    runs: Iterable[Any],
    to: str | Iterable[str] | None = None,
    *,
    config: dict[str, Any] | None = None,
    timeout: float | None = None,
    dry_run: bool = False,
    progress: bool | None = False,
    out: TextIO | None = None,
    on_error: Callable[[Any, Exception], None] | None = None,
) -> list[SyncReport]:
    """`sync` for several runs in turn; a run that cannot be synced goes to `on_error` (else raises)."""
    reports = []
    for run in runs:
        try:
            reports.append(sync(run, to, config=config, timeout=timeout, dry_run=dry_run, progress=progress, out=out))
        except (TraceletException, LookupError) as exc:
            if on_error is None:
                raise
            on_error(run, exc)
    return reports
