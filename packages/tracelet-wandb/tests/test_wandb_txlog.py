"""The transaction-log reader on real `.wandb` files: records split over blocks, a torn tail, corruption."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tracelet
import tracelet_wandb
from tracelet_testsupport.wandb import read_run
from tracelet_wandb import txlog


def _big_run() -> Path:
    exp = tracelet.start_logging("big", project="p", backend="wandb", config={"track_system": False})
    exp.log_params({"long": "x" * 100_000})  # one record longer than a 32 KiB block: FIRST, MIDDLE..., LAST
    for i in range(3000):
        exp.log_metric("loss", float(i), i)
    report = exp.stop()
    return Path(report.backends["wandb"].details["transaction_log"])


def _frame_types(data: bytes) -> set[int]:
    """Record types in the file, walked by the framing rules alone."""
    import struct

    types, pos = set(), len(txlog.HEADER)
    while pos + 7 <= len(data):
        left = txlog.BLOCK_SIZE - pos % txlog.BLOCK_SIZE
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0:
            pos += left
            continue
        types.add(kind)
        pos += 7 + length
    return types


def test_reads_split_records_and_stops_quietly_at_a_torn_tail(tmp_path: Path) -> None:
    """Whole-file and block-by-block reading (`payloads`, `stream`) decode the same messages, torn or not."""
    path = _big_run()
    data = path.read_bytes()
    assert data[:7] == b":W&B\xe1\xbe\x00" and len(data) > 3 * txlog.BLOCK_SIZE
    assert {txlog.FULL, txlog.FIRST, txlog.MIDDLE, txlog.LAST} <= _frame_types(data)
    run = read_run(path)
    assert run.config["long"] == "x" * 100_000
    assert run.points("loss") == [(i, float(i)) for i in range(3000)] and run.exit_code == 0

    torn = tmp_path / "torn.wandb"
    torn.write_bytes(data[: len(data) - 100])  # a writer killed mid-record
    kinds = [r.WhichOneof("record_type") for r in txlog.records(torn)]
    assert 0 < len(kinds) < len(run.kinds) and "exit" not in kinds
    # A cut inside a message split over blocks: the messages before it, then a quiet end.
    split = tmp_path / "split.wandb"
    split.write_bytes(data[: 2 * txlog.BLOCK_SIZE + 5])
    for log in (path, torn, split):
        whole = list(txlog.payloads(log))
        assert whole and list(txlog.stream(log)) == whole, log


def test_stop_returns_with_the_exit_record_written_and_has_exit_reads_the_tail(tmp_path: Path) -> None:
    path = _big_run()  # stop() waits for W&B's service to write the log's end (W&B's finish() may not)
    assert txlog.has_exit(path)
    data = path.read_bytes()
    records = list(txlog.records(path))
    assert records[-1].WhichOneof("record_type") == "exit"
    exit_size = records[-1].ByteSize() + 7
    # Cut anywhere before the exit record, at block boundaries inside split records too: no exit, no error.
    cuts = [len(data) - exit_size, len(data) - exit_size - 1000, 2 * txlog.BLOCK_SIZE + 5, txlog.BLOCK_SIZE + 7]
    for cut in cuts:
        partial = tmp_path / f"cut-{cut}.wandb"
        partial.write_bytes(data[:cut])
        assert not txlog.has_exit(partial), cut
    exp = tracelet.start_logging("small", project="p", backend="wandb", config={"track_system": False})
    exp.log_metric("loss", 1.0, 0)
    assert txlog.has_exit(exp.stop().backends["wandb"].details["transaction_log"])  # a log of one block


def test_corruption_and_foreign_files_are_errors(tmp_path: Path) -> None:
    data = bytearray(_big_run().read_bytes())
    data[40] ^= 0xFF  # inside the first record's payload
    bad = tmp_path / "bad.wandb"
    bad.write_bytes(bytes(data))
    with pytest.raises(txlog.TransactionLogError, match="checksum mismatch in the record at byte 7$"):
        list(txlog.records(bad))
    with pytest.raises(txlog.TransactionLogError, match="checksum mismatch in the record at byte 7$"):
        list(txlog.stream(bad))
    other = tmp_path / "other.wandb"
    other.write_bytes(b"not a log at all")
    with pytest.raises(txlog.TransactionLogError, match="not a W&B transaction log"):
        list(txlog.payloads(other))
    with pytest.raises(txlog.TransactionLogError, match="not a W&B transaction log"):
        list(txlog.stream(other))
    with pytest.raises(txlog.TransactionLogError, match="no run-"):
        txlog.find_run_file(tmp_path)


def test_plugin_imports_tracelet_only_through_tracelet_plugin() -> None:
    root = Path(tracelet_wandb.__file__).parent
    seen = set()
    for source in root.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.ImportFrom) and node.module:
                seen.add(node.module)
            elif isinstance(node, ast.Import):
                seen.update(a.name for a in node.names)
    tracelet_modules = {m for m in seen if m == "tracelet" or m.startswith("tracelet.")}
    assert tracelet_modules == {"tracelet.plugin"}
