"""The clock the engine's deadlines are measured on: the stop deadline, backoff waits, the in-flight window's.

Every deadline the engine keeps (a backend's stop limit and delivery deadline, the time a retry may still wait)
is a `Clock.monotonic()` value, and every wait measured against one goes through the same clock, so a deadline
and the waits that must end by it can never disagree. The composition root (`tracelet.core.engine.wiring`) and
the `Orchestrator` take the clock at construction and hand it to each worker, which binds it to its thread with
its stop deadline (`tracelet.core.engine.backoff.bind_deadline`); nothing reads a global. `SYSTEM` (real
monotonic time, real waits) is the default everywhere; `ManualClock` is time that moves only when told, so a
test asserts the order of events against a deadline instead of how long a loaded machine took.

Only deadlines go through the clock: the hot path (logging a point) never reads it, and waits that are polls
(a worker's wake-up, the dispatcher's pass) stay on real time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time in seconds, and waits measured on it."""

    def monotonic(self) -> float:
        """Seconds on this clock (only differences and comparisons mean anything, as `time.monotonic`)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Return once `event` is set (True) or `timeout` seconds have passed on this clock (`event.is_set()`)."""
        ...


class SystemClock:
    """Real time: `time.monotonic`, `time.sleep` and `threading.Event.wait`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)


SYSTEM: Clock = SystemClock()


class ManualClock:
    """Time that moves only when `advance` is called: sleeps and waits block until it has moved far enough (or
        their event is set), and every one asked for is kept in `requested`, in order (with the name of the thread that
    asked in `askers`).

        For tests: they drive the engine's deadlines step by step and assert what happened before and after each,
        the same on a loaded machine as on an idle one.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._cond = threading.Condition()
        self.requested: list[float] = []  # the seconds of every sleep and wait asked for, in order
        self.askers: list[str] = []  # the name of the thread that asked for each
        self._blocked = 0

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, waking the sleeps and waits that end by then."""
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        self._block(None, seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return self._block(event, timeout)

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> bool:
        """Wait (in real time, at most `timeout`) until `count` sleeps or waits were asked for and one is under
        way: the thread that asked is parked on this clock."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requested) >= count and self._blocked > 0, timeout)

    def _block(self, event: threading.Event | None, seconds: float) -> bool:
        with self._cond:
            self.requested.append(seconds)
            self.askers.append(threading.current_thread().name)
            end = self._now + seconds
            self._blocked += 1
            self._cond.notify_all()
            try:
                while self._now < end and not (event is not None and event.is_set()):
                    self._cond.wait(0.005)  # advance() notifies; an Event cannot, so it is polled
            finally:
                self._blocked -= 1
        return True if event is None else event.is_set()
