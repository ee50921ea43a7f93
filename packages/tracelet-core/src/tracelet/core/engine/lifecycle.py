"""Runs end properly however the process ends, and a forked child never touches its parent's runs.

- Normal exit, an uncaught exception, or SIGTERM: every running experiment is stopped (FINISHED, FAILED,
  KILLED), so its backends receive everything and its run.json records the end. The SIGTERM handler is
  Tracelet's only while a run is running: when the last one stops, the previous handler is back.
- The active-experiment slot of the module-level API (`tracelet.start_logging` / `get_active_experiment`)
  lives here, next to the registry it belongs with.
- Fork: **the parent owns the run.** This module is the one place that says so. In a forked child (os.fork,
  multiprocessing "fork", DataLoader workers) every object registered with `detach_in_child` is detached
  before the child runs any code: experiments drop what the child logs (at no cost to the parent's hot path:
  the swap happens in the child only), orchestrators neither deliver nor end the run, and nothing running in
  the child is stopped at its exit, so the child never writes the parent's run.json nor uninstruments its
  frameworks. A "spawn" child starts with none of this: it has no experiment unless it starts its own.

This module knows experiments only through the small `Run` and `Detachable` protocols below.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

from tracelet.core.contract.records import RunStatus


class Run(Protocol):
    """What lifecycle needs of a running experiment."""

    @property
    def name(self) -> str: ...

    def stop(self, *, status: RunStatus | str = RunStatus.FINISHED) -> Any: ...


class Detachable(Protocol):
    """An object that must let go of its parent's run in a forked child."""

    def detach_after_fork(self) -> None:
        """Called in the child right after fork, before anything else runs there; must not take locks."""
        ...


_running: dict[int, Run] = {}
_active: Run | None = None
_lock = threading.Lock()
_installed = False
_sigterm_installed = False
_previous_sigterm: Any = None
_detachable: weakref.WeakSet[Any] = weakref.WeakSet()
_inherited: weakref.WeakSet[Any] = weakref.WeakSet()  # in a forked child: what was detached from the parent


# -- running experiments -------------------------------------------------------------------------------------
def register(run: Run) -> None:
    """`run` is running: stop it at exit or on SIGTERM."""
    with _lock:
        _running[id(run)] = run
    _install()


def unregister(run: Run) -> None:
    with _lock:
        _running.pop(id(run), None)
        idle = not _running
    if idle:
        _release_sigterm()


def stop_all(status: RunStatus) -> None:
    with _lock:
        running = list(_running.values())
    for run in running:
        try:
            run.stop(status=status)
        except Exception:  # at exit there is nobody left to raise to
            pass


# -- the active experiment -----------------------------------------------------------------------------------
def activate(run: Run | None) -> Run | None:
    """Make `run` the active experiment; return the one it replaces."""
    global _active
    with _lock:
        previous, _active = _active, run
    return previous


def active() -> Run | None:
    return _active


def deactivate(run: Run) -> None:
    """Clear the slot if `run` holds it (an experiment leaving its `with` block)."""
    global _active
    with _lock:
        if _active is run:
            _active = None


# -- fork ----------------------------------------------------------------------------------------------------
def detach_in_child(obj: Detachable) -> None:
    """Call `obj.detach_after_fork()` in every forked child while `obj` lives."""
    _detachable.add(obj)


def inherited(obj: Any) -> bool:
    """True in a forked child for an object it got from its parent: the parent owns that run, and the child
    neither stops it nor speaks of stopping it (a child's `start_logging` just takes the active slot)."""
    return obj in _inherited


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent thread may have held it at fork time
    _running.clear()  # the child's exit stops nothing: the parent's runs are the parent's
    for obj in list(_detachable):
        obj.detach_after_fork()
        _inherited.add(obj)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- exit and signals ----------------------------------------------------------------------------------------
def _at_exit() -> None:
    uncaught = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if uncaught is None:
        stop_all(RunStatus.FINISHED)
    else:
        stop_all(RunStatus.KILLED if isinstance(uncaught, KeyboardInterrupt) else RunStatus.FAILED)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stop_all(RunStatus.KILLED)
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        # Die of SIGTERM as the default disposition would, so the parent sees the real cause.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def run_exit_hook_first() -> None:
    """Move the exit hook behind every `atexit` hook registered so far, so it runs before them (atexit runs
    last-in-first-out). Called once a run's backends have started: a tracker library registers its own
    teardown while starting (W&B stops its service process at exit), which would otherwise run first, and
    the points the run delivers at exit would find the tracker gone (lost there, and `stop()` waiting for
    them until its timeout)."""
    if _installed:
        atexit.unregister(_at_exit)
        atexit.register(_at_exit)


def _install() -> None:
    global _installed, _previous_sigterm, _sigterm_installed
    if not _installed:
        _installed = True
        atexit.register(_at_exit)
    if not _sigterm_installed and threading.current_thread() is threading.main_thread():
        try:
            current = signal.getsignal(signal.SIGTERM)
            if current is not _on_sigterm:
                _previous_sigterm = current
                signal.signal(signal.SIGTERM, _on_sigterm)
            _sigterm_installed = True
        except (ValueError, OSError):  # embedded interpreters may not allow it
            pass


def _release_sigterm() -> None:
    """No run left: give SIGTERM back to the handler it had before, so a process is left as it was found
    (the handler is installed again by the next run). Only from the main thread (the only one that may set
    handlers; from another the handler stays and keeps chaining), and only while it is still Tracelet's."""
    global _sigterm_installed
    if not _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            if _previous_sigterm is None:  # a handler installed from C: it cannot be put back from Python
                return
            signal.signal(signal.SIGTERM, _previous_sigterm)
        _sigterm_installed = False
    except (ValueError, OSError, TypeError):
        pass
