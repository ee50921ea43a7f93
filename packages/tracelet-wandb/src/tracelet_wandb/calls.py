"""Calls into wandb that cannot hang the backend's worker: each runs on one helper thread and is waited for
with a timeout.

W&B sends every record to its service process over a local socket. When that process is killed, calls fail at
once (ConnectionResetError), which the worker retries and reports like any delivery error. When it stalls
(stopped, swapping, deadlocked), a call blocks for as long as the stall lasts. Here the worker waits at most
`timeout` for a call, then raises `ServiceTimeout`, which the worker counts and retries with backoff; while the
stalled call is still pending every new call fails at once, so the worker never piles up blocked threads and
`stop()` is bounded by its stop timeout. A stalled call that completes later has still done its work: callers
record progress inside the call (see `WandbBackend._log_rows`) so a retry does not send anything twice.

The helper thread is a daemon: a call stuck forever does not keep the interpreter alive by itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class ServiceTimeout(TimeoutError):
    """W&B's service did not answer in time (or an earlier call to it is still unanswered)."""


class _Call:
    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class BoundedCaller:
    """Runs callables one at a time on a daemon thread; `call` waits for each at most `timeout` seconds."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending: _Call | None = None
        self._lock = threading.Lock()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                item.result = item.fn()
            except BaseException as exc:  # handed to the waiting caller
                item.error = exc
            item.done.set()

    @property
    def busy(self) -> bool:
        """True while an earlier call has not finished (it timed out and is still running)."""
        pending = self._pending
        return pending is not None and not pending.done.is_set()

    def call(self, fn: Callable[[], T], timeout: float, what: str) -> T:
        with self._lock:
            if self.busy:
                raise ServiceTimeout(
                    f"W&B's service has not answered an earlier call yet; {what} not attempted (a stalled or "
                    "overloaded wandb-core process)"
                )
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
            item = _Call(fn)
            self._pending = item
            self._queue.put(item)
        if not item.done.wait(timeout):
            raise ServiceTimeout(f"W&B's service did not answer {what} within {timeout:g} s")
        if item.error is not None:
            raise item.error
        return cast(T, item.result)  # what `fn` returned

    def close(self) -> None:
        """Let the helper thread end once its current call (if any) returns."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread = None
