"""One thread per backend: start the run, deliver batches from its cursor, retry, end the run."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from tracelet.core.records import ARTIFACT, METRIC, PARAMS, TAGS, Metric, RunStatus
from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tracelet.core.backend import Backend
    from tracelet.core.orchestrator import Orchestrator

logger = logging.getLogger("tracelet")

BACKOFF_START = 0.05
BACKOFF_CAP = 2.0
BATCH_LIMIT = 10_000
_HOOKS = {METRIC: "backend_log_metrics", PARAMS: "backend_log_params", TAGS: "backend_log_tags"}


def _name(name: object) -> str:
    # log_metric leaves this check off the hot path: a name that is not str is delivered as str(name).
    return name if type(name) is str else str(name)


class ErrorLog:
    """Counts errors by kind and logs the first of each kind only, so an outage is one line, not thousands."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.counts: Counter[str] = Counter()

    def record(self, where: str, exc: BaseException, retrying: bool = True) -> None:
        key = f"{where}: {type(exc).__name__}"
        self.counts[key] += 1
        if self.counts[key] == 1:
            tail = "; retrying, and counting further errors of this kind" if retrying else ""
            logger.warning("tracelet: backend %r %s failed: %s%s", self.backend, where, exc, tail)

    def summary(self) -> dict[str, int]:
        return dict(self.counts)


class BackendWorker(threading.Thread):
    """Delivers the shared event stream to one backend from its own cursor."""

    def __init__(self, backend: Backend, source: Orchestrator, cursor: int = 0) -> None:
        super().__init__(name=f"tracelet-{backend.name}", daemon=True)
        self.backend = backend
        self.source = source
        self.cursor = cursor
        self.delivered = 0
        self.dropped = 0
        self.errors = ErrorLog(backend.name)
        self.wake = threading.Event()
        self.started = threading.Event()
        self.done = threading.Event()
        self.start_error: BaseException | None = None
        self.draining = False
        self.until = 0
        self.deadline: float | None = None
        self.final_status = RunStatus.FINISHED
        self.hooks = {kind: backend.implements(hook) for kind, hook in _HOOKS.items()}
        self.hooks[ARTIFACT] = backend.implements("backend_log_artifact")

    # -- control, from other threads ------------------------------------------------------------------------
    def finish(self, status: RunStatus, deadline: float, until: int) -> None:
        """Deliver events up to sequence `until` (or until `deadline`), then end the run with `status`."""
        self.final_status = status
        self.deadline = deadline
        self.until = until
        self.draining = True
        self.wake.set()

    # -- the thread -------------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self._start_run():
                self._deliver_loop()
                self._end_run()
        finally:
            self.done.set()

    def _expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _retrying(self, where: str, fn: Any) -> bool:
        """Call `fn` until it succeeds (True) or the stop deadline passes (False)."""
        delay = BACKOFF_START
        while True:
            try:
                fn()
                return True
            except Exception as exc:  # a backend may raise anything; the training loop must not see it
                self.errors.record(where, exc)
            if self._expired():
                return False
            wait = delay if self.deadline is None else min(delay, max(self.deadline - time.monotonic(), 0))
            time.sleep(wait)
            delay = min(delay * 2, BACKOFF_CAP)

    def _start_run(self) -> bool:
        backend = self.backend

        def start() -> None:
            details = backend.call("backend_start_run")
            backend.details = dict(details or {})

        try:
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
            if not self._retrying("start_run", start):
                return False
        self.started.set()
        return True

    def _deliver_loop(self) -> None:
        source = self.source
        while True:
            first, events = source.fetch(self.cursor, BATCH_LIMIT)
            if first > self.cursor:
                self.dropped += first - self.cursor  # no journal and past the memory bound: counted, reported
                self.cursor = first
            if events:
                if not self._deliver(events):
                    return
                continue
            if self.draining and self.cursor >= self.until:
                return
            if self.draining and self._expired():
                return
            self.wake.wait(0.5)
            self.wake.clear()

    def _deliver(self, events: list[tuple]) -> bool:
        """Deliver runs of same-kind events in order, advancing the cursor after each run."""
        i, n = 0, len(events)
        while i < n:
            kind = events[i][0]
            j = i + 1
            while j < n and events[j][0] == kind:
                j += 1
            group = events[i:j]
            if self.hooks.get(kind):
                where = _HOOKS.get(kind, "log_artifact").removeprefix("backend_")
                if not self._retrying(where, lambda g=group, k=kind: self._send(k, g)):
                    return False
            self.cursor += j - i
            self.delivered += j - i
            i = j
        return True

    def _send(self, kind: str, group: list[tuple]) -> None:
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
