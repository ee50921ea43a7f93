"""The orchestrator: the calling thread appends, a dispatcher journals, one worker per backend delivers.

    caller ──append──► deque ──dispatcher──► journal (events.bin) + in-memory chunks
                                                  │
                                 worker "mlflow" ◄┼► worker "wandb" ◄┼► ...   (each from its own cursor)

Memory is bounded at both ends, however long a backend stalls:

- Before the dispatcher: the caller's queue holds at most about `QUEUE_HIGH` events. Only when a caller
  outruns the journal writer (over a million points a second) does the dispatcher swap the caller's append
  for one that waits until the queue is down to `QUEUE_LOW`; below that mark the hot path is the plain
  `deque.append` again, so it costs nothing the rest of the time. Waiting, not dropping: no point is lost.
- After it: workers read recent chunks from memory; a worker that falls further behind than `max_buffered`
  events reads from the journal instead, so nothing is dropped. Without a journal (local store off) the
  oldest chunks are dropped past that bound and the drops are counted per backend and reported at stop.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat, starmap
from typing import Any

from tracelet.core.contract import values
from tracelet.core.contract.records import METRIC, Append, BackendReport, Event, Metric, RunStatus, StopReport
from tracelet.core.engine import journal as journal_mod
from tracelet.core.engine import lifecycle
from tracelet.core.engine.backend import Backend
from tracelet.core.engine.clock import SYSTEM, Clock
from tracelet.core.engine.worker import BackendWorker

logger = logging.getLogger("tracelet")

DISPATCH_INTERVAL = 0.02  # journal write-through well inside the 100 ms promise
FSYNC_INTERVAL = 0.5  # fsync well inside the 1 s promise
PROGRESS_EVERY = 4  # fsync rounds between progress checkpoints (2 s): how much a dead run's sync may resend
MAX_CHUNK = 20_000  # events per dispatcher pass: short passes keep the caller's queue near its bound
QUEUE_HIGH = 2 * MAX_CHUNK  # queued events past which the caller waits for the dispatcher (memory bound)
QUEUE_LOW = MAX_CHUNK // 2  # ... until the queue is down to this
THROTTLE_WAIT = 1.0  # the longest one call waits (a wedged dispatcher must not hang training for good)
END_RUN_SHARE = 0.25  # of a backend's stop timeout, kept for flush and end_run after delivery stops ...
END_RUN_MAX = 5.0  # ... but no more than this many seconds (delivery gets the rest)


def end_run_reserve(timeout: float) -> float:
    """Seconds of a stop timeout reserved for ending the backend's run once delivery has stopped."""
    return min(timeout * END_RUN_SHARE, END_RUN_MAX)


