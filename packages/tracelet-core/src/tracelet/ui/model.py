"""What the UI shows, as JSON-ready dicts: the runs list, one run, its artifacts, and artifact files.

Everything is read through `tracelet.store` (run metadata, status, delivery, artifacts) and the series cache
(`tracelet.ui.series`: metrics, params, tags); nothing here writes to a run. Values that are not JSON types
(a param that was an object) are shown as their `str`. The server and `tracelet report` share these views,
so a report shows what the server would.
"""

from __future__ import annotations

import math
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from tracelet import store
from tracelet.ui.series import SeriesCache

CONSOLE_ARTIFACT = "console"
CONSOLE_LIMIT = 256 * 1024  # the console's last bytes shown; the whole log is a download away
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".bmp": "image/bmp",
}


class RefusedPath(Exception):
    """An artifact file request that does not name a stored file of the run (traversal, unknown name, ...)."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def _seconds(start: str | None, end: str | None) -> float | None:
    try:
        a = datetime.fromisoformat(str(start))
        b = datetime.fromisoformat(str(end)) if end else None
    except ValueError:
        return None
    return (b - a).total_seconds() if b is not None else None


class Store:
    """The runs under one store folder, each with its series cache (created on first use, kept current)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else store.default_root()
        self._caches: dict[Path, SeriesCache] = {}
        self._runs: dict[str, store.LocalRun] = {}
        self._lock = threading.Lock()
        self._fixed = False  # runs given one by one (`add`): the root is not listed

    def runs(self) -> list[store.LocalRun]:
        found = store.list_runs(self.root)
        with self._lock:
            self._runs = {r.id: r for r in found}
        return found

    def add(self, run: store.LocalRun) -> None:
        """Make a run from anywhere (a folder outside `root`) known by its id: `tracelet report` uses this."""
        with self._lock:
            self._runs[run.id] = run
            self._fixed = True

    def run(self, run_id: str) -> store.LocalRun:
        """A run of this store by exact id (re-read, so status and delivery are current); KeyError if none."""
        with self._lock:
            known = self._runs.get(run_id)
        if known is None and not self._fixed:
            self.runs()
            with self._lock:
                known = self._runs.get(run_id)
        if known is None:
            raise KeyError(run_id)
        return store.LocalRun(known.path)

    def cache(self, run: store.LocalRun) -> SeriesCache:
        key = run.path.resolve()
        with self._lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = SeriesCache(run.path)
        cache.refresh()  # only what was appended since the last request
        return cache

    # -- views --------------------------------------------------------------------------------------------
    def run_row(self, run: store.LocalRun) -> dict[str, Any]:
        """A run as one row of the runs list: what it is, its params and tags, and each metric's last value."""
        cache = self.cache(run)
        summary = cache.summary()
        meta = run.meta
        status = run.status
        end = meta.get("ended_at")
        if end is None:
            lasts = [m["last_time"] for m in summary.values() if m.get("last_time") is not None]
            end_ts = max(lasts) if lasts else None
            try:
                start_ts = datetime.fromisoformat(str(meta.get("created_at"))).timestamp()
            except ValueError:
                start_ts = None
            duration = end_ts - start_ts if end_ts is not None and start_ts is not None else None
        else:
            duration = _seconds(meta.get("created_at"), end)
        return {
            "id": run.id,
            "name": run.name,
            "project": run.project,
            "status": status,
            "dead": run.dead,
            "created_at": meta.get("created_at"),
            "ended_at": end,
            "duration": duration,
            "labels": _jsonable(meta.get("tags") or []),
            "tags": _jsonable(cache.index["tags"]),
            "params": _jsonable(cache.index["params"]),
            "last": {name: _jsonable(m["last"]) for name, m in summary.items()},
            "path": str(run.path),
        }

    def runs_view(self) -> dict[str, Any]:
        return {"root": str(self.root), "runs": [self.run_row(r) for r in self.runs()]}

    def run_view(self, run_id: str) -> dict[str, Any]:
        run = self.run(run_id)
        row = self.run_row(run)
        cache = self.cache(run)
        row["metrics"] = _jsonable(cache.summary())
        row["artifacts"] = artifacts_view(run)
        row["console"] = console_text(run)
        row["delivery"] = delivery_view(run)
        row["events"] = cache.index["events"]
        row["metadata"] = _jsonable(run.meta.get("metadata") or {})
        return row

    def series_view(
        self, run_id: str, metric: str, x: str, width: int, xmin: float | None = None, xmax: float | None = None
    ) -> dict[str, Any]:
        run = self.run(run_id)
        return self.cache(run).series(metric, x, width, xmin, xmax)

    def artifact_file(self, run_id: str, name: str, version: str, path: str) -> Path:
        """The stored file `path` of artifact `name` `version` of the run; RefusedPath unless it is one of the
        files that version lists and it lies inside the run's artifact folder (symlinks resolved)."""
        try:
            run = self.run(run_id)
            artifact = run.artifact(name, version)
        except Exception as exc:  # an invalid artifact name is refused by the store itself
            raise RefusedPath(f"no artifact {name!r} {version!r}: {exc}") from None
        if artifact is None:
            raise RefusedPath(f"no artifact {name!r} {version!r}")
        candidates = {f.artifact_path: f.local_path for f in artifact.files}
        candidates.update({f"objects/{o.name}": o.path for o in artifact.objects if o.path})
        local = candidates.get(path)
        if local is None:
            raise RefusedPath(f"artifact {name!r} {version!r} has no file {path!r}")
        from tracelet.core.engine import journal

        root = os.path.realpath(journal.artifacts_root(run.path))
        real = os.path.realpath(local)
        if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
            raise RefusedPath(f"{path!r} is not a file inside the run's artifact folder")
        return Path(real)


