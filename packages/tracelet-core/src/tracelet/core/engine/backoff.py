"""One retry policy for every delivery: capped exponential backoff that never outlives the run's stop deadline.

The backend workers, artifact delivery and plugins (through `tracelet.plugin.retry`, e.g. MLflow's end-run)
all retry through `retry`. A worker thread binds its stop deadline with `bind_deadline` once; every `retry`
on that thread (including inside a plugin's hook) then stops waiting when the deadline passes, so stop()
returns in time however many layers retry. A wait begun before stop() set the deadline ends when it is set
(the thread also binds the event stop() signals), so a backoff of up to `BACKOFF_CAP` never eats the time
the worker has left to end the run.

Deadlines and waits are measured on the clock the thread binds with its deadline (`tracelet.core.engine.clock`;
real time unless the worker was given another), so a retry never waits past a deadline of another clock.

Transient and permanent failures are told apart by the exception: a `ConfigurationError` means "this will
never succeed" (the tracker refuses this data, or the setup is wrong) and is raised at once, without
retrying; anything else (an outage, a timeout) is retried. `is_permanent` is the one place that says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from tracelet.core.engine.clock import SYSTEM, Clock
from tracelet.exceptions import ConfigurationError

T = TypeVar("T")

BACKOFF_START = 0.05  # seconds before the second try
BACKOFF_CAP = 2.0  # the longest wait between two tries
_bound = threading.local()


def is_permanent(exc: BaseException) -> bool:
    """True when retrying cannot help: a plugin raised ConfigurationError (documented in the hookspecs)."""
    return isinstance(exc, ConfigurationError)


def bind_deadline(
    deadline: Callable[[], float | None], changed: threading.Event | None = None, clock: Clock = SYSTEM
) -> None:
    """Make `deadline()` (a `clock.monotonic()` value, or None for none yet) the stop deadline of every
    `retry` on this thread, and `clock` the one its waits are measured on. A callable, because stop() sets the
    deadline later, from another thread; that thread sets `changed` when it does, which cuts short a wait begun
    while there was no deadline."""
    _bound.deadline = deadline
    _bound.changed = changed
    _bound.clock = clock


def current_deadline() -> float | None:
    """The stop deadline bound to this thread, or None."""
    getter = getattr(_bound, "deadline", None)
    return getter() if getter is not None else None


def retry(
    fn: Callable[[], T],
    *,
    attempts: int | None = None,
    on_error: Callable[[BaseException], None] | None = None,
    deadline: Callable[[], float | None] | None = None,
    start: float = BACKOFF_START,
    cap: float = BACKOFF_CAP,
) -> T:
    """Call `fn` until it returns, waiting `start`, then twice as long each time (at most `cap`) between tries.

    Re-raises `fn`'s last error when it is permanent (`is_permanent`), when `attempts` tries were made, or
    when the stop deadline (`deadline()`, else the one bound to this thread) has passed; it never sleeps past
    that deadline. `on_error` sees every transient error before the wait.

    :param fn: what to call; its return value is returned.
    :param attempts: the most tries; None tries until the deadline (forever when there is none).
    :param on_error: called with each transient error (e.g. to count and log it).
    :param deadline: returns the time to give up at (on the clock bound to this thread, real time by default),
        or None.
    """
    get_deadline = deadline if deadline is not None else current_deadline
    clock: Clock = getattr(_bound, "clock", SYSTEM)
    delay = start
    tries = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            tries += 1
            if is_permanent(exc):
                raise
            if on_error is not None:
                on_error(exc)
            end = get_deadline()
            now = clock.monotonic()
            if (attempts is not None and tries >= attempts) or (end is not None and now >= end):
                raise
            changed = getattr(_bound, "changed", None) if deadline is None else None
            if end is None and changed is not None:
                clock.wait(changed, delay)  # set by stop(): try once more, then wait within the new deadline
            else:
                clock.sleep(delay if end is None else min(delay, max(end - now, 0.0)))
            delay = min(delay * 2, cap)
