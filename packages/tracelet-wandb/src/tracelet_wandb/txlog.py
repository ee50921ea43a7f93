"""Read a W&B run's transaction log (the `run-<id>.wandb` file of a run folder) back, record by record.

W&B writes every record of a run (run, config, history, summary, artifact, exit, ...) to this file before
anything is uploaded; an offline run consists of nothing else, and `wandb sync` uploads from it. Reading it is
how Tracelet's tests check what W&B received without a server, and how a user can check an offline run.

Framing (LevelDB's log format with a W&B header):

    file header   7 bytes: b":W&B", magic 0xBEE1 (little-endian uint16), version 0 (uint8)
    blocks        32 KiB each (the header counts towards the first); a record header never straddles blocks:
                  fewer than 7 bytes left in a block are zero padding
    record        7-byte header: CRC-32 (uint32 LE) of the type byte followed by the payload, payload length
                  (uint16 LE), type (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST); then the payload
    message       a protobuf `wandb.proto.wandb_internal_pb2.Record`, whole in a FULL record or split over
                  FIRST, MIDDLE..., LAST

Guarantees: a torn tail (the writer still running or killed mid-record) ends the iteration quietly; a record
whose checksum does not match raises `TransactionLogError`, as does a file that is not a W&B transaction log.
Importing this module does not import wandb; `records()` does (for the protobuf classes).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK_SIZE = 32 * 1024
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class TransactionLogError(ValueError):
    """The file is not a readable W&B transaction log."""


def payloads(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The serialized `Record` messages of a transaction log, in write order."""
    data = Path(path).read_bytes()
    if data[: len(HEADER)] != HEADER:
        raise TransactionLogError(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    yield from _Framing(path).scan(data, len(HEADER), 0)


class _Framing:
    """Joins the records of one log into messages, checking each record's checksum and type.

    Fed the log's bytes in order, in one chunk (the whole file) or several (a block at a time): a message split
    over FIRST, MIDDLE..., LAST records may span chunks. `resync`: the first chunk starts on a block boundary
    inside the file, so fragments of a message begun before it are skipped instead of being an error.
    """

    def __init__(self, path: Any, resync: bool = False) -> None:
        self.path = path
        self.resync = resync
        self.pending: bytearray | None = None  # the message a FIRST record began
        self.torn = False  # a record runs past the bytes given: the writer is still writing, or was killed

    def scan(self, data: bytes, pos: int, base: int) -> Iterator[bytes]:
        """The messages completed in `data` from `pos`; `data` starts at file offset `base` (block alignment
        counts from the file's start)."""
        while True:
            left = BLOCK_SIZE - (base + pos) % BLOCK_SIZE
            if left < RECORD_HEADER:  # the block's zero-padded tail
                pos += left
                continue
            if pos + RECORD_HEADER > len(data):
                return
            crc, length, kind = struct.unpack_from("<IHB", data, pos)
            if kind == 0 and length == 0:  # zeroed space: padding to the block end, or not yet written
                pos += left
                if pos >= len(data):
                    return
                continue
            start = pos + RECORD_HEADER
            if start + length > len(data) or length > left - RECORD_HEADER:
                self.torn = True
                return
            payload = data[start : start + length]
            if zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
                raise TransactionLogError(f"{self.path}: checksum mismatch in the record at byte {base + pos}")
            pos = start + length
            if kind == FULL:
                yield payload
            elif kind == FIRST:
                self.pending = bytearray(payload)
            elif kind in (MIDDLE, LAST) and self.pending is not None:
                self.pending += payload
                if kind == LAST:
                    yield bytes(self.pending)
                    self.pending = None
            elif not (self.resync and kind in (MIDDLE, LAST)):
                raise TransactionLogError(
                    f"{self.path}: unexpected record type {kind} at byte {base + pos - length - RECORD_HEADER}"
                )


def stream(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The serialized `Record` messages of a transaction log, read one 32 KiB block at a time (a record
    header never straddles blocks), so memory stays at one block and one message however big the log is.
    Same checks as `payloads`."""
    with open(path, "rb") as f:
        head = f.read(len(HEADER))
        if head != HEADER:
            raise TransactionLogError(f"{path}: not a W&B transaction log (header {head!r})")
        framing = _Framing(path)
        offset = len(HEADER)
        while True:
            want = BLOCK_SIZE - offset % BLOCK_SIZE
            block = f.read(want)
            yield from framing.scan(block, 0, offset)
            if framing.torn or len(block) < want:
                return  # a torn tail, or the end of the file
            offset += len(block)


def _tail_records(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The `Record` messages of the log's last two blocks (one parsed object, refilled for each)."""
    from wandb.proto import wandb_internal_pb2

    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        base = max(0, (size // BLOCK_SIZE - 1) * BLOCK_SIZE)
        f.seek(base)
        data = f.read()
    pos = len(HEADER) if base == 0 else 0
    # wandb_internal_pb2 star-imports the module of the installed protobuf's version: mypy cannot follow it.
    record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
    for payload in _Framing(path, resync=True).scan(data, pos, base):
        record.ParseFromString(payload)
        yield record


def exit_record(path: str | os.PathLike[str]) -> Any:
    """The run's `exit` record (`RunExitRecord`: exit_code, runtime), looked for in the last two blocks like
    `has_exit`; None when the run has not finished (still running, or killed)."""
    found = None
    for record in _tail_records(path):
        if record.WhichOneof("record_type") == "exit":
            found = record.exit
    return found


def has_exit(path: str | os.PathLike[str]) -> bool:
    """Whether the run's `exit` record is written, looked for in the log's last two blocks only. W&B writes
    the exit record last, so when it is there every record before it is too."""
    return any(record.WhichOneof("record_type") == "exit" for record in _tail_records(path))


def records(path: str | os.PathLike[str], streamed: bool = False) -> Iterator[Any]:
    """Every `Record` message of a transaction log (protobuf objects; `record.WhichOneof("record_type")` says
    which kind: "run", "config", "history", "summary", "metric", "artifact", "exit", ...). `streamed`: read
    block by block (`stream`) instead of the whole file at once."""
    from wandb.proto import wandb_internal_pb2

    for payload in stream(path) if streamed else payloads(path):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # see _tail_records
        record.ParseFromString(payload)
        yield record


def item_key(item: Any) -> str:
    """The key of a history/summary/config item (`key`, or `nested_key` parts joined with '.')."""
    return item.key or ".".join(item.nested_key)


def history(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The run's history rows (one per `run.log` call), each as {key: value}, values decoded from JSON."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item_key(i): json.loads(i.value_json) for i in record.history.item})
    return rows


def find_run_file(run_folder: str | os.PathLike[str]) -> Path:
    """The transaction log inside a W&B run folder (`.../wandb/offline-run-<time>-<id>`)."""
    found = sorted(Path(run_folder).glob("run-*.wandb"))
    if not found:
        raise TransactionLogError(f"{run_folder}: no run-*.wandb file")
    return found[0]