def artifacts_view(run: store.LocalRun) -> list[dict[str, Any]]:
    """Every stored version: name, version, type, description, metadata, files (with image flags)."""
    out: list[dict[str, Any]] = []
    try:
        artifacts = run.artifacts()
    except OSError:
        return out
    for a in artifacts:
        files = [
            {
                "path": f.artifact_path,
                "size": f.size_bytes,
                "checksum": f.checksum,
                "image": Path(f.artifact_path).suffix.lower() in IMAGE_TYPES,
            }
            for f in a.files
        ]
        files += [
            {"path": f"objects/{o.name}", "size": o.size_bytes, "checksum": None, "image": False}
            for o in a.objects
            if o.path
        ]
        out.append(
            {
                "name": a.name,
                "version": a.version,
                "type": getattr(a.type, "value", str(a.type)),
                "description": a.description,
                "created_at": a.created_at.isoformat() if a.created_at else None,
                "metadata": _jsonable(a.metadata),
                "size": a.size_bytes,
                "files": files,
            }
        )
    return out


def console_text(run: store.LocalRun) -> dict[str, Any] | None:
    """The last `CONSOLE_LIMIT` bytes of the run's captured console (the `console` artifact), if stored."""
    try:
        artifact = run.artifact(CONSOLE_ARTIFACT)
    except Exception:
        return None
    if artifact is None or not artifact.files:
        return None
    f = artifact.files[0]
    try:
        with open(f.local_path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(size - CONSOLE_LIMIT, 0))
            data = fh.read()
    except OSError:
        return None
    return {
        "text": data.decode("utf-8", "replace"),
        "truncated": size > CONSOLE_LIMIT,
        "version": artifact.version,
        "path": f.artifact_path,
    }


def delivery_view(run: store.LocalRun) -> dict[str, Any]:
    """Each backend's delivery state, and the command that finishes the ones behind."""
    meta = run.meta
    try:
        behind = run.behind()
    except Exception:  # an unreadable record is shown as unknown, not as an error page
        behind = {}
    names = [n for n in (meta.get("backends") or []) if n != "local"]
    names += [n for n in behind if n not in names]
    live = meta.get("status") == "RUNNING" and not run.dead
    rows = []
    for name in names:
        if name in behind:
            state = f"{behind[name]:,} events behind"
        elif live:
            state = "delivering (live run)"
        else:
            state = "delivered"
        rows.append({"backend": name, "state": state, "behind": behind.get(name)})
    return {"backends": rows, "sync": f"tracelet sync {run.id}" if behind else None}
