"""Leave the process as it was found: undo what importing clearml and `Task.init` change globally.

Importing clearml patches `argparse.ArgumentParser` (`parse_args`, `parse_known_args`, `add_subparsers`,
`_get_value`); `Task.init` replaces `sys.exit` and `sys.excepthook`, installs signal handlers (SIGTERM, SIGINT,
... when called on the main thread) and an `atexit` hook; `Task.close()` puts back the excepthook and signals
but not `sys.exit`, and installs an import hook (`builtins.__import__`); it also wraps
`multiprocessing`'s `BaseProcess.run` for its fork handling. With auto-capture switched on it also swaps
`sys.stdout` / `sys.stderr`, and `sys.__stdout__` / `sys.__stderr__` too (so colour libraries keep working), which
its `close()` leaves in place: writes through them would still go into the closed task's console buffer.

`ProcessState.capture()` records these objects; `restore()` puts back each one that *ClearML* replaced
(the current object comes from a `clearml` module), so a change made meanwhile by someone else (pytest's
capture, the user's own excepthook) is left alone. Signal handlers can only be set from the main thread; from
another thread they are left as they are (ClearML cannot install them from there either).
"""

from __future__ import annotations

import argparse
import builtins
import signal
import sys
import threading
from multiprocessing.process import BaseProcess
from typing import Any

_MISSING = object()
STREAMS = ("stdout", "stderr", "__stdout__", "__stderr__")
ARGPARSE_ATTRS = ("parse_args", "parse_known_args", "add_subparsers", "_get_value", "_parse_args_patched")
SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGSEGV", "SIGABRT", "SIGILL", "SIGFPE", "SIGQUIT")
    if hasattr(signal, name)
)


def _from_clearml(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "") or ""
    func = getattr(obj, "__func__", None)  # bound methods
    if func is not None:
        module = getattr(func, "__module__", module) or module
    return str(module).split(".")[0] == "clearml"


def _clearml_original(name: str, captured: Any) -> Any:
    if name == "_parse_args_patched":
        return captured
    patcher = getattr(sys.modules.get("clearml.binding.args"), "PatchArgumentParser", None)
    saved = getattr(patcher, "_original_" + name.lstrip("_"), None)
    return saved if saved is not None else captured


class ProcessState:
    """Process-wide objects ClearML replaces, as they were at capture time."""

    def __init__(self) -> None:
        self.argparse = {name: argparse.ArgumentParser.__dict__.get(name, _MISSING) for name in ARGPARSE_ATTRS}
        self.sys_attrs = {name: getattr(sys, name) for name in (*STREAMS, "excepthook", "exit")}
        self.threading_excepthook = threading.excepthook
        self.import_hook = builtins.__import__
        self.process_run = BaseProcess.run
        self.signals: dict[int, Any] = {}
        for sig in SIGNALS:
            try:
                self.signals[sig] = signal.getsignal(sig)
            except (ValueError, OSError):  # not supported on this platform
                pass

    @classmethod
    def capture(cls) -> ProcessState:
        return cls()

    def restore_argparse(self) -> list[str]:
        """Put back argparse's methods if ClearML patched them since capture; return the names restored."""
        restored = []
        for name, before in self.argparse.items():
            now = argparse.ArgumentParser.__dict__.get(name, _MISSING)
            if now is before:
                continue
            if name == "_parse_args_patched" or _from_clearml(now):
                # What ClearML replaced is what it saved as the original: exact even when another wrapper
                # (Tracelet's own argv collector, say) was installed between our capture and ClearML's patch.
                original = _clearml_original(name, before)
                if original is _MISSING:
                    delattr(argparse.ArgumentParser, name)
                else:
                    setattr(argparse.ArgumentParser, name, original)
                restored.append(f"argparse.ArgumentParser.{name}")
        return restored

    def restore(self, streams: bool = True, arguments: bool = True) -> list[str]:
        """Put back everything ClearML replaced since capture; return what was restored (for logs and tests).

        :param streams: also restore `sys.stdout` / `sys.stderr` (False while a run keeps ClearML's console
            capture on by request).
        :param arguments: also restore argparse (False while a run keeps ClearML's argparse capture on).
        """
        restored = self.restore_argparse() if arguments else []
        for name, before in self.sys_attrs.items():
            if name in STREAMS and not streams:
                continue
            now = getattr(sys, name)
            if now is not before and _from_clearml(now):
                setattr(sys, name, before)
                restored.append(f"sys.{name}")
        if threading.excepthook is not self.threading_excepthook and _from_clearml(threading.excepthook):
            threading.excepthook = self.threading_excepthook
            restored.append("threading.excepthook")
        if BaseProcess.run is not self.process_run and _from_clearml(BaseProcess.run):
            BaseProcess.run = self.process_run  # type: ignore[method-assign]
            restored.append("multiprocessing BaseProcess.run")
        if builtins.__import__ is not self.import_hook and _from_clearml(builtins.__import__):
            builtins.__import__ = self.import_hook
            restored.append("builtins.__import__")
        if threading.current_thread() is threading.main_thread():
            for sig, before in self.signals.items():
                try:
                    now = signal.getsignal(sig)
                    if now is not before and _from_clearml(now):
                        signal.signal(sig, before)
                        restored.append(f"signal {signal.Signals(sig).name}")
                except (ValueError, OSError, TypeError):  # a handler installed from C, or not settable here
                    pass
        return restored
