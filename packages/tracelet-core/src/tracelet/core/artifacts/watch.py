"""Watching folders for new or rewritten files and logging each as an artifact typed by its extension.

watchdog (inotify, FSEvents, ReadDirectoryChangesW) tells us which paths changed when it is installed; without
it, or with `artifact_watcher="polling"`, the folders are rescanned every `interval` seconds. Either way a
file is logged only once it has stopped changing for `settle` seconds, so a checkpoint still being written is
not snapshotted half-way. Files present when watching starts are not logged; hidden and temporary files
(".x", "~", ".tmp", ".part", ".swp", ...), anything under the run store, and the files and folders the
trackers themselves write to (an MLflow sqlite database and artifact folder, a W&B or ClearML offline
session inside a watched folder) are ignored: logging those would feed back into itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger("tracelet")

IGNORED_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".swp", ".swx", ".crdownload", ".lock", "~")

Signature = tuple[int, int]  # (size, mtime_ns)


class ArtifactWatcher:
    """One thread that turns new or changed files under `dirs` into `on_file(path)` calls."""

    def __init__(
        self,
        dirs: list[Path],
        on_file: Callable[[Path], Any],
        exclude: list[Path] | None = None,
        interval: float = 1.0,
        settle: float = 1.0,
        mode: str = "auto",
        more_exclude: Callable[[], list[Path]] | None = None,
    ) -> None:
        if mode not in ("auto", "watchdog", "polling"):
            raise ValueError(f"artifact_watcher must be 'auto', 'watchdog' or 'polling', got {mode!r}")
        self.dirs = [Path(d) for d in dirs]
        self.on_file = on_file
        self._fixed_exclude = [Path(p) for p in (exclude or [])]
        self.exclude = list(self._fixed_exclude)
        # Paths known only later (what the trackers write to, once they have started), asked for at every tick.
        self.more_exclude = more_exclude
        self.interval = interval
        self.settle = settle
        self.mode = mode
        self.seen: dict[Path, Signature] = {}  # what was there at start or was last logged
        self._candidates: dict[Path, tuple[Signature, float]] = {}  # changed: (signature, when it last changed)
        self._dirty: set[Path] = set()  # paths watchdog reported since the last tick
        self._dirty_lock = threading.Lock()
        self._observer: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def mechanism(self) -> str:
        """How changes are noticed: "watchdog" (OS events) or "polling"."""
        return "watchdog" if self._observer is not None else "polling"

    def start(self) -> None:
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        self._refresh_exclude()
        self.seen = dict(self._scan())
        if self.mode != "polling":
            self._observer = self._start_observer()
        self._thread = threading.Thread(target=self._loop, name="tracelet-artifact-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, after one last pass that logs every new or changed file without waiting for it to settle."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=5)
            except Exception:
                pass
        self._tick(final=True)

    # -- watchdog ------------------------------------------------------------------------------------------------
    def _start_observer(self) -> Any:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            if self.mode == "watchdog":
                raise ImportError(
                    "artifact_watcher='watchdog' needs the watchdog package: pip install watchdog"
                ) from None
            return None
        dirty, lock = self._dirty, self._dirty_lock

        class Handler(FileSystemEventHandler):  # type: ignore[misc]
            def on_any_event(self, event: Any) -> None:
                # A folder created or moved in is rescanned: files moved in with it raise no events of their own.
                if event.is_directory and event.event_type not in ("created", "moved"):
                    return
                for attr in ("src_path", "dest_path"):
                    p = getattr(event, attr, None)
                    if p:
                        with lock:
                            dirty.add(Path(os.fsdecode(p)))

        # watchdog's inotify observer warns "Callback with id ... already exists" on the user's console whenever a
        # folder is renamed inside a watched tree (the stores' version folders are, when "." is watched); the
        # watch works all the same, so that one warning of that one module is silenced.
        warnings.filterwarnings(
            "ignore", message="Callback with id .* already exists", category=RuntimeWarning, module="watchdog"
        )
        try:
            observer = Observer()
            for d in self.dirs:
                observer.schedule(Handler(), str(d), recursive=True)
            observer.start()
        except Exception as exc:  # e.g. inotify watch limit reached: polling still works
            if self.mode == "watchdog":
                raise
            logger.info("tracelet: watchdog unavailable (%s); polling the artifact folders instead", exc)
            return None
        return observer

    # -- the loop ------------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        # With watchdog a tick only stats reported paths, so it can run often and settle promptly.
        tick = min(self.interval, 0.25) if self._observer is not None else self.interval
        while not self._stop.wait(tick):
            try:
                self._tick()
            except Exception as exc:  # a vanished folder or a failing log must not end watching
                logger.warning("tracelet: artifact watching: %s", exc)

    def _changed(self) -> dict[Path, Signature | None]:
        """Paths that may have changed since the last tick, with their signature now (None: gone)."""
        if self._observer is None:
            current = dict(self._scan())
            changed: dict[Path, Signature | None] = {p: s for p, s in current.items() if self.seen.get(p) != s}
            changed.update({p: None for p in self._candidates if p not in current})
            return changed
        with self._dirty_lock:
            paths = set(self._dirty)
            self._dirty.clear()  # cleared in place: the event handler holds this very set
        for p in [p for p in paths if p.is_dir()]:
            paths.discard(p)
            paths.update(path for path, _ in self._scan([p]))
        return {p: _signature(p) for p in paths | set(self._candidates) if self._wanted(p)}

    def _refresh_exclude(self) -> None:
        if self.more_exclude is None:
            return
        try:
            more = [Path(p) for p in self.more_exclude()]
        except Exception as exc:  # keep the last known list: watching goes on
            logger.debug("tracelet: artifact watching: cannot list paths to exclude: %s", exc)
            return
        self.exclude = list(dict.fromkeys([*self._fixed_exclude, *more]))

    def _tick(self, final: bool = False) -> None:
        self._refresh_exclude()
        now = time.monotonic()
        changes: dict[Path, Signature | None]
        if final and self._observer is not None:
            # Events may still be in flight at stop: a last full scan makes sure nothing is missed.
            changes = {p: s for p, s in self._scan() if self.seen.get(p) != s}
        else:
            changes = self._changed()
        for path, sig in changes.items():
            if sig is None:
                self._candidates.pop(path, None)
            elif self.seen.get(path) == sig:
                self._candidates.pop(path, None)
            else:
                previous = self._candidates.get(path)
                if previous is None or previous[0] != sig:
                    self._candidates[path] = (sig, now)
        for path, (sig, since) in list(self._candidates.items()):
            if final or now - since >= self.settle:
                del self._candidates[path]
                self.seen[path] = sig
                try:
                    self.on_file(path)
                except Exception as exc:
                    logger.warning("tracelet: could not log watched file %s as an artifact: %s", path, exc)

    # -- scanning ------------------------------------------------------------------------------------------------
    def _wanted(self, path: Path) -> bool:
        name = path.name
        if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
            return False
        if any(path == ex or ex in path.parents for ex in self.exclude):
            return False
        for d in self.dirs:  # nor anything inside a hidden folder (.git, .ipynb_checkpoints, ...)
            if d in path.parents:
                return not any(part.startswith(".") for part in path.relative_to(d).parts)
        return True

    def _scan(self, roots: list[Path] | None = None) -> list[tuple[Path, Signature]]:
        found: list[tuple[Path, Signature]] = []
        stack = [str(d) for d in (self.dirs if roots is None else roots)]
        while stack:
            top = stack.pop()
            try:
                entries = list(os.scandir(top))
            except OSError:
                continue
            for e in entries:
                path = Path(e.path)
                if e.name.startswith(".") or any(path == ex for ex in self.exclude):
                    continue
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file() and self._wanted(path):
                        st = e.stat()
                        found.append((path, (st.st_size, st.st_mtime_ns)))
                except OSError:
                    continue
        return found


def _signature(path: Path) -> Signature | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if not os.path.isdir(path) else None
