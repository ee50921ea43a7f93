"""The run journal: the local store's on-disk format and the orchestrator's durability layer.

Format version 2, one folder per run (`<dir>/<project>/<run-id>/`):

- `run.json`: run metadata, rewritten atomically whenever it changes: `format` ("tracelet-run"),
  `version` (2; a version-1 folder differs only in `events.bin`'s framing), `run_id`, `name`, `project`,
  `created_at`/`ended_at` (ISO 8601), `status`
  (RUNNING, FINISHED, FAILED, KILLED), `tags`, `metadata`, `backend_runs` (each backend's run id and
  details once started), `progress` (while running, every few seconds: backend -> events it has taken, a
  lower bound that `tracelet sync` resumes a dead run from, with `failed_artifacts`: backend -> tokens of the
  artifact events it failed to take, dropped at stop), and at stop `events` (the count) and
  `delivery` (per backend: delivered, undelivered, dropped, errors, and `failed_artifacts`: the tokens of
  the artifact events it failed to take for a transient reason, which `tracelet sync RUN` delivers later).
- `events.bin`: append-only frames. A version-2 frame is a 12-byte header, then the payload:

      magic  b"TLJ\xf2"  4 bytes  finds the next frame after a damaged one
      crc    uint32 LE    4 bytes  zlib.crc32 of the length field and the payload
      length uint32 LE    4 bytes  the payload's size in bytes

  The payload is a pickle (protocol 5) of `(first_seq, [event, ...])` holding only tuples, lists, dicts,
  str, int, float, bool and None. Events are tuples whose first element is the kind:
  `("m", name, value, step, timestamp)`, `("p", {params}, timestamp)`, `("t", {tags}, timestamp)`,
  `("a", {artifact}, timestamp)`, `("s", {name: value}, step or None, timestamp)` (single values,
  `Experiment.log_summary`; a None step means the highest metric step before it); event `i` of a frame has
  sequence number `first_seq + i`, and sequence numbers only grow through the file. Timestamps are seconds
  since the epoch; NaN and ±inf metric values are stored as such. A kind letter a reader does not know is
  passed through, not treated as damage.
  Version 1 (still read, and still appended to when a run's file began in it) has no magic and no crc: a
  frame is the 4-byte length, then the payload. A version-1 file never begins with the magic: read as a
  length, it says almost 4 GiB.
  Pickle rather than JSON: encoding runs beside the training thread and holds the GIL, and pickling costs
  about a twentieth of JSON's float formatting; the crc costs a few percent more (benchmarks/logging_overhead.py).
- `artifacts/`: artifacts logged by the run (`artifacts_root()`):
  `artifacts/.staging/<token>/` holds the snapshots `log_artifact` takes (an `"a"` event's payload points
  there: `files/`, `objects/`, `backends/<name>/`); once every target took an artifact that the local store
  holds, the snapshot is removed and `artifacts/.staging/<token>.stored` (JSON: name, version) points at the
  stored version instead (`tracelet.core.artifacts.manager`); with the `local` backend, `artifacts/<name>/v<N>/` are
  the stored versions in the layout of `tracelet.core.artifacts.manifest` (written by
  `tracelet.core.artifacts.folder`), and `artifacts/<name>/latest` names the newest one.

Reading (`JournalReader`, `read_events`) never fails on what a file holds, and never runs code:

- A frame whose crc does not match, whose header is not where a frame should start, or whose length runs
  past the end of the file with more frames after it, is damage: the reader scans forward for the next
  magic whose frame checks out and goes on from there. Nothing is ever allocated from a length before it
  is checked against the file's size.
- A frame that checks out but holds anything else than the shapes above (a class, a malformed event: a
  pickle someone appended) is refused: it is skipped whole. The unpickler refuses every class, so a journal
  can never run code.
- A frame repeating sequence numbers already read (a duplicated or moved frame) is skipped.
- What was skipped is kept as `Damage` (byte offset, bytes, reason, and the events lost: the gap in
  sequence numbers to the next good frame), logged once per process as a warning, and available on the
  reader (`JournalReader.damage`), on `tracelet.store.LocalRun.damage()`, in `tracelet sync`'s report and
  from `tracelet verify`. A last frame cut short (the process died mid-write, or the writer is writing it
  now) is not damage: it is ignored and kept as `JournalReader.torn`.
- `tracelet verify --repair` writes the good frames, sequence numbers unchanged, to a clean `events.bin`
  and keeps the damaged original beside it (`events.bin.damaged-<time>`); a gap in sequence numbers
  alone is then no damage any more (the events are known lost; backends' cursors stay valid).

`tracelet.store` reads runs back; `tracelet show RUN` prints one; `tracelet verify RUN` checks one.
"""

