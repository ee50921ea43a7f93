"""The run journal: the local store's on-disk format and the orchestrator's durability layer.

Format version 1, one folder per run (`<dir>/<project>/<run-id>/`):

- `run.json`: run metadata, rewritten atomically whenever it changes: `format` ("tracelet-run"),
  `version` (1), `run_id`, `name`, `project`, `created_at`/`ended_at` (ISO 8601), `status`
  (RUNNING, FINISHED, FAILED, KILLED), `tags`, `metadata`, and at stop `events` (the count) and
  `backends` (per backend: delivered, undelivered, errors).
- `events.jsonl`: append-only; one JSON object per line, `{"s": <seq of the first event>, "e": [<event>, ...]}`.
  Events are arrays whose first element is the kind:
  `["m", name, value, step, timestamp]`, `["p", {params}, timestamp]`, `["t", {tags}, timestamp]`,
  `["a", {artifact}, timestamp]`. Timestamps are seconds since the epoch. Non-finite metric values are
  written as the literals `NaN`, `Infinity` and `-Infinity` (Python's `json` reads them back).
  A torn last line (the process died mid-write) is ignored on reading.
- `artifacts/`: the local store's artifact versions (see `tracelet.backends.local`).
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMAT = "tracelet-run"
VERSION = 1
EVENTS_FILE = "events.jsonl"
META_FILE = "run.json"

_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


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
        line = (_encode({"s": first_seq, "e": events}) + "\n").encode()
        self._file.write(line)
        self.index_seqs.append(first_seq)
        self.index_offsets.append(self._offset)
        self._offset += len(line)

    def sync(self) -> None:
        if not self.closed:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self.closed:
            self.sync()
            self._file.close()
            self.closed = True

    def offset_for(self, seq: int) -> int:
        """Byte offset of the line that holds event `seq`."""
        i = bisect.bisect_right(self.index_seqs, seq) - 1
        return self.index_offsets[max(i, 0)] if self.index_offsets else 0

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_meta(self.run_dir, meta)


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Replace run.json atomically, so a reader never sees half of it."""
    tmp = run_dir / f".{META_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "version": VERSION, **meta}, indent=2, default=str))
    os.replace(tmp, run_dir / META_FILE)


def read_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads((Path(run_dir) / META_FILE).read_text())


def read_events(path: str | os.PathLike[str], start_seq: int = 0, offset: int = 0) -> Iterator[tuple[int, tuple]]:
    """Yield (seq, event) from `start_seq` on, reading from byte `offset` (a line start at or before it)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        for raw in f:
            if not raw.endswith(b"\n"):
                return  # torn tail: the writer died mid-line, or is writing it now
            chunk = json.loads(raw)
            seq = chunk["s"]
            for event in chunk["e"]:
                if seq >= start_seq:
                    yield seq, tuple(event)
                seq += 1
