"""The UI's series cache: a run's metrics as column files beside the journal, read incrementally.

Guarantees:

- Built only through the journal's reading API (`tracelet.core.engine.journal.read_frames`): the cache remembers the
  byte offset after the last complete frame it read, and each refresh reads only the frames appended since
  (a live run costs what it logged since the last poll, never a re-read of the whole journal).
- Rebuilt from scratch when stale: the journal is shorter than the offset, its first bytes or its inode
  changed (a replaced or rewritten file), the journal format version or this cache's version changed, or the
  cache's own files are shorter than its index says (a crash between the append and the index write).
- Read-only towards the run: the cache lives in `<run>/.ui-cache/` when the run folder is writable, else under
  the user's cache folder (`$XDG_CACHE_HOME/tracelet/ui/<hash of the run path>`); run data is never written.

Layout of the cache folder:

- `index.json`: cache version, the journal's identity (inode, sha256 of its first 64 bytes, format version),
  `offset` (bytes read), `events` (events read), merged params and tags, and per metric its file stem,
  point count, last/min/max value and last step/time. Replaced atomically after the column files grew.
- `<stem>.pts`: one record per point, three little-endian float64s: step, timestamp, value.
- `<stem>.l1`, `<stem>.l2`: per block of `BLOCK` points (`.l1`) or of `BLOCK` `.l1` blocks (`.l2`), six
  float64s: step, time and value of the block's minimum, then of its maximum (values NaN, at the block's
  first step and time, when the block holds no finite value). Downsampling a 10-million-point series to a chart's width reads a few thousand blocks.

Downsampling keeps extremes: each pixel column of the chart gets the minimum and the maximum of the points it
covers, at their own x, so no spike disappears however far a chart is zoomed out. Non-finite values are
gaps (null), as a chart cannot draw them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracelet.core.contract.records import METRIC, PARAMS, TAGS
from tracelet.core.engine import journal

CACHE_VERSION = 1
CACHE_DIR = ".ui-cache"
INDEX = "index.json"
BLOCK = 64  # points per .l1 block, and .l1 blocks per .l2 block
_ROW = 3  # step, time, value
_BLK = 6  # min (step, time, value), max (step, time, value)
_F = 8  # bytes per float64
_FLUSH_POINTS = 500_000  # points buffered in memory while reading before they are appended to the files
_HEAD = 64  # journal bytes hashed to recognise a replaced file
_NAN = math.nan


def cache_dir_for(run_dir: Path) -> Path:
    """`<run>/.ui-cache` when it can be created there, else a folder under the user's cache directory."""
    local = run_dir / CACHE_DIR
    try:
        local.mkdir(exist_ok=True)
        probe = local / f".probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return local
    except OSError:  # a read-only store (a shared archive, a mounted snapshot): the run folder stays untouched
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:24]
        folder = base / "tracelet" / "ui" / digest
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return _NAN


def _finite(v: float) -> bool:
    return v - v == 0  # False for NaN and +-inf, without a function call per point


def _finite_only(values: Any) -> Any:
    """`values` without NaN and infinities; the sum (C speed) tells the common all-finite case in one pass."""
    total = sum(values)
    if total - total == 0:
        return values
    return [v for v in values if v - v == 0]


def _extremes(rows: array, stride: int, vi_min: int, vi_max: int) -> list[float]:
    """Min and max records over `rows` (records of `stride` floats; value at `vi_min`/`vi_max` of each)."""
    lows = rows[vi_min::stride]
    highs = rows[vi_max::stride]
    fl = _finite_only(lows)
    if not len(fl):  # no finite value: a gap, placed at the block's first x
        return [rows[vi_min - 2], rows[vi_min - 1], _NAN, rows[vi_min - 2], rows[vi_min - 1], _NAN]
    fh = _finite_only(highs)
    lo, hi = min(fl), max(fh)
    i, j = lows.index(lo), highs.index(hi)
    a, b = i * stride + vi_min - 2, j * stride + vi_max - 2
    return [rows[a], rows[a + 1], lo, rows[b], rows[b + 1], hi]