from __future__ import annotations

import bisect
import builtins
import io
import json
import logging
import os
import pickle
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("tracelet")

FORMAT = "tracelet-run"
VERSION = 2
EVENTS_FILE = "events.bin"
META_FILE = "run.json"
ARTIFACTS_DIR = "artifacts"
STAGING_DIR = ".staging"
FRAME_EVENTS = 2000  # bounds how long one encode holds the GIL
MAGIC = b"TLJ\xf2"
_LENGTH = struct.Struct("<I")
_HEAD = struct.Struct("<4sII")  # magic, crc32(length field + payload), length
HEAD_SIZE = _HEAD.size
_SCAN = 1 << 20  # bytes read at a time when looking for the next frame after damage
_ARITY = {"m": 5, "p": 3, "t": 3, "a": 3, "s": 4}  # the known kinds' tuple lengths; unknown kinds pass as they are
_MAPPING_KINDS = ("p", "t", "a", "s")
_NUMBER = (float, int, bool)
_STEP = (int, type(None))


_PLAIN = {str, int, float, bool, type(None), bytes, dict, list, tuple}


class _Pickler(pickle.Pickler):
    """Stores foreign scalars (numpy, str subclasses, ...) as plain str/int/float, so readers need no classes."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) in _PLAIN or isinstance(obj, type):  # classes: the builtins named in reductions below
            return NotImplemented
        if isinstance(obj, dict):
            return dict, (dict(obj),)
        if isinstance(obj, (list, tuple)):
            return (tuple if isinstance(obj, tuple) else list), (list(obj),)
        if isinstance(obj, str):
            return str, (str(obj),)
        if hasattr(obj, "__index__"):
            return int, (obj.__index__(),)
        if hasattr(obj, "__float__"):
            return float, (float(obj),)
        return str, (str(obj),)


_ALLOWED = {"str", "int", "float", "dict", "list", "tuple"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _ALLOWED:
            return getattr(builtins, name)
        raise pickle.UnpicklingError(f"journal frames hold no {module}.{name}")


def _pickle(first_seq: int, events: list[tuple[Any, ...]], head: int) -> memoryview:
    buf = io.BytesIO()
    buf.write(bytes(head))
    _Pickler(buf, 5).dump((first_seq, events))
    return buf.getbuffer()


def encode_frame(first_seq: int, events: list[tuple[Any, ...]]) -> bytes:
    """One version-2 frame (header and payload) holding `events`, the first with sequence number `first_seq`."""
    data = _pickle(first_seq, events, HEAD_SIZE)
    _LENGTH.pack_into(data, 8, len(data) - HEAD_SIZE)
    _HEAD.pack_into(data, 0, MAGIC, zlib.crc32(data[8:]), len(data) - HEAD_SIZE)
    return bytes(data)


def encode_frame_v1(first_seq: int, events: list[tuple[Any, ...]]) -> bytes:
    """One version-1 frame: only for appending to a journal that began in version 1."""
    data = _pickle(first_seq, events, 4)
    _LENGTH.pack_into(data, 0, len(data) - 4)
    return bytes(data)


def file_version(path: str | os.PathLike[str]) -> int:
    """2 or 1 by the file's first bytes; 0 for an empty or missing file."""
    try:
        with open(path, "rb") as f:
            return _version(f, os.fstat(f.fileno()).st_size)
    except OSError:
        return 0


def _version(f: Any, size: int) -> int:
    f.seek(0)
    head = f.read(6)
    if not head:
        return 0
    if head[:4] == MAGIC:
        return 2
    if len(head) == 6 and head[4:6] == b"\x80\x05":  # a version-1 length, then a protocol-5 pickle
        (length,) = _LENGTH.unpack(head[:4])
        if length <= size - 4:
            f.seek(4)
            try:
                _decode(f.read(length))
                return 1
            except _Refused:
                pass
    # The first frame is damaged: version 2 if a sound version-2 frame follows anywhere.
    pos = 0
    while (pos := JournalReader._next_magic(f, pos + 1, size)) < size:
        f.seek(pos)
        magic, crc, length = _HEAD.unpack(f.read(HEAD_SIZE).ljust(HEAD_SIZE, b"\0"))
        if length <= size - pos - HEAD_SIZE and zlib.crc32(f.read(length), zlib.crc32(_LENGTH.pack(length))) == crc:
            return 2
    return 1


