"""A damaged or hostile journal never crashes a reader and never hides the rest of the run.

Each damage is made on a journal written by the real writer (a real run, or `JournalWriter`); the oracle is the
frame layout read from the clean file before the damage: the readers must return exactly the events of the
frames the damage did not touch, and say where the damage is and how many events it cost.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

import tracelet
from tracelet import store
from tracelet.cli import main
from tracelet.core.engine import journal


def frames(path: Path) -> list[tuple[int, int, int, list[tuple]]]:
    """(offset, size, first_seq, events) of every frame of a sound version-2 file, parsed independently."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        magic, _crc, length = struct.unpack_from("<4sII", data, pos)
        assert magic == b"TLJ\xf2"
        first, events = pickle.loads(data[pos + 12 : pos + 12 + length])
        out.append((pos, 12 + length, first, events))
        pos += 12 + length
    return out


def untouched(layout: list[tuple[int, int, int, list[tuple]]], start: int, end: int) -> list[tuple[int, tuple]]:
    """The (seq, event) pairs of the frames that do not overlap bytes [start, end)."""
    return [
        (first + i, e)
        for off, size, first, events in layout
        if off + size <= start or off >= end
        for i, e in enumerate(events)
    ]


def write_journal(run_dir: Path, frames_of: list[int]) -> Path:
    """A journal with one frame per entry of `frames_of` (its event count), metric values = sequence numbers."""
    writer = journal.JournalWriter(run_dir)
    seq = 0
    for n in frames_of:
        writer.append(seq, [("m", "loss", float(seq + i), seq + i, 1.0) for i in range(n)])
        seq += n
    writer.close()
    return writer.path


def real_run(points: int = 3000, name: str = "dmg") -> store.LocalRun:
    """A finished run of the local store (a journal frame holds at most 2000 events: 3000 make several)."""
    with tracelet.start_logging(name, project="integrity", backend="local") as exp:
        exp.log_params({"lr": 0.1})
        for i in range(points):
            exp.log_metric("loss", float(i), i)
    return store.open_run(exp.id)


def flip(path: Path, start: int, count: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# --- version 1 --------------------------------------------------------------------------------------------------


def v1_frame(first_seq: int, events: list[tuple]) -> bytes:
    """Frozen copy of the version-1 writer's framing (tracelet before format 2): length, then the pickle."""
    buf = io.BytesIO()
    buf.write(b"\0\0\0\0")
    pickle.Pickler(buf, 5).dump((first_seq, events))
    data = buf.getbuffer()
    struct.Struct("<I").pack_into(data, 0, len(data) - 4)
    return bytes(data)


def test_a_version_1_journal_still_reads_and_is_appended_to_in_version_1(tmp_path: Path) -> None:
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    events = [("p", {"lr": 0.5}, 1.0)] + [("m", "acc", float(i), i, 2.0) for i in range(1, 4000)]
    path = run_dir / journal.EVENTS_FILE
    path.write_bytes(v1_frame(0, events[:2000]) + v1_frame(2000, events[2000:]))
    reader = journal.JournalReader(path)
    assert list(reader.events()) == list(enumerate(events)) and reader.version == 1 and not reader.damage
    writer = journal.JournalWriter(run_dir)  # a run resumed into an old folder keeps one format per file
    writer.append(4000, [("t", {"k": "v"}, 3.0)])
    writer.close()
    assert path.read_bytes()[-len(v1_frame(4000, [("t", {"k": "v"}, 3.0)])) :] == v1_frame(
        4000, [("t", {"k": "v"}, 3.0)]
    )
    assert [e for _, e in journal.read_events(path)][-1] == ("t", {"k": "v"}, 3.0)
    (run_dir / journal.META_FILE).write_text(
        json.dumps({"format": "tracelet-run", "version": 1, "run_id": "old", "status": "FINISHED", "events": 4001})
    )
    assert store.LocalRun(run_dir).params() == {"lr": 0.5} and main(["verify", str(run_dir)]) == 0


def test_version_1_damage_is_skipped_where_the_lengths_allow(tmp_path: Path) -> None:
    path = tmp_path / journal.EVENTS_FILE
    good = [("m", "a", 1.0, 0, 0.0)]
    hostile = pickle.dumps((1, [("m", _System(), 2.0, 1, 0.0)]), protocol=5)
    evil = struct.pack("<I", len(hostile)) + hostile
    path.write_bytes(v1_frame(0, good) + evil + v1_frame(2, [("m", "c", 3.0, 2, 0.0)]))
    reader = journal.JournalReader(path, warn=False)
    assert list(reader.events()) == [(0, good[0]), (2, ("m", "c", 3.0, 2, 0.0))]
    assert reader.damage[0].offset == len(v1_frame(0, good)) and reader.damage[0].events_lost == 1


# --- damage in the middle ---------------------------------------------------------------------------------------


def test_64_flipped_bytes_cost_only_the_frames_they_hit(tmp_path: Path, caplog) -> None:
    path = write_journal(tmp_path / "run", [1000] * 8)
    layout = frames(path)
    middle = path.stat().st_size // 2
    flip(path, middle, 64)
    reader = journal.JournalReader(path)
    got = list(reader.events())
    assert got == untouched(layout, middle, middle + 64)
    hit = [f for f in layout if f[0] <= middle < f[0] + f[1]][0]
    (damage,) = reader.damage
    assert damage.offset == hit[0] and damage.first_seq == hit[2] and damage.events_lost == 1000
    assert f"byte {hit[0]:,}" in caplog.text and "1,000 events lost" in caplog.text and "tracelet verify" in caplog.text
    assert reader.end_seq == 8000 and reader.events_lost == 1000


def test_a_damaged_frame_header_and_a_huge_length_are_skipped_without_allocating_it(tmp_path: Path) -> None:
    path = write_journal(tmp_path / "run", [500] * 4)
    layout = frames(path)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, layout[1][0] + 8, 0xFFFFFFF0)  # frame 1 claims almost 4 GiB
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        got = list(journal.JournalReader(path, warn=False).events())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == untouched(layout, layout[1][0], layout[1][0] + 1)
    assert peak < 8 * 1024 * 1024  # bounded by a frame and a scan chunk, never by the length claimed


