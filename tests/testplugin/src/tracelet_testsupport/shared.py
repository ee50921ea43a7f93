"""What one test session makes once and every pytest-xdist worker shares (they are separate processes)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def session_root(basetemp: Path, worker: str | None) -> Path:
    """The folder a whole run shares: above each xdist worker's own temporary folder, else the run's own."""
    return basetemp.parent if worker else basetemp


@contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `lock` (pytest-xdist workers are separate processes)."""
    import fcntl

    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def made_once(folder: Path, make: Callable[[Path], None]) -> Path:
    """`folder`, filled by `make(folder)` in whichever process asks first; the others wait on a lock beside it and
    take the same folder. A folder left half-made by a process that died making it is made again."""
    done = folder / ".complete"
    with exclusive(folder.with_name(folder.name + ".lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            make(folder)
            done.write_text("")
    return folder
