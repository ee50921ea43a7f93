"""Runs end properly however the process ends: normal exit, an uncaught exception, or SIGTERM."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracelet.core.experiment import Experiment

_running: dict[int, Experiment] = {}
_lock = threading.Lock()
_installed = False
_previous_sigterm: Any = None


def register(exp: Experiment) -> None:
    with _lock:
        _running[id(exp)] = exp
    _install()


def unregister(exp: Experiment) -> None:
    with _lock:
        _running.pop(id(exp), None)


def stop_all(status: str) -> None:
    with _lock:
        running = list(_running.values())
    for exp in running:
        try:
            exp.stop(status=status)
        except Exception:  # at exit there is nobody left to raise to
            pass


def _at_exit() -> None:
    uncaught = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if uncaught is None:
        stop_all("FINISHED")
    else:
        stop_all("KILLED" if isinstance(uncaught, KeyboardInterrupt) else "FAILED")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stop_all("KILLED")
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        # Die of SIGTERM as the default disposition would, so the parent sees the real cause.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _install() -> None:
    global _installed, _previous_sigterm
    if _installed:
        return
    _installed = True
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        try:
            _previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # embedded interpreters may not allow it
            pass