def test_a_cut_journal_keeps_every_whole_frame_and_is_no_damage_while_live(tmp_path: Path) -> None:
    path = write_journal(tmp_path / "run", [300] * 3)
    layout = frames(path)
    path.write_bytes(path.read_bytes()[: layout[2][0] + 40])
    reader = journal.JournalReader(path, warn=False)
    assert list(reader.events()) == untouched(layout, layout[2][0], path.stat().st_size + 1)
    assert not reader.damage and reader.torn is not None and reader.torn.offset == layout[2][0]


def test_a_duplicated_frame_is_read_once(tmp_path: Path) -> None:
    path = write_journal(tmp_path / "run", [100] * 3)
    layout = frames(path)
    data = path.read_bytes()
    second = data[layout[1][0] : layout[1][0] + layout[1][1]]
    path.write_bytes(data[: layout[2][0]] + second + data[layout[2][0] :])
    reader = journal.JournalReader(path, warn=False)
    assert list(reader.events()) == untouched(layout, -1, -1)
    assert reader.damage[0].events_lost == 0 and "repeats events #100..#199" in reader.damage[0].reason


class _System:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def hostile_frame(first_seq: int) -> bytes:
    payload = pickle.dumps((first_seq, [("m", _System(), 1.0, 0, 0.0)]), protocol=5)
    length = struct.pack("<I", len(payload))
    return b"TLJ\xf2" + struct.pack("<I", zlib.crc32(length + payload)) + length + payload


def test_a_hostile_frame_with_a_valid_checksum_runs_nothing_and_is_skipped(tmp_path: Path, capsys) -> None:
    run = real_run(600, "hostile")
    path = run.path / journal.EVENTS_FILE
    before = list(journal.read_events(path))
    with open(path, "ab") as f:
        f.write(hostile_frame(len(before)))
        f.write(journal.encode_frame(len(before) + 1, [("m", "late", 7.0, 1, 2.0), ("x", "a new kind", 1)]))
    got = list(journal.JournalReader(path, warn=False).events())
    assert got == before + [(len(before) + 1, ("m", "late", 7.0, 1, 2.0)), (len(before) + 2, ("x", "a new kind", 1))]
    assert not Path("pwned").exists() and not (run.path / "pwned").exists()
    assert main(["show", run.id]) == 0
    captured = capsys.readouterr()
    assert "late" in captured.out and "frame refused" in captured.err and "posix.system" in captured.err


