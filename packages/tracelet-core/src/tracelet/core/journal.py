"""The run journal: the local store's on-disk format and the orchestrator's durability layer.

Format version 1, one folder per run (`<dir>/<project>/<run-id>/`):

- `run.json`: run metadata, rewritten atomically whenever it changes: `format` ("tracelet-run"),
  `version` (1), `run_id`, `name`, `project`, `created_at`/`ended_at` (ISO 8601), `status`
  (RUNNING, FINISHED, FAILED, KILLED), `tags`, `metadata`, `backend_runs` (each backend's run id and
  details once started), `progress` (while running, every few seconds: backend -> events it has taken, a
  lower bound that `tracelet sync` resumes a dead run from, with `failed_artifacts`: backend -> tokens of the
  artifact events it failed to take, dropped at stop), and at stop `events` (the count) and
  `delivery` (per backend: delivered, undelivered, dropped, errors, and `failed_artifacts`: the tokens of
  the artifact events it failed to take for a transient reason, which `tracelet sync RUN` delivers later).
- `events.bin`: append-only frames. A frame is a 4-byte little-endian payload length, then the payload: a
  pickle (protocol 5) of `(first_seq, [event, ...])` holding only tuples, lists, dicts, str, int, float, bool
  and None. Events are tuples whose first element is the kind:
  `("m", name, value, step, timestamp)`, `("p", {params}, timestamp)`, `("t", {tags}, timestamp)`,
  `("a", {artifact}, timestamp)`, `("s", {name: value}, step or None, timestamp)` (single values,
  `Experiment.log_summary`; a None step means the highest metric step before it); event `i` of a frame has sequence number `first_seq + i`. Timestamps are
  seconds since the epoch; NaN and ±inf metric values are stored as such.
  Pickle rather than JSON: encoding runs beside the training thread and holds the GIL, and pickling costs
  about a twentieth of JSON's float formatting. Reading uses an unpickler that refuses every class, so a
  journal can never run code. A torn last frame (the process died mid-write) is ignored on reading.
- `artifacts/`: artifacts logged by the run (`artifacts_root()`):
  `artifacts/.staging/<token>/` holds the snapshots `log_artifact` takes (an `"a"` event's payload points
  there: `files/`, `objects/`, `backends/<name>/`); with the `local` backend, `artifacts/<name>/v<N>/` are
  the stored versions in the layout of `tracelet.core.artifacts.manifest` (written by
  `tracelet.core.artifacts.folder`), and `artifacts/<name>/latest` names the newest one.

`tracelet.store` reads runs back; `tracelet show RUN` prints one.
"""

from __future__ import annotations

import bisect
import builtins
import io
import json
import os
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMAT = "tracelet-run"
VERSION = 1
EVENTS_FILE = "events.bin"
META_FILE = "run.json"
ARTIFACTS_DIR = "artifacts"
STAGING_DIR = ".staging"
FRAME_EVENTS = 2000  # bounds how long one encode holds the GIL
_LENGTH = struct.Struct("<I")


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


def encode_frame(first_seq: int, events: list[tuple[Any, ...]]) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\0\0\0\0")
    _Pickler(buf, 5).dump((first_seq, events))
    data = buf.getbuffer()
    _LENGTH.pack_into(data, 0, len(data) - 4)
    return bytes(data)


class JournalWriter:
    """Appends event chunks and keeps an index of where each chunk starts (for catching up by sequence)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / EVENTS_FILE
        self._file = open(self.path, "ab", buffering=0)  # every write goes straight to the OS
        self._offset = self._file.tell()
        self.index_seqs: list[int] = []
        self.index_offsets: list[int] = []
        self.closed = False

    def append(self, first_seq: int, events: list[tuple[Any, ...]]) -> None:
        frames, seqs, offsets = [], [], []
        offset = self._offset
        for start in range(0, len(events), FRAME_EVENTS):
            frame = encode_frame(first_seq + start, events[start : start + FRAME_EVENTS])
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
    return json.loads((Path(run_dir) / META_FILE).read_text())


def read_events(path: str | os.PathLike[str], start_seq: int = 0, offset: int = 0) -> Iterator[tuple[int, tuple]]:
    """Yield (seq, event) from `start_seq` on, reading from byte `offset` (a frame start at or before it)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        while True:
            head = f.read(4)
            if len(head) < 4:
                return
            (size,) = _LENGTH.unpack(head)
            payload = f.read(size)
            if len(payload) < size:
                return  # torn tail: the writer died mid-frame, or is writing it now
            seq, events = _Unpickler(io.BytesIO(payload)).load()
            for event in events:
                if seq >= start_seq:
                    yield seq, event
                seq += 1