class _Metric:
    """One metric's column files; appends go to the files, reads use pread (nothing big stays in memory)."""

    def __init__(self, folder: Path, stem: str, info: dict[str, Any]) -> None:
        self.folder, self.stem, self.info = folder, stem, info
        self.buffer = array("d")  # points read but not yet appended

    @property
    def n(self) -> int:
        return int(self.info["n"])

    def path(self, ext: str) -> Path:
        return self.folder / f"{self.stem}.{ext}"

    def add(self, step: Any, ts: Any, value: Any) -> None:
        """The slow path for a point the fast one refused (a value array('d') does not take as it is)."""
        self.buffer.extend((_float(step), _float(ts), _float(value)))

    def flush(self) -> None:
        """Append the buffered points, then the blocks they completed."""
        if not self.buffer:
            return
        buf, info = self.buffer, self.info
        info["last_step"], info["last_time"], info["last"] = buf[-3], buf[-2], buf[-1]
        finite = _finite_only(buf[2::_ROW])
        if len(finite):
            lo, hi = min(finite), max(finite)
            info["min"] = lo if info["min"] is None else min(lo, info["min"])
            info["max"] = hi if info["max"] is None else max(hi, info["max"])
        with open(self.path("pts"), "ab") as f:
            self.buffer.tofile(f)
        self.info["n"] = self.n + len(self.buffer) // _ROW
        self.buffer = array("d")
        self._extend_level("pts", "l1", _ROW, 2, 2, self.n)
        self._extend_level("l1", "l2", _BLK, 2, 5, self.n // BLOCK)

    def _extend_level(self, src: str, dst: str, stride: int, vmin: int, vmax: int, src_count: int) -> None:
        done = _count(self.path(dst), _BLK)
        total = src_count // BLOCK
        if total <= done:
            return
        out = array("d")
        with open(self.path(src), "rb") as f:
            for b in range(done, total):
                rows = _pread(f, b * BLOCK * stride, BLOCK * stride)
                out.extend(_extremes(rows, stride, vmin, vmax))
        with open(self.path(dst), "ab") as f:
            out.tofile(f)

    def truncate(self) -> None:
        """Drop what the files hold beyond the index (a crash between an append and the index write)."""
        n = self.n
        for ext, count in (("pts", n), ("l1", n // BLOCK), ("l2", n // BLOCK // BLOCK)):
            size = count * (_ROW if ext == "pts" else _BLK) * _F
            p = self.path(ext)
            if p.exists() and p.stat().st_size > size:
                os.truncate(p, size)

    def consistent(self) -> bool:
        return _count(self.path("pts"), _ROW) >= self.n

    # -- reading ------------------------------------------------------------------------------------------
    def downsample(self, xcol: int, width: int, xmin: float | None, xmax: float | None) -> tuple[list, list]:
        """(xs, ys) for a chart `width` pixels wide over [xmin, xmax] (whole series when None): every point
        when they fit, else the minimum and the maximum of each pixel column at their own x, and the first and
        last points."""
        n = self.n
        width = max(int(width), 16)
        with open(self.path("pts"), "rb") as pts:
            lo = 0 if xmin is None else _bisect(pts, n, xcol, xmin)
            hi = n if xmax is None else _bisect(pts, n, xcol, xmax, right=True)
            count = hi - lo
            if count <= 2 * width:
                return _raw(_pread(pts, lo * _ROW, count * _ROW), xcol)
            per_px = count / width
            # The coarsest level whose blocks are at most half a pixel column: exact extremes per column,
            # reading about 2 * width blocks whatever the size of the series.
            if per_px >= 2 * BLOCK * BLOCK and self.path("l2").exists():
                level, size = "l2", BLOCK * BLOCK
            elif per_px >= 2 * BLOCK:
                level, size = "l1", BLOCK
            else:
                level, size = "pts", 1
            xs: list[float] = []
            ys: list[float | None] = []
            b0 = -(-lo // size)  # first whole block in range
            b1 = hi // size
            if level == "pts" or b1 <= b0:
                columns = _columns(_pread(pts, lo * _ROW, count * _ROW), _ROW, xcol, 2, 2, width)
            else:
                # Edges not covered by whole blocks are read point by point.
                head = _pread(pts, lo * _ROW, (b0 * size - lo) * _ROW)
                tail = _pread(pts, b1 * size * _ROW, (hi - b1 * size) * _ROW)
                with open(self.path(level), "rb") as f:
                    blocks = _pread(f, b0 * _BLK, (b1 - b0) * _BLK)
                recs = _as_extreme_records(head, _ROW) + blocks + _as_extreme_records(tail, _ROW)
                columns = _columns(recs, _BLK, xcol, 2, 5, width)
            for x, y in columns:
                xs.append(x)
                ys.append(y)
            # The range's first and last points too, so the chart's x axis spans exactly the data asked for.
            first, last = _raw(_pread(pts, lo * _ROW, _ROW), xcol), _raw(_pread(pts, (hi - 1) * _ROW, _ROW), xcol)
            if not xs or first[0][0] < xs[0]:
                xs.insert(0, first[0][0])
                ys.insert(0, first[1][0])
            if last[0][0] > xs[-1]:
                xs.append(last[0][0])
                ys.append(last[1][0])
            return xs, ys


def _as_extreme_records(rows: array, stride: int) -> array:
    """Points as one-point blocks (min = max = the point), so edges and blocks are bucketed alike."""
    out = array("d")
    for i in range(0, len(rows), stride):
        s, t, v = rows[i], rows[i + 1], rows[i + 2]
        out.extend((s, t, v, s, t, v))
    return out


def _columns(recs: array, stride: int, xcol: int, vmin: int, vmax: int, width: int) -> Iterator[tuple]:
    """Split records into `width` equal runs and yield, per run, its min and max point in x order."""
    count = len(recs) // stride
    for c in range(width):
        a, b = count * c // width, count * (c + 1) // width
        if a >= b:
            continue
        part = recs[a * stride : b * stride]
        lows, highs = part[vmin::stride], part[vmax::stride]
        fl = _finite_only(lows)
        if not len(fl):
            yield part[xcol], None  # a gap
            continue
        lo, hi = min(fl), max(_finite_only(highs))
        i, j = lows.index(lo) * stride + vmin, highs.index(hi) * stride + vmax
        pmin = (part[i - 2 + xcol], lo)
        pmax = (part[j - 2 + xcol], hi)
        if pmin[0] == pmax[0] and lo == hi:
            yield pmin
        else:
            yield from sorted((pmin, pmax))


def _one_metric_rows(events: list[tuple]) -> array | None:
    """The frame's points as rows when every event is a point of one metric with plain numbers, else None."""
    if not events:
        return None
    first, last = events[0], events[-1]
    if first[0] != METRIC or last[0] != METRIC or last[1] != first[1]:
        return None  # mixed frames (params, several metrics) go event by event
    name = first[1]
    try:
        rows = array("d", [x for e in events if e[0] == METRIC and e[1] == name for x in (e[3], e[4], e[2])])
    except TypeError:  # a step of None, a value stored as text
        return None
    return rows if len(rows) == _ROW * len(events) else None


def _raw(rows: array, xcol: int) -> tuple[list, list]:
    xs = list(rows[xcol::_ROW])
    ys = [v if _finite(v) else None for v in rows[2::_ROW]]
    return xs, ys


def _pread(f: Any, start: int, count: int) -> array:
    """`count` float64s from float index `start` of an open file."""
    out = array("d")
    if count <= 0:
        return out
    data = os.pread(f.fileno(), count * _F, start * _F)
    out.frombytes(data[: len(data) // _F * _F])
    return out


def _bisect(f: Any, n: int, xcol: int, x: float, right: bool = False) -> int:
    """First point index whose x is >= x (> x when `right`), assuming x grows along the series."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        v = _pread(f, mid * _ROW + xcol, 1)[0]
        if v < x or (right and v == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _count(path: Path, stride: int) -> int:
    try:
        return path.stat().st_size // (stride * _F)
    except FileNotFoundError:
        return 0


class SeriesCache:
    """A run's metrics, params and tags, kept current with its journal. Thread-safe; one per run per server."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.events_path = self.run_dir / journal.EVENTS_FILE
        self.folder = cache_dir_for(self.run_dir)
        self._lock = threading.Lock()
        self.index: dict[str, Any] = {}
        self.metrics: dict[str, _Metric] = {}
        self.read_bytes = 0  # journal bytes read by the last refresh (what `benchmarks/ui.py` reports)
        self._load()

    # -- index --------------------------------------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        try:
            st = self.events_path.stat()
            with open(self.events_path, "rb") as f:
                head = f.read(_HEAD)
        except FileNotFoundError:
            return {"inode": None, "head": None, "journal_version": journal.VERSION}
        return {
            "inode": st.st_ino,
            "head": hashlib.sha256(head).hexdigest() if len(head) == _HEAD else None,
            "journal_version": journal.VERSION,
        }

    def _fresh_index(self) -> dict[str, Any]:
        return {
            "cache_version": CACHE_VERSION,
            "source": self._identity(),
            "offset": 0,
            "events": 0,
            "params": {},
            "tags": {},
            "metrics": {},
        }

    def _load(self) -> None:
        try:
            index = json.loads((self.folder / INDEX).read_text())
        except (OSError, ValueError):
            index = None
        if not self._valid(index):
            self._reset()
            return
        assert index is not None
        self.index = index
        self.metrics = {name: _Metric(self.folder, info["stem"], info) for name, info in index["metrics"].items()}
        for m in self.metrics.values():
            m.truncate()

    def _valid(self, index: dict[str, Any] | None) -> bool:
        if not isinstance(index, dict) or index.get("cache_version") != CACHE_VERSION:
            return False
        source, now = index.get("source") or {}, self._identity()
        if source.get("journal_version") != now["journal_version"] or source.get("inode") != now["inode"]:
            return False
        if source.get("head") is not None and source.get("head") != now["head"]:
            return False
        try:
            size = self.events_path.stat().st_size
        except FileNotFoundError:
            size = 0
        if int(index.get("offset", 0)) > size:
            return False
        metrics = index.get("metrics") or {}
        return all(_Metric(self.folder, info["stem"], info).consistent() for info in metrics.values())

    def _reset(self) -> None:
        for p in self.folder.iterdir():
            if p.suffix in (".pts", ".l1", ".l2") or p.name == INDEX:
                p.unlink()
        self.index = self._fresh_index()
        self.metrics = {}

    def _save(self) -> None:
        tmp = self.folder / f".{INDEX}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(self.index, default=str))
        os.replace(tmp, self.folder / INDEX)

    # -- reading the journal ------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Read the frames appended since the last refresh; returns how many events they held."""
        with self._lock, _file_lock(self.folder):
            try:  # another server sharing this cache folder may have read further: start from there
                on_disk = json.loads((self.folder / INDEX).read_text()).get("offset")
            except (OSError, ValueError):
                on_disk = None
            if on_disk != self.index.get("offset"):
                self._load()
            elif not self._valid(self.index):
                self._reset()  # the journal was replaced or shortened under a running server
            start = offset = int(self.index["offset"])
            added = 0
            pending = 0
            buffers: dict[Any, array] = {}
            params, tags = self.index["params"], self.index["tags"]
            for _seq, end, events in journal.read_frames(self.events_path, offset):
                n_events = len(events)
                rows = _one_metric_rows(events)
                if rows is not None:  # the common frame, points of one metric: about twice as fast as below
                    buf = buffers.get(events[0][1])
                    if buf is None:
                        buf = buffers[events[0][1]] = self._metric(events[0][1]).buffer
                    buf.extend(rows)
                    pending += len(events)
                    events = []
                for e in events:
                    kind = e[0]
                    if kind == METRIC:  # the hot loop: one dict lookup and one C-level extend per point
                        buf = buffers.get(e[1])
                        if buf is None:
                            buf = buffers[e[1]] = self._metric(e[1]).buffer
                        try:
                            buf.extend((e[3], e[4], e[2]))
                        except TypeError:  # a step of None, a value stored as text: converted one by one
                            del buf[len(buf) - len(buf) % _ROW :]  # extend may have taken part of the point
                            self._metric(e[1]).add(e[3], e[4], e[2])
                        pending += 1
                    elif kind == PARAMS:
                        params.update(e[1])
                    elif kind == TAGS:
                        tags.update(e[1])
                added += n_events
                offset = end
                if pending >= _FLUSH_POINTS:
                    self._commit(offset, added)
                    added = pending = 0
                    buffers.clear()  # flush gave each metric a new buffer
            self._commit(offset, added)
            self.read_bytes = offset - start
            return added

    def _metric(self, raw_name: Any) -> _Metric:
        name = raw_name if type(raw_name) is str else str(raw_name)
        m = self.metrics.get(name)
        if m is None:
            stem = f"m{len(self.metrics)}"
            self.index["metrics"][name] = {
                "stem": stem,
                "n": 0,
                "last": None,
                "min": None,
                "max": None,
                "last_step": None,
                "last_time": None,
            }
            m = self.metrics[name] = _Metric(self.folder, stem, self.index["metrics"][name])
        return m

    def _commit(self, offset: int, added: int) -> None:
        for m in self.metrics.values():
            m.flush()
        if self.index.get("source", {}).get("head") is None:
            self.index["source"] = self._identity()
        self.index["offset"] = offset
        self.index["events"] = int(self.index["events"]) + added
        self._save()

    # -- queries ------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Per metric: points, last, min, max, last step and time (as of the last refresh)."""
        return {name: {k: v for k, v in m.info.items() if k != "stem"} for name, m in self.metrics.items()}

    def series(
        self, name: str, x: str = "step", width: int = 1000, xmin: float | None = None, xmax: float | None = None
    ) -> dict[str, Any]:
        """One metric downsampled for a chart; KeyError for an unknown metric."""
        with self._lock:  # not while a refresh is appending (the point count and the block files move apart)
            m = self.metrics[name]
            xs, ys = m.downsample(0 if x == "step" else 1, width, xmin, xmax)
        if not all(_finite(v) for v in xs):  # a point without a usable step (None) cannot be placed on a chart
            kept = [(a, b) for a, b in zip(xs, ys) if _finite(a)]
            xs, ys = [a for a, _ in kept], [b for _, b in kept]
        return {"name": name, "x": xs, "y": ys, "points": m.n, "sent": len(xs)}


@contextlib.contextmanager
def _file_lock(folder: Path) -> Iterator[None]:
    """Serialises refreshes between servers sharing a cache folder (POSIX; elsewhere the thread lock only)."""
    try:
        import fcntl
    except ImportError:  # Windows: one server per store
        yield
        return
    with open(folder / "lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
