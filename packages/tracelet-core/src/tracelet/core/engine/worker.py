"""One thread per backend: start the run, deliver batches from its cursor, retry, end the run.

Failures are transient or permanent (`tracelet.core.engine.backoff.is_permanent`: the hook raised
`ConfigurationError`). A transient failure has the batch retried with capped backoff until the run's stop
deadline; nothing after it is delivered before it. A permanent one means the tracker refuses some of the
batch: the batch is split in halves until the refused events stand alone, everything else is delivered, and
the refused events are counted (`refused`, reported at stop; they stay in the journal). Once stop() has set
the deadline and it passes, no new batch is begun: the worker ends the run in the time the orchestrator
reserved for it (`orchestrator.end_run_reserve`).

A backend that declares `concurrent_batches` has up to `max_in_flight` metric batches out at once
(`tracelet.core.engine.inflight`, which states what that keeps); `cursor` always counts only the contiguous events
confirmed delivered (or refused), while the worker reads ahead of it from `_read`.

The worker reads events through `EventSource`, the narrow interface the orchestrator implements. Its deadline is a
time on the `Clock` it was given (`tracelet.core.engine.clock`; real time unless a test gives a manual one),
which it binds to its thread, and its window's, for every retry there.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from tracelet.core.contract.records import ARTIFACT, METRIC, PARAMS, SUMMARY, TAGS, Event, Metric, RunStatus
from tracelet.core.engine import backoff, inflight
from tracelet.core.engine.clock import SYSTEM, Clock
from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tracelet.core.engine.backend import Backend

logger = logging.getLogger("tracelet")

BATCH_LIMIT = 10_000
_HOOKS = {
    METRIC: "backend_log_metrics",
    PARAMS: "backend_log_params",
    TAGS: "backend_log_tags",
    SUMMARY: "backend_log_summary",
}
_KIND_NAMES = {METRIC: "metrics", PARAMS: "params", TAGS: "tags", ARTIFACT: "artifacts", SUMMARY: "summary"}


def _name(name: object) -> str:
    # log_metric leaves this check off the hot path: a name that is not str is delivered as str(name).
    return name if type(name) is str else str(name)


def _unchanged_params_end(events: list[tuple], i: int, j: int) -> int:
    """Where to end the params group starting at `i` (before `j`): before the first event that changes a
    param already in the group. Merging would keep only the later value, and backends whose trackers keep
    a param's first value (MLflow) must see both calls to apply their rule."""
    merged: dict[str, Any] = dict(events[i][1])
    for k in range(i + 1, j):
        params = events[k][1]
        if any(key in merged and merged[key] != value for key, value in params.items()):
            return k
        merged.update(params)
    return j


MAX_TRACEBACK = 8000  # characters of one kept traceback (its last lines: where the plugin failed)


def _summary_runs(group: list[tuple], last_step: int) -> list[tuple[int, dict[str, float], float]]:
    """Consecutive summary events merged per step (a later value of a name wins): (step, values, timestamp).

    An event without a step belongs to `last_step`, the highest metric step logged before it. Re-sending a
    run after a retry is harmless: a single value is set, not appended.
    """
    runs: list[tuple[int, dict[str, float], float]] = []
    for e in group:
        step = last_step if e[2] is None else e[2]
        if runs and runs[-1][0] == step:
            runs[-1][1].update(e[1])
            runs[-1] = (step, runs[-1][1], e[3])
        else:
            runs.append((step, dict(e[1]), e[3]))
    return runs


