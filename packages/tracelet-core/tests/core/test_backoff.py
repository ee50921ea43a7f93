"""The one retry policy (`tracelet.core.engine.backoff`, `tracelet.plugin.retry`): transient errors are retried with
growing waits, a ConfigurationError is raised at once, and no retry outlives the stop deadline its thread has
bound, whatever the caller asked for (the worker binds it; a plugin's own retries inside a hook inherit it).

Time here is a `ManualClock` bound with the deadline, moved by the test: what is asserted is the order of tries,
waits and the deadline on that clock, not how long a loaded machine took."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tracelet.core.engine import backoff
from tracelet.core.engine.clock import ManualClock
from tracelet.exceptions import ConfigurationError
from tracelet.plugin import is_permanent, retry


def _failing(times: int, exc: BaseException, clock: ManualClock | None = None) -> tuple[list[float], object]:
    """A call failing `times` times, then returning "done"; `calls` holds the clock's time of each try."""
    calls: list[float] = []

    def fn() -> str:
        calls.append(clock.monotonic() if clock is not None else 0.0)
        if len(calls) <= times:
            raise exc
        return "done"

    return calls, fn


def _on_thread(target: Callable[[], None]) -> threading.Thread:
    """Run `target` on a thread of its own, as a worker does (what it binds stays on that thread)."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_transient_errors_are_retried_with_growing_waits() -> None:
    clock = ManualClock()
    calls, fn = _failing(3, ConnectionError("down"), clock)
    seen: list[BaseException] = []
    result: dict[str, object] = {}

    def worker() -> None:
        backoff.bind_deadline(lambda: None, clock=clock)
        result["value"] = retry(fn, on_error=seen.append, start=0.01)

    t = _on_thread(worker)
    for n in (1, 2, 3):  # each wait is under way before the clock moves it on
        assert clock.wait_for_requests(n)
        clock.advance(clock.requested[-1])
    t.join(10)
    assert result["value"] == "done"
    assert len(calls) == 4 and len(seen) == 3
    assert clock.requested == [0.01, 0.02, 0.04]  # twice as long each time
    assert [b - a for a, b in zip(calls, calls[1:])] == pytest.approx([0.01, 0.02, 0.04])  # no try came early


def test_the_waits_stop_growing_at_the_cap() -> None:
    clock = ManualClock()
    calls, fn = _failing(6, ConnectionError("down"), clock)

    def worker() -> None:
        backoff.bind_deadline(lambda: None, clock=clock)
        retry(fn, start=0.5, cap=2.0)

    t = _on_thread(worker)
    for n in range(1, 7):
        assert clock.wait_for_requests(n)
        clock.advance(clock.requested[-1])
    t.join(10)
    assert not t.is_alive() and len(calls) == 7
    assert clock.requested == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_attempts_bound_the_tries_and_the_last_error_is_raised() -> None:
    calls, fn = _failing(10, TimeoutError("slow"))
    with pytest.raises(TimeoutError):
        retry(fn, attempts=3, start=0.001)
    assert len(calls) == 3


def test_a_permanent_error_is_raised_at_once() -> None:
    calls, fn = _failing(10, ConfigurationError("refused"))
    seen: list[BaseException] = []
    with pytest.raises(ConfigurationError):
        retry(fn, on_error=seen.append, attempts=5, start=0.001)
    assert len(calls) == 1 and seen == []
    assert is_permanent(ConfigurationError("x")) and not is_permanent(ConnectionError("x"))


def test_the_deadline_bound_to_the_thread_stops_every_retry_on_it() -> None:
    """A worker binds its stop deadline; a plugin calling retry() inside a hook (no deadline of its own, no
    attempt limit) still gives up at it, and never sleeps past it."""
    clock = ManualClock()
    result: dict[str, float] = {}
    deadline: dict[str, float | None] = {"at": None}
    calls, fn = _failing(10**9, ConnectionError("down"), clock)

    def worker() -> None:
        backoff.bind_deadline(lambda: deadline["at"], clock=clock)
        try:
            retry(fn, start=0.05, cap=0.05)
        except ConnectionError:
            result["gave_up_at"] = clock.monotonic()

    t = _on_thread(worker)
    for n in (1, 2, 3, 4):  # no deadline yet: it keeps trying, wait after wait
        assert clock.wait_for_requests(n)
        clock.advance(0.05)
    assert clock.wait_for_requests(5)
    assert t.is_alive() and len(calls) == 5
    deadline["at"] = set_at = clock.monotonic() + 0.12  # stop() sets it later, from another thread
    clock.advance(0.05)  # the wait under way ends; the next one is cut to what is left before the deadline
    for n in (6, 7):
        assert clock.wait_for_requests(n)
        clock.advance(clock.requested[-1])
    t.join(10)
    assert not t.is_alive()
    assert clock.requested[5:] == pytest.approx([0.05, 0.02])  # 0.05, then the 0.02 left: never past it
    assert result["gave_up_at"] == pytest.approx(set_at)  # the last try was at the deadline, and it gave up
    assert calls[-1] == pytest.approx(set_at) and all(c < set_at for c in calls[:-1])


def test_a_long_backoff_under_way_ends_when_the_stop_deadline_is_set() -> None:
    """A worker mid-way through a 2 s backoff when stop() comes must not sleep it out: the end-run hook has
    only the grace after the deadline, and a run left RUNNING in the tracker is the failure this prevents."""
    clock = ManualClock()
    result: dict[str, float] = {}
    deadline: dict[str, float | None] = {"at": None}
    changed = threading.Event()
    calls, fn = _failing(10**9, ConnectionError("down"), clock)

    def worker() -> None:
        backoff.bind_deadline(lambda: deadline["at"], changed, clock)
        try:
            retry(fn, start=2.0, cap=2.0)
        except ConnectionError:
            result["gave_up_at"] = clock.monotonic()

    t = _on_thread(worker)
    assert clock.wait_for_requests(1)  # the first try failed; the thread is in its 2 s wait
    clock.advance(0.3)
    set_at = clock.monotonic()
    deadline["at"] = set_at + 0.2
    changed.set()  # stop(): the wait ends now, though the clock has not reached its end
    assert clock.wait_for_requests(2)  # tried once more, then waits within the deadline
    assert calls == pytest.approx([0.0, set_at])
    assert clock.requested == pytest.approx([2.0, 0.2])  # not the 1.7 s left of the first wait
    clock.advance(0.2)
    t.join(10)
    assert not t.is_alive()
    assert len(calls) == 3  # the first, one when stop() came, one at the deadline
    assert result["gave_up_at"] == pytest.approx(set_at + 0.2)