class JournalWriter:
    """Appends event chunks and keeps an index of where each chunk starts (for catching up by sequence)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / EVENTS_FILE
        # A file begun by a version-1 writer keeps its framing: one file, one format.
        self._encode = encode_frame_v1 if file_version(self.path) == 1 else encode_frame
        self._file = open(self.path, "ab", buffering=0)  # every write goes straight to the OS
        self._offset = self._file.tell()
        self.index_seqs: list[int] = []
        self.index_offsets: list[int] = []
        self.closed = False

    def append(self, first_seq: int, events: list[tuple[Any, ...]]) -> None:
        frames, seqs, offsets = [], [], []
        offset = self._offset
        encode = self._encode
        for start in range(0, len(events), FRAME_EVENTS):
            frame = encode(first_seq + start, events[start : start + FRAME_EVENTS])
            seqs.append(first_seq + start)
            offsets.append(offset)
            offset += len(frame)
            frames.append(frame)
        self._file.write(b"".join(frames))
        # Indexed only once written, so a catching-up reader never looks for a frame that is not there.
        self.index_seqs.extend(seqs)
        self.index_offsets.extend(offsets)
        self._offset = offset

    def sync(self) -> None:
        if not self.closed:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Sync and close; idempotent. `closed` is also set when writing failed, and then only the file closes."""
        try:
            self.sync()
        finally:
            self.closed = True
            self._file.close()

    def offset_for(self, seq: int) -> int:
        """Byte offset of the frame that holds event `seq`."""
        i = bisect.bisect_right(self.index_seqs, seq) - 1
        return self.index_offsets[max(i, 0)] if self.index_offsets else 0

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_meta(self.run_dir, meta)


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Replace run.json atomically, so a reader never sees half of it."""
    tmp = run_dir / f".{META_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "version": VERSION, **meta}, indent=2, default=str))
    os.replace(tmp, run_dir / META_FILE)


def artifacts_root(run_dir: str | os.PathLike[str]) -> Path:
    """The run's artifact folder; absolute, so paths handed out stay valid if the script changes directory."""
    return Path(os.path.abspath(run_dir)) / ARTIFACTS_DIR


def staging_root(run_dir: str | os.PathLike[str]) -> Path:
    """Where `log_artifact` keeps the run's snapshots until every backend has them."""
    return artifacts_root(run_dir) / STAGING_DIR


def read_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """run.json as written. Raises OSError or ValueError (json.JSONDecodeError) for a missing or damaged one,
    and ValueError for one that holds no JSON object; `tracelet.store.LocalRun` lists such a run as damaged."""
    meta = json.loads((Path(run_dir) / META_FILE).read_text())
    if not isinstance(meta, dict):
        raise ValueError(f"{Path(run_dir) / META_FILE} holds no JSON object")
    return meta


@dataclass
class Damage:
    """A stretch of a journal that was skipped.

    :param offset: byte offset where the skipped stretch begins.
    :param size: bytes skipped.
    :param reason: what was wrong at `offset` (the first thing found wrong there).
    :param first_seq: sequence number of the first event lost (None when unknown).
    :param events_lost: events lost with it: the gap in sequence numbers to the next good frame (0 for a
        frame repeating events already read; None when nothing good follows, then only run.json's count
        can tell).
    """

    offset: int
    size: int
    reason: str
    first_seq: int | None = None
    events_lost: int | None = None

    def describe(self) -> str:
        if self.events_lost is None:
            lost = "events lost: unknown (nothing readable follows)"
        elif self.events_lost == 0:
            lost = "no events lost"
        else:
            last = (self.first_seq or 0) + self.events_lost - 1
            lost = f"{self.events_lost:,} events lost (#{self.first_seq:,}..#{last:,})"
        return f"byte {self.offset:,} ({self.size:,} bytes): {self.reason}; {lost}"


_warned: set[tuple[str, int, int]] = set()
_warned_lock = threading.Lock()


def _warn_once(path: Path, damage: Damage) -> None:
    key = (os.path.abspath(path), damage.offset, damage.size)
    with _warned_lock:
        if key in _warned or len(_warned) > 10_000:
            return
        _warned.add(key)
    logger.warning(
        "tracelet: journal %s is damaged at %s; skipped, reading goes on after it (`tracelet verify %s` "
        "checks the run, `--repair` writes a clean copy)",
        path,
        damage.describe(),
        path.parent,
    )


