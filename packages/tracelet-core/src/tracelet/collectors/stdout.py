"""A tee of the console (`sys.stdout` and `sys.stderr`) into the run: a live `output.log` and a `report` artifact.

Switch: `ExperimentConfig.track_stdout` — on by default for an experiment given an `ExperimentConfig` (the
spec's default), and for runs configured by settings alone it follows the setting `track_stdout`
(`TRACELET_TRACK_STDOUT`), which is **off** by default: the spec's settings table has no such setting, and
replacing a process's console streams is something a script should ask for.

Guarantees:
- The console behaves as before: every write goes to the original stream first, unchanged and unbuffered by
  us, so `\\r` progress bars, colours, `isatty()`, `fileno()`, `encoding`, `errors`, `buffer` and every other
  attribute are the original stream's. At stop `sys.stdout`/`sys.stderr` are put back (when something replaced
  them after us, it stays, and our wrapper in its chain becomes a pure pass-through).
- The run folder's `output.log` is written as lines complete (what a terminal would show: a `\\r` rewrites the
  current line, so a progress bar is kept at its final state, not as hundreds of copies); secret shapes are
  masked line by line. It is flushed on a write at most every `FLUSH_EVERY` seconds, and a small timer
  thread flushes what a write left in the buffer `FLUSH_EVERY` seconds later, so it trails the console by at
  most that long even when the script goes quiet (the collector tick alone is `metrics_interval`, 10 s). At stop it is logged once as the
  `report` artifact `console` (file `output.log`).
- Only what goes through the Python streams is seen: writes straight to file descriptors 1/2 (C extensions,
  child processes) and to `sys.stdout.buffer` reach the console but not the log, nor does a `logging` handler
  made before `start()` (it holds the original stream; one made during the run is teed). A forked child's
  prints reach its console but not the parent's log.
- A failure of the log (full disk) is reported once and stops the tee; the console never notices.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any

from tracelet.collectors import takes_artifacts
from tracelet.core.contract.redact import redact_text
from tracelet.plugin import ArtifactType, TraceletArtifact, hookimpl

logger = logging.getLogger("tracelet")

LOG_NAME = "output.log"
MAX_LINE = 64 * 1024  # a line longer than this (no newline in sight) is written out in pieces
FLUSH_EVERY = 0.5  # seconds: output.log trails the console by at most this long
_CONTROL = re.compile(r"(\r|\n)")
_OPEN_LOGS: weakref.WeakSet[ConsoleLog] = weakref.WeakSet()


def _before_fork() -> None:
    # A forked child (DataLoader workers) inherits the file buffer: emptied first, it cannot be written twice.
    for log in list(_OPEN_LOGS):
        log.flush()


def _in_child() -> None:
    # The parent owns the run: a child's prints reach its console as always, but not the parent's log.
    for log in list(_OPEN_LOGS):
        log.detach_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_in_child)


class ConsoleLog:
    """The file side of the tee: turns a stream of console text into completed, redacted lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._lock = threading.Lock()
        self._line: dict[str, tuple[str, int]] = {}  # per stream name: (current line, cursor column)
        self._flushed = 0.0
        self._dirty = False  # written since the last flush
        self._closing = threading.Event()
        # Flushes what the last writes left buffered: without it a line printed before a quiet stretch would
        # reach output.log only at the next collector tick (`metrics_interval`), not within FLUSH_EVERY.
        self._flusher = threading.Thread(target=self._flush_loop, name="tracelet-console-log", daemon=True)
        self._flusher.start()
        _OPEN_LOGS.add(self)

    def _flush_loop(self) -> None:
        while not self._closing.wait(FLUSH_EVERY):
            if self._dirty:
                try:
                    self.flush()
                except Exception:  # a full disk: the next write reports it (TeeStream), the console goes on
                    return

    def detach_in_child(self) -> None:
        """Forget the file without flushing or closing it (the parent's copy is the one that writes)."""
        self._lock = threading.Lock()  # the parent's lock may have been held by another thread at fork
        self._closing.set()  # the flusher thread is the parent's; none runs here
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fh.fileno())  # whatever the child's copy flushes at exit goes nowhere
                os.close(null)
            except OSError:
                pass

    def feed(self, stream: str, text: str) -> None:
        if not text:  # print() writes its `end` separately, often ""
            return
        with self._lock:
            if self._fh is None:
                return
            line, col = self._line.get(stream, ("", 0))
            out: list[str] = []
            if "\r" not in text:  # the common case, split in C
                parts = text.split("\n")
                line, col = _put(line, col, parts[0])
                if len(parts) > 1:
                    out.append(line)
                    out.extend(parts[1:-1])
                    line = parts[-1]
                    col = len(line)
            else:
                for piece in _CONTROL.split(text):
                    if piece == "\n":
                        out.append(line)
                        line, col = "", 0
                    elif piece == "\r":
                        col = 0
                    elif piece:
                        line, col = _put(line, col, piece)
            if len(line) > MAX_LINE:
                out.append(line)
                line, col = "", 0
            self._line[stream] = (line, col)
            if out:
                self._fh.write("".join(redact_text(s) + "\n" for s in out))
                now = time.monotonic()
                if now - self._flushed >= FLUSH_EVERY:  # a flush is a system call: not one per printed line
                    self._fh.flush()
                    self._flushed = now
                    self._dirty = False
                else:
                    self._dirty = True

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
                self._flushed = time.monotonic()
                self._dirty = False

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            if self._fh is None:
                return
            try:
                rest = [line for line, _ in self._line.values() if line]
                if rest:
                    self._fh.write("".join(redact_text(s) + "\n" for s in rest))
                self._fh.close()
            finally:
                self._fh = None