class Orchestrator:
    """Routes the run's events to every backend without ever blocking the caller."""

    def __init__(
        self,
        journal: journal_mod.JournalWriter | None = None,
        *,
        max_buffered: int = 200_000,
        stop_timeout: float = 30.0,
        progress: Callable[[dict[str, int]], None] | None = None,
        artifact_handler: Callable[[Backend, dict[str, Any]], None] | None = None,
        bind: Callable[[Append], None] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        """:param journal: where every event is made durable first; None runs without a local store.
        :param max_buffered: events kept in memory for laggards; older ones are re-read from the journal.
        :param stop_timeout: each backend's delivery deadline at stop(), unless its config sets `stop_timeout`.
        :param progress: called from the fsync thread every few seconds, while backends advance, with how many
            journaled events each has taken, so a run whose process dies can be synced from there.
        :param artifact_handler: delivers an artifact event's payload to one backend, on that backend's worker
            (the run's artifact manager); None: artifact events are passed by.
        :param bind: hands the caller's hot path the append to use: called at start() and again whenever it
            must change (the queue is over its bound, then back under it).
        :param clock: what the stop deadlines are measured on, here and in the workers it makes
            (`tracelet.core.engine.clock`; real time by default). A worker added with `add_worker` must have
            been given the same one (`bind_backends(..., clock=orchestrator.clock)`).
        """
        self.journal = journal
        self._progress = progress
        self.max_buffered = max_buffered
        self.stop_timeout = stop_timeout
        self.clock = clock
        self._queue: deque[Event] = deque()
        self._fast_append: Append = self._queue.append  # the hot path: one C call
        self.append: Append = self._fast_append
        self._throttled = False
        self._drained = threading.Event()  # set while the queue is below QUEUE_LOW (throttled callers wait on it)
        self._lock = threading.Lock()  # guards the chunk list, never held across I/O
        self._chunk_seqs: list[int] = []
        self._chunks: list[list[Event]] = []
        self._buffered = 0
        self.end = 0  # events published so far (sequence numbers 0 .. end-1)
        self.journaled = 0  # events 0 .. journaled-1 are in the journal; past a write failure, no more are
        self._closing = threading.Event()
        self._workers: dict[str, BackendWorker] = {}
        self._dispatcher: threading.Thread | None = None
        self._stop_lock = threading.Lock()
        self._publish_lock = threading.Lock()  # the dispatcher and stop() may both publish
        self._report: StopReport | None = None
        self._damage: dict[int, journal_mod.Damage] = {}  # byte offset -> what a catch-up read found damaged there
        self._syncer: threading.Thread | None = None
        self._detached = False  # in a forked child: the parent owns the run (tracelet.core.engine.lifecycle)
        self._artifact_handler = artifact_handler
        self._bind = bind
        lifecycle.detach_in_child(self)

    # -- spec API ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the dispatcher and every added backend's worker."""
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(target=self._dispatch_loop, name="tracelet-dispatch", daemon=True)
            self._dispatcher.start()
            if self.journal is not None:
                # fsync on its own thread: a slow disk must not stall the dispatcher (the caller's queue
                # would grow past its bound meanwhile).
                self._syncer = threading.Thread(target=self._sync_loop, name="tracelet-fsync", daemon=True)
                self._syncer.start()
            if self._bind is not None:
                self._bind(self.append)  # the caller's hot path goes live
        for worker in list(self._workers.values()):
            if not worker.is_alive() and not worker.done.is_set():
                worker.start()

    def route_metric(self, metric: Metric) -> None:
        """Queue one metric point for every backend."""
        self.append((METRIC, metric.name, metric.value, metric.step, metric.timestamp))

    def add_backend(self, backend: Backend, replay: bool = True) -> BackendWorker:
        """Give a backend its worker; with `replay` it receives the run from its first event."""
        return self.add_worker(BackendWorker(backend, self, cursor=0 if replay else self.end, clock=self.clock))

    def add_worker(self, worker: BackendWorker) -> BackendWorker:
        """Deliver through `worker`, bound to this orchestrator (`tracelet.core.engine.wiring.bind_backends`)."""
        backend = worker.backend
        with self._lock:
            self._workers[backend.name] = worker
        if self._dispatcher is not None:
            worker.start()
        return worker

    def remove_backend(self, backend: Backend | str, status: RunStatus = RunStatus.FINISHED) -> BackendReport:
        """Deliver what was logged so far to one backend, end its run, and stop feeding it."""
        name = backend if isinstance(backend, str) else backend.name
        self._drain()
        worker = self._workers[name]
        report = self._finish_workers([worker], status)[name]
        with self._lock:
            del self._workers[name]
        return report

    def stop(self, status: RunStatus = RunStatus.FINISHED) -> StopReport:
        """Deliver everything (each backend within its timeout), end the backends' runs; idempotent."""
        with self._stop_lock:
            if self._report is not None:
                return self._report
            if self._detached:  # a forked child never ends its parent's run
                return StopReport(status, 0, {})
            self._closing.set()
            self._drained.set()  # nobody waits on a dispatcher that is finishing
            if self._dispatcher is not None and self._dispatcher.is_alive():
                self._dispatcher.join()
            if self._syncer is not None and self._syncer.is_alive():
                self._syncer.join()
            self._drain()  # anything appended after the dispatcher's last pass
            reports = self._finish_workers(list(self._workers.values()), status)
            if self.journal is not None:
                try:
                    self.journal.close()
                except OSError as exc:
                    logger.error("tracelet: closing the journal %s failed: %s", self.journal.path, exc)
            self._report = StopReport(status, self.end, reports, [d.describe() for d in self._damage.values()])
            return self._report

    # -- for workers ---------------------------------------------------------------------------------------------
    @property
    def backends(self) -> list[Backend]:
        return [w.backend for w in self._workers.values()]

    @property
    def workers(self) -> dict[str, BackendWorker]:
        return dict(self._workers)

    def fetch(self, cursor: int, limit: int) -> tuple[int, list[Event]]:
        """Events from `cursor` on (at most `limit`), with the sequence number of the first one returned."""
        with self._lock:
            seqs = self._chunk_seqs
            if seqs and cursor >= seqs[0]:
                i = bisect.bisect_right(seqs, cursor) - 1
                out = self._chunks[i][cursor - seqs[i] : cursor - seqs[i] + limit]
                i += 1
                while len(out) < limit and i < len(seqs):
                    out.extend(self._chunks[i][: limit - len(out)])
                    i += 1
                return cursor, out
            oldest = seqs[0] if seqs else self.end
        if cursor >= oldest:
            return cursor, []
        if self.journal is None or cursor >= self.journaled:
            return oldest, []
        # Behind the memory window: catch up from the journal (flushed to the OS before publication).
        want = min(limit, oldest - cursor, self.journaled - cursor)
        out = []
        first = None
        reader = journal_mod.JournalReader(self.journal.path)
        for seq, event in reader.events(cursor, self.journal.offset_for(cursor)):
            if first is None:
                first = seq
            if seq >= oldest or seq != first + len(out):  # past damage (skipped, warned): the worker counts the gap
                break
            out.append(event)
            if len(out) >= want:
                break
        for damage in reader.damage:  # kept for the stop report; several workers may read the same stretch
            self._damage.setdefault(damage.offset, damage)
        return (oldest, []) if first is None or not out else (first, out)

    def _lost(self, cursor: int) -> int:
        """How many events from `cursor` on neither memory nor the journal holds any more."""
        with self._lock:
            oldest = self._chunk_seqs[0] if self._chunk_seqs else self.end
        kept = self.journaled if self.journal is not None else 0  # the journal holds events 0 .. journaled-1
        return max(oldest - max(cursor, kept), 0)

    def await_started(self, timeout: float) -> list[tuple[str, BaseException | None]]:
        """Wait (at most `timeout` in all) for every backend's run to start: (name, start error or None) for
        each backend that answered; those still starting are left out (they keep trying on their threads)."""
        deadline = time.monotonic() + timeout
        answered = []
        for name, worker in list(self._workers.items()):
            if worker.started.wait(max(deadline - time.monotonic(), 0)):
                answered.append((name, worker.start_error))
        return answered

    def started_details(self) -> dict[str, dict[str, Any]]:
        """What each backend that started its run reported about it (run id, URL...)."""
        return {
            name: dict(w.backend.details)
            for name, w in list(self._workers.items())
            if w.started.is_set() and w.start_error is None and w.backend.details
        }

    def record_error(self, backend: str, where: str, exc: BaseException) -> None:
        """Count a delivery error in `backend`'s report (logged the first time per kind)."""
        worker = self._workers.get(backend)
        if worker is not None:
            worker.errors.record(where, exc, retrying=False)
        else:
            logger.warning("tracelet: backend %r %s failed: %s", backend, where, exc)

    def deliver_artifact(self, backend: Backend, payload: dict[str, Any]) -> None:
        if self._artifact_handler is not None:
            self._artifact_handler(backend, payload)

    def confirmed(self, cursor: int) -> None:
        """Nothing to record here: progress checkpoints read each worker's cursor from the fsync thread."""

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every backend has taken everything logged so far (or `timeout` passes)."""
        self._drain()
        target = self.end
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in list(self._workers.values()):
            worker.wake.set()
            while worker.cursor < target and not worker.done.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(0.005)
        return all(w.cursor >= target for w in self._workers.values())

    # -- dispatcher ------------------------------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        while not self._closing.is_set():
            try:
                moved = self._publish()
            except Exception:  # this thread must outlive any bug, or the queue would grow without bound
                logger.exception("tracelet: the dispatcher failed a pass; it goes on")
                moved = 0
            if moved < MAX_CHUNK:
                self._closing.wait(DISPATCH_INTERVAL)
        self._drain()

    def _drain(self) -> None:
        while self._publish():
            pass

    def _publish(self) -> int:
        """Move queued events into the journal and the chunk window; wake the workers."""
        with self._publish_lock:
            self._pace()  # first: the queue is at its longest now
            # Only this thread pops, so len() events are there to take; starmap pops them without a Python loop.
            count = min(len(self._queue), MAX_CHUNK)
            if not count:
                return 0
            items: list[Event] = list(starmap(self._queue.popleft, repeat((), count)))
            if values.lazy_seen:
                _resolve_lazy(items)
            first = self.end
            if self.journal is not None and self.journaled == first:
                try:
                    self.journal.append(first, items)
                    self.journaled = first + len(items)
                except OSError as exc:
                    self._journal_failed(exc)
            with self._lock:
                self._chunk_seqs.append(first)
                self._chunks.append(items)
                self._buffered += len(items)
                self.end = first + len(items)
                self._trim()
            for worker in self._workers.values():
                worker.wake.set()
            self._pace()
            return len(items)

    def _pace(self) -> None:
        """Throttle the caller while its queue is over QUEUE_HIGH; release it once it is under QUEUE_LOW."""
        queued = len(self._queue)
        if not self._throttled and queued > QUEUE_HIGH:
            self._drained.clear()
            self._set_append(self._append_throttled)
            self._throttled = True
        elif self._throttled and queued <= QUEUE_LOW:
            self._set_append(self._fast_append)
            self._throttled = False
            self._drained.set()

    def _set_append(self, append: Append) -> None:
        self.append = append
        if self._bind is not None:
            self._bind(append)

    def _append_throttled(self, event: Event) -> None:
        """The caller's append while the queue is over its bound: append, then wait for the dispatcher."""
        queue = self._queue
        queue.append(event)
        if len(queue) > QUEUE_HIGH:
            self._drained.wait(THROTTLE_WAIT)

    def _sync_loop(self) -> None:
        """fsync the journal every FSYNC_INTERVAL until the run closes (close() syncs a last time)."""
        journal = self.journal
        assert journal is not None
        rounds = 0
        last: dict[str, int] = {}
        while not self._closing.wait(FSYNC_INTERVAL):
            if journal.closed:
                return
            try:
                journal.sync()
            except OSError as exc:
                self._journal_failed(exc)
                return
            except ValueError:  # closed under us by a failed write: nothing left to sync
                return
            rounds += 1
            if self._progress is not None and rounds % PROGRESS_EVERY == 0:
                last = self._checkpoint(last)

    def _checkpoint(self, last: dict[str, int]) -> dict[str, int]:
        """Hand `progress` each backend's cursor (only journaled events count) when one has moved."""
        journaled = self.journaled
        cursors = {name: min(w.cursor, journaled) for name, w in list(self._workers.items())}
        if cursors == last:
            return last
        try:
            self._progress(cursors)  # type: ignore[misc]
        except Exception as exc:  # a checkpoint is an aid to recovery; delivery must go on without it
            logger.warning("tracelet: cannot record delivery progress: %s (further failures are not reported)", exc)
            self._progress = None
        return cursors

    def _journal_failed(self, exc: OSError) -> None:
        """Disk full, or the folder gone: go on in memory, where the no-store overflow policy applies.

        Nothing more is written to this journal (a torn frame may end it); what it holds stays readable.
        """
        assert self.journal is not None
        logger.error(
            "tracelet: cannot write the journal %s (%s); events from #%d on are kept in memory only "
            "(up to TRACELET_MAX_BUFFERED per lagging backend)",
            self.journal.path,
            exc,
            self.journaled,
        )
        self.journal.closed = True

    def _trim(self) -> None:
        """Drop chunks every worker has passed, and the oldest ones past the memory bound."""
        slowest = min((w.cursor for w in self._workers.values()), default=self.end)
        while self._chunks:
            size = len(self._chunks[0])
            passed = self._chunk_seqs[0] + size <= slowest
            # Past the bound the oldest chunk goes: laggards read it from the journal, or count it dropped.
            over = self._buffered > self.max_buffered and len(self._chunks) > 1
            if not (passed or over):
                break
            del self._chunk_seqs[0], self._chunks[0]
            self._buffered -= size

    def _finish_workers(self, workers: list[BackendWorker], status: RunStatus) -> dict[str, BackendReport]:
        clock = self.clock
        now = clock.monotonic()
        limits: dict[str, float] = {}
        for w in workers:
            timeout = float(w.backend.run.config.get("stop_timeout", self.stop_timeout))
            # The whole of a backend's stop (delivery, then flush and end_run) fits in its stop timeout, and
            # the backends finish side by side, so stop() returns within the longest timeout however many
            # hang. Delivery ends early enough to leave end_run its reserve: a tracker's run is not left RUNNING.
            limits[w.backend.name] = limit = now + timeout
            w.finish(status, limit - end_run_reserve(timeout), self.end)
            if not w.is_alive() and not w.done.is_set():
                w.start()
        reports: dict[str, BackendReport] = {}
        for w in workers:
            # An absolute limit, not a wait per worker: waits on hung workers must not add up.
            finished = clock.wait(w.done, max(limits[w.backend.name] - clock.monotonic(), 0))
            cursor = w.cursor
            # Events a worker stopped short of may be gone already (no journal, past the memory bound): those
            # are dropped, not "undelivered", whether or not the worker got as far as noticing.
            dropped = w.dropped + self._lost(cursor)
            undelivered = max(self.end - cursor - (dropped - w.dropped), 0)
            if undelivered:
                where = f" (kept in {self.journal.path})" if self.journal is not None else ""
                logger.warning(
                    "tracelet: backend %r did not receive %d events before its stop timeout%s",
                    w.backend.name,
                    undelivered,
                    where,
                )
            if w.errors.counts:
                counts = ", ".join(f"{kind} x{n}" for kind, n in w.errors.counts.items())
                logger.warning("tracelet: backend %r errors during the run: %s", w.backend.name, counts)
            if dropped:
                why = "lost to journal damage or past the memory bound" if self._damage else "past the memory bound"
                logger.warning("tracelet: backend %r: %d events dropped %s", w.backend.name, dropped, why)
            if w.refused:
                logger.warning(
                    "tracelet: backend %r refused %d events; everything else was delivered%s",
                    w.backend.name,
                    w.refused,
                    f" (all are kept in {self.journal.path})" if self.journal is not None else "",
                )
            reports[w.backend.name] = BackendReport(
                name=w.backend.name,
                delivered=w.delivered,
                undelivered=undelivered,
                dropped=dropped,
                errors=w.errors.summary(),
                tracebacks=dict(w.errors.tracebacks),
                finished=finished,
                details=dict(w.backend.details),
                refused=w.refused,
                no_hook=dict(w.no_hook),
            )
            if w.no_hook:  # by design for some (the local store's record is the journal): info, not a warning
                kinds = ", ".join(f"{kind}: no hook ({n} events)" for kind, n in w.no_hook.items())
                logger.info("tracelet: backend %r was not given %s", w.backend.name, kinds)
        return reports

    def detach_after_fork(self) -> None:
        """In a forked child: the parent owns the run, so the child neither delivers nor ends it, and must not
        block on locks that a parent thread held at fork time."""
        self._detached = True
        self._queue = deque(maxlen=0)
        self.append = self._fast_append = self._queue.append
        self._drained = threading.Event()
        self._drained.set()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._workers = {}
        self._dispatcher = None
        self._closing = threading.Event()
        self._closing.set()


def _resolve_lazy(items: list[Event]) -> None:
    """Metric values the caller handed over unconverted (device tensors) become floats here, off its thread."""
    for i, e in enumerate(items):
        if e[0] == METRIC and type(e[2]) is not float:
            try:
                value = float(e[2])
            except Exception:
                value = float("nan")
            items[i] = (METRIC, e[1], value, e[3], e[4])
