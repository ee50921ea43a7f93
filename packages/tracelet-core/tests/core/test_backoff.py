"""The one retry policy (`tracelet.core.engine.backoff`, `tracelet.plugin.retry`): transient errors are retried with
growing waits, a ConfigurationError is raised at once, and no retry outlives the stop deadline its thread has
bound, whatever the caller asked for (the worker binds it; a plugin's own retries inside a hook inherit it)."""

from __future__ import annotations

import threading
import time

import pytest

from tracelet.core.engine import backoff
from tracelet.exceptions import ConfigurationError
from tracelet.plugin import is_permanent, retry


def _failing(times: int, exc: BaseException) -> tuple[list[float], object]:
    calls: list[float] = []

    def fn() -> str:
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise exc
        return "done"

    return calls, fn


def test_transient_errors_are_retried_with_growing_waits() -> None:
    calls, fn = _failing(3, ConnectionError("down"))
    seen: list[BaseException] = []
    assert retry(fn, on_error=seen.append, start=0.01) == "done"
    assert len(calls) == 4 and len(seen) == 3
    waits = [b - a for a, b in zip(calls, calls[1:])]
    assert waits[0] >= 0.01 and waits[2] >= 0.04  # 0.01, 0.02, 0.04


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
    result: dict[str, object] = {}
    deadline = {"at": None}

    def worker() -> None:
        backoff.bind_deadline(lambda: deadline["at"])
        calls, fn = _failing(10**9, ConnectionError("down"))
        t0 = time.monotonic()
        try:
            retry(fn, start=0.05, cap=0.05)
        except ConnectionError:
            result["gave_up_after"] = time.monotonic() - t0

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.2)
    assert t.is_alive()  # no deadline yet: it keeps trying
    deadline["at"] = time.monotonic() + 0.2  # stop() sets it later, from another thread
    t.join(5)
    assert not t.is_alive()
    assert 0.3 <= float(result["gave_up_after"]) < 3.0  # type: ignore[arg-type]


def test_a_long_backoff_under_way_ends_when_the_stop_deadline_is_set() -> None:
    """A worker mid-way through a 2 s backoff when stop() comes must not sleep it out: the end-run hook has
    only the grace after the deadline, and a run left RUNNING in the tracker is the failure this prevents."""
    result: dict[str, float] = {}
    deadline: dict[str, float | None] = {"at": None}
    changed = threading.Event()

    def worker() -> None:
        backoff.bind_deadline(lambda: deadline["at"], changed)
        calls, fn = _failing(10**9, ConnectionError("down"))
        try:
            retry(fn, start=2.0, cap=2.0)
        except ConnectionError:
            result["gave_up_at"] = time.monotonic()
            result["tries"] = len(calls)

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.3)  # the first try failed; the thread is in its 2 s wait
    set_at = time.monotonic()
    deadline["at"] = set_at + 0.2
    changed.set()
    t.join(5)
    assert not t.is_alive()
    assert result["gave_up_at"] - set_at < 1.0  # not the 1.7 s left of the wait
    assert result["tries"] == 3  # the first, one when stop() came, one at the deadline