def _put(line: str, col: int, text: str) -> tuple[str, int]:
    """Write `text` at column `col` of `line` as a terminal would (overwriting, not inserting)."""
    if not text:
        return line, col
    if col == len(line):  # appending, as almost always
        return line + text, col + len(text)
    return line[:col] + text + line[col + len(text) :], col + len(text)


class TeeStream:
    """Stands in for a console stream: writes go to it unchanged, then to the log; all else is the stream's."""

    def __init__(self, stream: Any, name: str, log: ConsoleLog, on_error: Any) -> None:
        self._tracelet_stream = stream
        self._tracelet_name = name
        self._tracelet_log: ConsoleLog | None = log
        self._tracelet_on_error = on_error

    def write(self, text: str) -> int:
        n = self._tracelet_stream.write(text)
        log = self._tracelet_log
        if log is not None:
            try:
                log.feed(self._tracelet_name, text if isinstance(text, str) else str(text))
            except Exception as exc:
                self._tracelet_log = None
                self._tracelet_on_error(exc)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def detach_log(self) -> None:
        self._tracelet_log = None

    def __getattr__(self, name: str) -> Any:
        # isatty, fileno, flush, encoding, errors, buffer, closed, mode, name, reconfigure...: the stream's own.
        return getattr(self._tracelet_stream, name)

    def __iter__(self) -> Any:
        return iter(self._tracelet_stream)

    def __repr__(self) -> str:
        return f"<tracelet tee of {self._tracelet_stream!r}>"


class StdoutCollector:
    """Tees `sys.stdout` and `sys.stderr` into the run while it is active."""

    config_switch = "track_stdout"

    def __init__(self) -> None:
        self._log: ConsoleLog | None = None
        self._tees: dict[str, TeeStream] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._reported = False

    def _on_error(self, exc: BaseException) -> None:
        if not self._reported:
            self._reported = True
            logger.warning(
                "tracelet: the console log stopped: %s: %s (the console is unaffected)", type(exc).__name__, exc
            )

    @hookimpl
    def collector_start(self, experiment: Any) -> None:
        run_dir = getattr(experiment, "run_dir", None)
        if run_dir is not None:
            folder = Path(run_dir)
        else:  # no local store: the log lives in a temporary folder until it is logged at stop
            self._tmp = tempfile.TemporaryDirectory(prefix="tracelet-console-")
            folder = Path(self._tmp.name)
        self._log = ConsoleLog(folder / LOG_NAME)
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is None:  # pythonw, some services
                continue
            tee = TeeStream(stream, name, self._log, self._on_error)
            self._tees[name] = tee
            setattr(sys, name, tee)

    @hookimpl
    def collector_sample(self) -> None:
        # On the collector thread: lines printed just before a long quiet stretch reach output.log too.
        if self._log is not None:
            self._log.flush()

    @hookimpl
    def collector_stop(self, experiment: Any) -> None:
        for name, tee in self._tees.items():
            tee.detach_log()
            if getattr(sys, name) is tee:
                setattr(sys, name, tee._tracelet_stream)
        self._tees.clear()
        log, self._log = self._log, None
        if log is None:
            return
        try:
            log.close()
            if log.path.stat().st_size > 0 and takes_artifacts(experiment):
                artifact = TraceletArtifact("console", ArtifactType.REPORT, "the run's stdout and stderr")
                artifact.add_file(os.fspath(log.path), LOG_NAME)
                experiment.log_artifact(artifact)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None
