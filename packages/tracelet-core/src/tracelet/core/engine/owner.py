"""Who owns a run, and whether that owner is still alive: dead runs are told apart without guessing.

A live run holds an exclusive `flock` on `<run_dir>/owner.lock` from start until its run.json records the
end, and run.json records the owner as `owner: {host, pid, process_started, lock}` (`process_started` is the
process's start time from psutil, in seconds since the epoch, so a recycled pid is never taken for the owner).

A run whose run.json still says RUNNING is judged by `liveness()`:

- `"dead"`: the lock can be taken (the kernel releases a flock when its holder dies, however it dies:
  SIGKILL, the OOM killer), or the owner's host is this host and no process with that pid and start time
  exists;
- `"alive"`: the lock is held by someone else and, on this host, the owner process still exists;
- `"unknown"`: no owner record (a run written before owners were recorded), or the run folder cannot be
  locked (read-only media). Such a run keeps its recorded status.

A dead run's status is reported as **KILLED** (`DEAD_STATUS`): MLflow, W&B and ClearML all know a killed run,
while none has a "crashed" state that every backend shares; `effective_status` readers can tell a death from
a Ctrl-C by `dead=True` (`tracelet.store.LocalRun.dead`). A node lost with its shared filesystem's lock
server is judged by the lock alone: on filesystems without working `flock` the answer is `"unknown"`.

Probing takes the lock for an instant and releases it; it never holds it, and it never writes.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from pathlib import Path
from typing import Any

from tracelet.core.contract.records import RunStatus

LOCK_FILE = "owner.lock"
DEAD_STATUS = RunStatus.KILLED.value
_START_SLACK = 1.0  # seconds: process start times are read with clock-tick resolution

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are judged by pid and start time on this host only
    fcntl = None  # type: ignore[assignment]


def _process_started(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # no such process, no permission, psutil missing
        return None


class Owner:
    """The lock a live run holds; `info` is what run.json records under `owner`."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None
        pid = os.getpid()
        self.info: dict[str, Any] = {
            "host": socket.gethostname(),
            "pid": pid,
            "process_started": _process_started(pid),
            "lock": LOCK_FILE,
        }

    def claim(self) -> Owner:
        """Take the lock; a folder that cannot be locked leaves the run judged by pid alone."""
        if fcntl is None or self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            self.info["lock"] = None
            return self
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self.info["lock"] = None
            return self
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (after run.json records the end); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)  # closing the last descriptor releases the flock
            except OSError:
                pass


def _lock_free(run_dir: Path, lock_name: str) -> bool | None:
    """True if nobody holds the run's lock, False if someone does, None if it cannot be told."""
    if fcntl is None:
        return None
    try:
        fd = os.open(run_dir / lock_name, os.O_RDWR)
    except FileNotFoundError:
        return True  # the owner recorded a lock and the file is gone: nobody can hold it
    except OSError:
        return None
    try:
        for attempt in range(2):  # a second try: another reader's probe holds the lock for an instant only
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return None
                if attempt:
                    return False
                time.sleep(0.01)
            else:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return True
        return False
    finally:
        os.close(fd)


def _process_alive(info: dict[str, Any]) -> bool | None:
    """On the owner's host: whether its process (pid and start time) still exists; None elsewhere."""
    if info.get("host") != socket.gethostname():
        return None
    try:
        pid = int(info["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    started = _process_started(pid)
    if started is None:
        return False
    recorded = info.get("process_started")
    if recorded is None:
        return True
    return abs(started - float(recorded)) <= _START_SLACK


def liveness(run_dir: str | os.PathLike[str], meta: dict[str, Any]) -> str:
    """ "alive", "dead" or "unknown" for a run whose run.json says RUNNING (see the module docstring)."""
    info = meta.get("owner")
    if not isinstance(info, dict):
        return "unknown"
    process = _process_alive(info)
    if process is False:
        return "dead"
    lock = info.get("lock")
    free = _lock_free(Path(run_dir), str(lock)) if lock else None
    if free is True:
        return "dead"
    if free is False or process is True:
        return "alive"
    return "unknown"


def is_dead(run_dir: str | os.PathLike[str], meta: dict[str, Any]) -> bool:
    return meta.get("status") == RunStatus.RUNNING.value and liveness(run_dir, meta) == "dead"


def effective_status(run_dir: str | os.PathLike[str], meta: dict[str, Any]) -> str | None:
    """The recorded status, or DEAD_STATUS for a RUNNING run whose owner is dead."""
    status = meta.get("status")
    if status == RunStatus.RUNNING.value and liveness(run_dir, meta) == "dead":
        return DEAD_STATUS
    return status