def test_a_backend_catching_up_past_live_damage_gets_the_rest_and_the_stop_report_names_the_damage() -> None:
    """Damage that appears under a live run (a disk, a sync tool) costs a laggard only the frame it hit: the
    backend gets every other event from the journal, and the stop report and run.json say where and how many."""
    gate, entered = threading.Event(), threading.Event()
    steps: list[int] = []

    class Gated:
        @tracelet.hookimpl
        def backend_log_metrics(self, metrics: list) -> None:
            entered.set()
            gate.wait(30)  # a tracker that is down while the run logs
            steps.extend(m.step for m in metrics)

    tracelet.register_plugin(Gated, name="gated")
    exp = tracelet.start_logging(
        "live-damage", project="integrity", backend=["local", "gated"], config={"max_buffered": 2000}
    )
    total = 12_000
    exp.log_metric("loss", 0.0, 0)
    assert entered.wait(30)  # the backend holds its first batch (one point): the rest waits for it
    for i in range(1, total):
        exp.log_metric("loss", float(i), i)
        if i % 1000 == 0:
            time.sleep(0.05)  # several dispatcher passes, so older chunks leave memory (one chunk always stays)
    orch = exp.orchestrator
    deadline = time.monotonic() + 30
    while orch.journaled < total and time.monotonic() < deadline:
        time.sleep(0.02)
    assert orch.journal is not None and orch.journaled >= total
    path = Path(orch.journal.path)
    layout = frames(path)
    hit = next(f for f in layout if f[2] <= total // 2 < f[2] + len(f[3]))  # far behind the memory window
    with open(path, "r+b") as f:
        f.seek(hit[0] + hit[1] // 2)
        f.write(bytes(64))
    lost = {e[3] for e in hit[3]}
    gate.set()
    report = exp.stop()

    assert sorted(steps) == [i for i in range(total) if i not in lost]
    assert len(report.damage) == 1 and report.damage[0].startswith(f"byte {hit[0]:,} ")
    assert f"{len(lost):,} events lost" in report.damage[0]
    assert report.backends["gated"].dropped == len(lost) and not report.complete
    meta = json.loads((path.parent / "run.json").read_text())
    assert meta["journal_damage"] == report.damage


# --- the CLI and the store on a damaged real run ---------------------------------------------------------------


def test_show_runs_verify_and_repair_on_a_flipped_real_run(capsys) -> None:
    run = real_run(3000)
    path = run.path / journal.EVENTS_FILE
    layout = frames(path)
    assert len(layout) >= 2
    middle = path.stat().st_size // 2
    flip(path, middle, 64)
    good = untouched(layout, middle, middle + 64)
    lost = 3001 - len(good)
    assert lost > 0
    damaged = store.open_run(run.id)
    assert [e for _, e in good] == list(damaged.events())
    assert [d.events_lost for d in damaged.damage()] == [lost]
    assert main(["show", run.id]) == 0 and main(["runs"]) == 0
    err = capsys.readouterr().err
    assert (
        f"events.bin damaged at byte {layout[[f[0] <= middle < f[0] + f[1] for f in layout].index(True)][0]:,}" in err
    )
    assert main(["verify", run.id]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and "checksum mismatch" in out and f"{lost:,} events lost" in out
    assert main(["verify", "--repair", run.id]) == 0
    out = capsys.readouterr().out
    assert "repaired: events.bin: clean copy" in out
    kept = list(run.path.glob("events.bin.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes()[middle : middle + 64] != path.read_bytes()[middle : middle + 64]
    assert list(journal.read_events(path)) == good  # sequence numbers unchanged: the gap stays a gap
    assert main(["verify", run.id]) == 0 and "ok" in capsys.readouterr().out
    assert main(["verify", "--all"]) == 0


@pytest.mark.parametrize("damage", ["truncated", "not json", "a list"])
def test_a_damaged_run_json_is_listed_damaged_with_its_events_readable(damage: str, capsys) -> None:
    run = real_run(100, f"meta-{damage.replace(' ', '-')}")
    meta = run.path / journal.META_FILE
    text = meta.read_text()
    meta.write_text({"truncated": text[: len(text) // 2], "not json": "\x00garbage", "a list": "[1, 2]"}[damage])
    (listed,) = [r for r in store.list_runs() if r.path == run.path]
    assert listed.status == store.DAMAGED and listed.id == run.id and len(listed.metrics()["loss"]) == 100
    assert main(["runs"]) == 0 and "DAMAGED" in capsys.readouterr().out
    assert main(["show", run.path.name]) == 0 and "run.json is damaged" in capsys.readouterr().err
    assert main(["sync", run.id, "--to", "recorder"]) == 1 and "--repair" in capsys.readouterr().err
    assert main(["verify", run.id]) == 1
    assert main(["verify", "--repair", run.id]) == 0
    repaired = store.open_run(run.id)
    assert repaired.meta_error is None and repaired.status == "KILLED" and repaired.meta["events"] == 101
    assert list(run.path.glob("run.json.damaged-*"))