class ErrorLog:
    """Counts errors by kind and logs the first of each kind only, so an outage is one line, not thousands.

    The first error of each kind is logged with its traceback (the plugin author's way to the failing line)
    and kept in `tracebacks` (kind -> formatted traceback), which the stop report and run.json's `delivery`
    carry; later errors of the kind are only counted."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.counts: Counter[str] = Counter()
        self.tracebacks: dict[str, str] = {}
        self._lock = threading.Lock()  # a backend's sender threads record side by side

    def record(self, where: str, exc: BaseException, retrying: bool = True) -> None:
        key = f"{where}: {type(exc).__name__}"
        with self._lock:
            self.counts[key] += 1
            first = self.counts[key] == 1
        if first:
            import traceback

            from tracelet.core.contract.redact import redact_text

            tail = "; retrying, and counting further errors of this kind" if retrying else ""
            logger.warning("tracelet: backend %r %s failed: %s%s", self.backend, where, exc, tail, exc_info=exc)
            text = "".join(traceback.format_exception(exc))
            self.tracebacks[key] = redact_text(text[-MAX_TRACEBACK:])  # it is written to run.json

    def summary(self) -> dict[str, int]:
        return dict(self.counts)


class EventSource(Protocol):
    """Where a worker reads the run's events from (the orchestrator)."""

    def fetch(self, cursor: int, limit: int) -> tuple[int, list[Event]]:
        """Events from `cursor` on (at most `limit`), with the sequence number of the first one returned
        (past `cursor` when events were dropped)."""
        ...

    def deliver_artifact(self, backend: Backend, payload: dict[str, Any]) -> None:
        """Give one artifact event to `backend` (never raises)."""
        ...

    def confirmed(self, cursor: int) -> None:
        """Every event before `cursor` was delivered (or refused, or passed by): called on the worker's thread
        each time its cursor moves, before it reads on (`tracelet sync` records it there)."""
        ...