class _Refused(Exception):
    """A frame that checks out but holds something a journal never does."""


def _decode(payload: bytes) -> tuple[int, list[tuple]]:
    try:
        value = _Unpickler(io.BytesIO(payload)).load()
    except Exception as exc:  # any failure of a foreign pickle (RecursionError, MemoryError-free: bounded)
        raise _Refused(f"{type(exc).__name__}: {exc}") from None
    if not (isinstance(value, tuple) and len(value) == 2 and type(value[0]) is int and value[0] >= 0):
        raise _Refused("not a (first_seq, events) pair")
    first, events = value
    if type(events) is not list:
        raise _Refused("events are not a list")
    for e in events:
        if type(e) is not tuple or not e or type(e[0]) is not str:
            raise _Refused("an event is not a tuple starting with its kind")
        kind = e[0]
        arity = _ARITY.get(kind)
        if arity is not None and (
            len(e) != arity
            or (kind in _MAPPING_KINDS and type(e[1]) is not dict)
            or (kind == "m" and (type(e[2]) not in _NUMBER or type(e[3]) not in _STEP or type(e[4]) not in _NUMBER))
        ):
            raise _Refused(f"a malformed {kind!r} event")
    return first, events


class JournalReader:
    """Reads one journal (`events.bin`), skipping what is damaged and keeping account of it.

    `damage` lists the stretches skipped (`Damage`), `torn` a last frame cut short, `end_seq` the sequence
    number after the last event read, `events_read` how many were. A reader may be iterated more than once
    (`events()`); each pass starts its account afresh.

    :param path: the `events.bin` file.
    :param warn: log each damage once per process as a warning (readers that report it themselves, such as
        `tracelet verify`, pass False).
    """

    def __init__(self, path: str | os.PathLike[str], *, warn: bool = True) -> None:
        self.path = Path(path)
        self.warn = warn
        self.damage: list[Damage] = []
        self.torn: Damage | None = None
        self.version = 0
        self.end_seq = 0
        self.events_read = 0
        self.frames_read = 0

    def __iter__(self) -> Iterator[tuple[int, tuple]]:
        return self.events()

    @property
    def events_lost(self) -> int:
        """Events known lost in the damage found (those behind a damaged end are unknown)."""
        return sum(d.events_lost or 0 for d in self.damage)

    def events(self, start_seq: int = 0, offset: int = 0) -> Iterator[tuple[int, tuple]]:
        """Yield (seq, event) from `start_seq` on, reading from byte `offset` (a frame start at or before it)."""
        for seq, _end, events in self.frames(offset):
            for event in events:
                if seq >= start_seq:
                    self.events_read += 1
                    yield seq, event
                seq += 1

    def frames(self, offset: int = 0) -> Iterator[tuple[int, int, list[tuple]]]:
        """Yield (first_seq, end_offset, events) per good frame from byte `offset` (a frame start) on."""
        self.damage, self.torn, self.events_read, self.frames_read = [], None, 0, 0
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.version = _version(f, size)
            frames = self._frames_v2(f, size, offset) if self.version == 2 else self._frames_v1(f, size, offset)
            for first, end, events in frames:
                self.frames_read += 1
                self.end_seq = first + len(events)
                yield first, end, events

    def _add(self, damage: Damage) -> None:
        self.damage.append(damage)
        if self.warn:
            _warn_once(self.path, damage)

    def _frames_v2(self, f: Any, size: int, pos: int) -> Iterator[tuple[int, int, list[tuple]]]:
        expected: int | None = 0 if pos == 0 else None  # the next sequence number a good frame should hold
        bad: Damage | None = None  # the open stretch of damage, closed by the next good frame
        while pos < size:
            f.seek(pos)
            head = f.read(HEAD_SIZE)
            reason = None
            if len(head) < HEAD_SIZE:
                if bad is None and head == MAGIC[: len(head)]:
                    self.torn = Damage(pos, size - pos, "cut short inside a frame header")
                    return
                reason = "bytes that are no frame"
            else:
                magic, crc, length = _HEAD.unpack(head)
                if magic != MAGIC:
                    reason = "no frame header where a frame should start"
                elif length > size - pos - HEAD_SIZE:
                    if bad is None and self._next_magic(f, pos + 1, size) >= size:
                        self.torn = Damage(pos, size - pos, "last frame cut short")  # died mid-write
                        return
                    reason = f"a frame length ({length:,} bytes) past the end of the file"
                else:
                    payload = f.read(length)
                    if zlib.crc32(payload, zlib.crc32(head[8:])) != crc:
                        reason = "checksum mismatch"
                    else:
                        try:
                            first, events = _decode(payload)
                        except _Refused as exc:
                            reason = f"frame refused ({exc})"
                            if bad is None:
                                bad = Damage(pos, 0, reason, expected)
                            pos += HEAD_SIZE + length  # intact, so skipped whole: no need to scan inside it
                            bad.size = pos - bad.offset
                            continue
                        if expected is not None and first < expected:
                            if first + len(events) <= expected:
                                self._add(
                                    Damage(
                                        pos,
                                        HEAD_SIZE + length,
                                        f"frame repeats events #{first:,}..#{first + len(events) - 1:,} already read",
                                        first,
                                        0,
                                    )
                                )
                                pos += HEAD_SIZE + length
                                continue
                            events = events[expected - first :]  # overlaps: only the new ones
                            first = expected
                        if bad is not None:
                            bad.size = pos - bad.offset
                            if expected is not None:
                                bad.first_seq, bad.events_lost = expected, first - expected
                            self._add(bad)
                            bad = None
                        pos += HEAD_SIZE + length
                        expected = first + len(events)
                        yield first, pos, events
                        continue
            if bad is None:
                bad = Damage(pos, 0, reason, expected)
            pos = self._next_magic(f, pos + 1, size)
            bad.size = pos - bad.offset
        if bad is not None:
            self._add(bad)

    @staticmethod
    def _next_magic(f: Any, pos: int, size: int) -> int:
        """Offset of the next MAGIC at or after `pos` (or `size`), read a bounded chunk at a time."""
        while pos < size:
            f.seek(pos)
            chunk = f.read(_SCAN + len(MAGIC) - 1)
            i = chunk.find(MAGIC)
            if i >= 0:
                return pos + i
            if len(chunk) < len(MAGIC):
                return size
            pos += len(chunk) - len(MAGIC) + 1
        return size

    def _frames_v1(self, f: Any, size: int, pos: int) -> Iterator[tuple[int, int, list[tuple]]]:
        """Version 1 has no checksum and no frame marker: a frame that does not decode is skipped by its
        length while the lengths stay inside the file; past a damaged length nothing more can be found."""
        expected: int | None = 0 if pos == 0 else None
        bad: Damage | None = None
        while pos < size:
            f.seek(pos)
            head = f.read(4)
            (length,) = _LENGTH.unpack(head) if len(head) == 4 else (size,)
            if length > size - pos - 4:
                if bad is None:
                    self.torn = Damage(pos, size - pos, "last frame cut short")
                    return
                bad.reason += (
                    "; then a length past the end of the file (version 1 has no frame markers to "
                    "find the next frame by)"
                )
                break
            try:
                first, events = _decode(f.read(length))
            except _Refused as exc:
                if bad is None:
                    bad = Damage(pos, 0, f"frame refused ({exc})", expected)
                pos += 4 + length
                bad.size = pos - bad.offset
                continue
            if expected is not None and first < expected:
                if first + len(events) <= expected:
                    self._add(Damage(pos, 4 + length, "frame repeats events already read", first, 0))
                    pos += 4 + length
                    continue
                events, first = events[expected - first :], expected
            if bad is not None:
                if expected is not None:
                    bad.first_seq, bad.events_lost = expected, first - expected
                self._add(bad)
                bad = None
            pos += 4 + length
            expected = first + len(events)
            yield first, pos, events
        if bad is not None:
            bad.size = size - bad.offset
            self._add(bad)


def read_events(path: str | os.PathLike[str], start_seq: int = 0, offset: int = 0) -> Iterator[tuple[int, tuple]]:
    """Yield (seq, event) from `start_seq` on, reading from byte `offset` (a frame start at or before it).

    Damaged and refused frames are skipped with a warning (`JournalReader` keeps the account)."""
    return JournalReader(path).events(start_seq, offset)


def read_frames(path: str | os.PathLike[str], offset: int = 0) -> Iterator[tuple[int, int, list[tuple]]]:
    """Yield (first_seq, end_offset, events) per good frame from byte `offset` (a frame start) on.

    `end_offset` is where the next frame starts: a reader that keeps it reads only what was appended since
    (the UI's series cache follows a live run this way). Damaged frames are skipped as by `read_events`; a
    torn tail ends the iteration."""
    return JournalReader(path).frames(offset)