class BackendWorker(threading.Thread):
    """Delivers the shared event stream to one backend from its own cursor."""

    def __init__(self, backend: Backend, source: EventSource, cursor: int = 0, clock: Clock = SYSTEM) -> None:
        super().__init__(name=f"tracelet-{backend.name}", daemon=True)
        self.backend = backend
        self.source = source
        self.clock = clock  # what `deadline` is a time on
        self.cursor = cursor  # events before it are confirmed delivered (or refused/passed by), contiguously
        self._read = cursor  # the next event to read: past `cursor` by the batches in flight
        self._told = cursor  # the cursor the source was last told of (`EventSource.confirmed`)
        self._window: inflight.Window | None = None  # set after start when the backend takes batches in flight
        self._gap = False  # a batch in flight was not delivered by the deadline: the cursor moves no further
        self.delivered = 0
        self.dropped = 0
        self.refused = 0  # events the backend refused for good (permanent failures), after isolating them
        # Kinds of event the backend implements no hook for ("metrics" -> events passed by): reported as such,
        # never counted as delivered, so a backend without backend_log_metrics does not look complete.
        self.no_hook: Counter[str] = Counter()
        self.errors = ErrorLog(backend.name)
        self.wake = threading.Event()
        self.started = threading.Event()
        self.done = threading.Event()
        self.finishing = threading.Event()  # set with the deadline: ends a backoff wait begun before it
        self.start_error: BaseException | None = None
        self.draining = False
        self.until = 0
        self.deadline: float | None = None
        self.final_status = RunStatus.FINISHED
        self._last_send = 0.0  # seconds the last delivery call that went through took: what the next may take
        self.hooks = {kind: backend.implements(hook) for kind, hook in _HOOKS.items()}
        self.hooks[ARTIFACT] = backend.implements("backend_log_artifact")
        # Without backend_log_summary, single values reach the tracker as metric points at their step.
        self.summary_as_metrics = not self.hooks[SUMMARY] and self.hooks[METRIC]
        self.hooks[SUMMARY] = self.hooks[SUMMARY] or self.hooks[METRIC]
        self.last_step = 0  # the highest metric step passed so far: the step of a summary logged without one
        self.journaled: frozenset[str] = frozenset()  # kinds whose record is the journal (set once started)

    # -- control, from other threads ------------------------------------------------------------------------
    def finish(self, status: RunStatus, deadline: float, until: int) -> None:
        """Deliver events up to sequence `until` (or until `deadline`, a `self.clock` time), then end the run
        with `status`."""
        self.final_status = status
        self.deadline = deadline
        self.until = until
        self.draining = True
        self.finishing.set()
        self.wake.set()

    # -- the thread -------------------------------------------------------------------------------------------
    def run(self) -> None:
        # Every retry on this thread, plugins' too, stops in time; a backoff under way when stop() comes ends.
        backoff.bind_deadline(lambda: self.deadline, self.finishing, self.clock)
        try:
            if self._start_run():
                self._deliver_loop()
                self._end_run()
        finally:
            self.done.set()

    def _expired(self) -> bool:
        return self.deadline is not None and self.clock.monotonic() >= self.deadline

    def _no_time_left(self) -> bool:
        """Whether one more call, as long as the last one that went through, would end past the stop deadline."""
        return self.deadline is not None and self.clock.monotonic() + self._last_send >= self.deadline

    def _retrying(self, where: str, fn: Any) -> bool:
        """Call `fn` until it succeeds (True) or the stop deadline passes (False); a permanent error raises."""
        try:
            backoff.retry(fn, on_error=lambda exc: self.errors.record(where, exc))
        except Exception as exc:  # a backend may raise anything; the training loop must not see it
            if backoff.is_permanent(exc):
                raise
            return False
        return True

    def _start_run(self) -> bool:
        backend = self.backend

        def start() -> None:
            details = backend.call("backend_start_run")
            backend.details = dict(details or {})

        try:
            asked = inflight.requested(backend.run.config)
            backend.call("plugin_setup", config=backend.run.config)
            # Configuration mistakes and missing libraries will not heal by retrying: report them to start().
            start()
        except (ConfigurationError, ImportError, TypeError, ValueError) as exc:
            self.start_error = exc
            self.started.set()
            return False
        except Exception as exc:
            self.errors.record("start_run", exc)
            self.started.set()  # start() need not wait out an outage; delivery waits for the run instead
            try:
                if not self._retrying("start_run", start):
                    return False
            except Exception as exc:  # permanent: the tracker refuses this run; nothing can be delivered
                self.errors.record("start_run", exc, retrying=False)
                return False
        self.journaled = backend.journal_record()
        size = inflight.window_size(backend.name, backend.plugin, asked)
        if size > 1:
            self._window = inflight.Window(
                backend.name, size, lambda: self.deadline, self.finishing, self.wake, self.clock
            )
        self.started.set()
        return True

    def _deliver_loop(self) -> None:
        try:
            self._read_loop()
        finally:
            window = self._window
            if window is not None:  # batches still out finish (or give up at the deadline) before end_run
                window.wait_all()
                self._settle()
                window.close()
            self._tell()

    def _tell(self) -> None:
        if self.cursor != self._told:
            self._told = self.cursor
            confirmed = getattr(self.source, "confirmed", None)
            if confirmed is not None:
                confirmed(self.cursor)

    def _settle(self) -> None:
        """Move the cursor over the batches in flight that finished, in order, up to the first gap."""
        assert self._window is not None
        for slot in self._window.finished():
            if self._gap:
                continue  # past a batch that was not delivered: those after it are sent again by a later sync
            self.cursor += slot.settled
            self.delivered += slot.delivered
            self.refused += slot.refused
            self.dropped += slot.dropped
            if slot.settled < slot.count:
                self._gap = True

    def _read_loop(self) -> None:
        source = self.source
        while True:
            if self._window is not None:
                self._settle()
            self._tell()
            if self.draining and self._no_time_left():
                # A batch that would not be done by the delivery deadline is not begun, however fast the
                # tracker still takes them: what remains of the stop timeout is end_run's (so the tracker's
                # run is ended), and the rest stays in the journal.
                return
            first, events = source.fetch(self._read, BATCH_LIMIT)
            if first != self._read:
                if first > self._read and self._window is not None and not self._window.empty:
                    self._window.skipped(first - self._read)  # counted once the cursor gets there
                elif first > self._read:
                    self.dropped += first - self._read  # no journal and past the memory bound: counted, reported
                    self.cursor = first
                else:  # the source starts delivery over (sync into a new backend run), before anything was sent
                    self.cursor = first
                self._read = first
            if events:
                if not self._deliver(events):
                    return
                continue
            if self.draining and self._read >= self.until:
                return
            if self.draining and self._expired():
                return
            self.wake.wait(0.5)
            self.wake.clear()

    def _deliver(self, events: list[tuple]) -> bool:
        """Deliver runs of same-kind events in order, advancing the cursor after each run."""
        i, n = 0, len(events)
        while i < n:
            if self._gap or (self.draining and self._no_time_left()):  # a batch of many runs of kinds: stop
                return False  # between them too
            kind = events[i][0]
            j = i + 1
            while j < n and events[j][0] == kind:
                j += 1
            if kind == PARAMS:
                j = _unchanged_params_end(events, i, j)
            group = events[i:j]
            if kind == METRIC:  # every worker, whichever hooks it has: a summary's step must not depend on them
                top = max(e[3] for e in group)
                if top > self.last_step:
                    self.last_step = top
            window = self._window
            if window is not None and kind == METRIC and self.hooks.get(kind):
                # Sent on sender threads; the cursor moves over a piece once it and every one before it are done.
                for piece in inflight.pieces(group, window.size):
                    window.submit(len(piece), functools.partial(self._isolate, kind, piece))
                    self._read += len(piece)
                i = j
                continue
            if window is not None and not window.empty:
                # Params, tags and artifacts go one at a time, after every batch before them: a later value of
                # a param or tag must win, and an artifact's event order is the journal's.
                window.wait_all()
                self._settle()
                if self._gap:
                    return False
            if self.hooks.get(kind):
                if not self._deliver_isolating(kind, group):
                    return False
            elif _KIND_NAMES.get(kind, kind) in self.journaled:  # its record is the journal, written already
                self.cursor += j - i
                self.delivered += j - i
            else:  # this backend takes no events of this kind: passed by, and reported as "no hook"
                self.cursor += j - i
                self.no_hook[_KIND_NAMES.get(kind, kind)] += j - i
            self._read = self.cursor
            i = j
        return True

    def _deliver_isolating(self, kind: str, group: list[tuple]) -> bool:
        """Deliver `group` on this thread and move the cursor over what was settled; False when the stop
        deadline passed first (the cursor stays before the first event not delivered)."""
        settled, delivered, refused = self._isolate(kind, group)
        self.cursor += settled
        self.delivered += delivered
        self.refused += refused
        return settled == len(group)

    def _isolate(self, kind: str, group: list[tuple]) -> tuple[int, int, int]:
        """Deliver `group`; on a permanent failure split it until the refused events stand alone, deliver the
        rest and count those. Returns (events settled from the group's start, delivered, refused): fewer
        settled than `len(group)` when the stop deadline passed first. Touches no cursor (sender threads call
        it too)."""
        where = _HOOKS.get(kind, "backend_log_artifact").removeprefix("backend_")
        try:
            if not self._retrying(where, lambda: self._send(kind, group)):
                return 0, 0, 0
        except Exception as exc:  # permanent: the tracker refuses something in this group
            if len(group) == 1:
                self.errors.record(f"{where} refused", exc, retrying=False)
                return 1, 0, 1
            half = len(group) // 2
            # Halves, not one call per event: k refused events in n cost about 2k*log2(n) calls.
            first = self._isolate(kind, group[:half])
            if first[0] < half:
                return first
            second = self._isolate(kind, group[half:])
            return first[0] + second[0], first[1] + second[1], first[2] + second[2]
        return len(group), len(group), 0

    def _send(self, kind: str, group: list[tuple]) -> None:
        clock = self.clock
        began = clock.monotonic()
        self._send_once(kind, group)
        if kind != ARTIFACT:  # an upload's length says nothing about the next batch of points
            self._last_send = clock.monotonic() - began  # retries and backoff waits are not counted

    def _send_once(self, kind: str, group: list[tuple]) -> None:
        call = self.backend.call
        if kind == METRIC:
            call("backend_log_metrics", metrics=[Metric(_name(e[1]), e[2], e[3], e[4]) for e in group])
        elif kind == PARAMS or kind == TAGS:
            merged: dict[str, Any] = {}  # contiguous events merge; a later value of a key wins
            for e in group:
                merged.update(e[1])
            call(_HOOKS[kind], **{"params" if kind == PARAMS else "tags": merged})
        elif kind == ARTIFACT:
            for e in group:
                self.source.deliver_artifact(self.backend, e[1])
        elif kind == SUMMARY:
            for step, values, timestamp in _summary_runs(group, self.last_step):
                if self.summary_as_metrics:
                    metrics = [Metric(name, value, step, timestamp) for name, value in values.items()]
                    call("backend_log_metrics", metrics=metrics)
                else:
                    call("backend_log_summary", summary=values, step=step)

    def _end_run(self) -> None:
        for hook, kwargs in (("backend_flush", {}), ("backend_end_run", {"status": self.final_status})):
            try:
                self.backend.call(hook, **kwargs)
            except Exception as exc:
                self.errors.record(hook.removeprefix("backend_"), exc, retrying=False)
        try:
            self.backend.call("plugin_teardown")
        except Exception as exc:
            self.errors.record("teardown", exc, retrying=False)
