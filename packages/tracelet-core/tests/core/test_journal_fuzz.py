"""Fuzzing the journal reader and the run record (hypothesis; bounded: a few hundred small examples, seconds).

A journal is built from frames written by the real writer; random damage is applied to it as a list of
segments (intact frames and junk): bit flips, cuts, duplicated and swapped frames, hostile frames with a valid
checksum, inserted garbage, lengths claiming gigabytes. The oracle walks the segments: an intact frame is
returned exactly when its sequence numbers come after every frame returned before it (a duplicate or a frame
moved back is skipped); junk never yields anything. Nothing else may escape: no exception, no event that was
not written, and memory stays bounded.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import tempfile
import tracemalloc
import zlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelet import store, verify
from tracelet.cli import main
from tracelet.core.engine import journal

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _System:
    def __reduce__(self):
        return (os.system, ("touch fuzz-pwned",))


def _hostile(first_seq: int) -> bytes:
    payload = pickle.dumps((first_seq, [("m", _System(), 1.0, 0, 0.0)]), protocol=5)
    length = struct.pack("<I", len(payload))
    return journal.MAGIC + struct.pack("<I", zlib.crc32(length + payload)) + length + payload


def _build(sizes: list[int]) -> tuple[list[tuple[int, bytes, list[tuple]]], list[tuple]]:
    """Frames (first_seq, bytes, events) as the writer encodes them, and every event by sequence number."""
    frames, everything, seq = [], [], 0
    for n in sizes:
        events = [("m", f"m{seq % 3}", float(seq + i), seq + i, 1.5) for i in range(n)]
        if seq % 2:
            events[0] = ("p", {"k": seq, "s": "v" * (seq % 7)}, 2.0)
        frames.append((seq, journal.encode_frame(seq, events), events))
        everything.extend(events)
        seq += n
    return frames, everything


operation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 64), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 100_000)),
    st.tuples(st.just("duplicate"), st.integers(0, 100), st.integers(0, 100)),
    st.tuples(st.just("swap"), st.integers(0, 100), st.integers(0, 100)),
    st.tuples(st.just("hostile"), st.integers(0, 100)),
    st.tuples(st.just("garbage"), st.integers(0, 100), st.binary(min_size=1, max_size=80)),
    st.tuples(st.just("huge"), st.integers(0, 100), st.integers(2**20, 2**32 - 1)),
)


def _apply(segments: list[tuple], op: tuple) -> None:
    """Segments are ("frame", first_seq, bytes, events) or ("junk", bytes)."""
    kind = op[0]
    if kind == "flip":
        frames = [i for i, s in enumerate(segments) if s[0] == "frame"]
        if not frames:
            return
        i = frames[op[1] % len(frames)]
        data = bytearray(segments[i][2])
        start = op[1] % len(data)
        for k in range(start, min(start + op[2], len(data))):
            data[k] ^= op[3]
        segments[i] = ("junk", bytes(data))
    elif kind == "cut":
        total = sum(len(s[-2] if s[0] == "frame" else s[1]) for s in segments)
        at, pos = op[1] % (total + 1), 0
        for i, s in enumerate(segments):
            data = s[2] if s[0] == "frame" else s[1]
            if pos + len(data) > at:
                del segments[i + 1 :]
                segments[i] = ("junk", data[: at - pos])
                return
            pos += len(data)
    elif kind == "duplicate":
        frames = [s for s in segments if s[0] == "frame"]
        if frames:
            segments.insert(op[2] % (len(segments) + 1), frames[op[1] % len(frames)])
    elif kind == "swap":
        if segments:
            i, j = op[1] % len(segments), op[2] % len(segments)
            segments[i], segments[j] = segments[j], segments[i]
    elif kind == "hostile":
        segments.insert(op[1] % (len(segments) + 1), ("junk", _hostile(op[1])))
    elif kind == "garbage":
        segments.insert(op[1] % (len(segments) + 1), ("junk", op[2]))
    elif kind == "huge":
        frames = [i for i, s in enumerate(segments) if s[0] == "frame"]
        if frames:
            i = frames[op[1] % len(frames)]
            data = bytearray(segments[i][2])
            struct.pack_into("<I", data, 8, op[2])
            segments[i] = ("junk", bytes(data))


def _expected(segments: list[tuple]) -> list[tuple[int, tuple]]:
    out: list[tuple[int, tuple]] = []
    end = 0
    for s in segments:
        if s[0] == "frame" and s[1] >= end:
            out.extend((s[1] + i, e) for i, e in enumerate(s[3]))
            end = s[1] + len(s[3])
    return out


@FUZZ
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=8), ops=st.lists(operation, min_size=1, max_size=3))
def test_damaged_journals_yield_exactly_the_good_frames(sizes: list[int], ops: list[tuple]) -> None:
    frames, everything = _build(sizes)
    segments: list[tuple] = [("frame", first, data, events) for first, data, events in frames]
    for op in ops:
        _apply(segments, op)
    blob = b"".join(s[2] if s[0] == "frame" else s[1] for s in segments)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / journal.EVENTS_FILE
        path.write_bytes(blob)
        tracemalloc.start()
        try:
            reader = journal.JournalReader(path, warn=False)
            got = list(reader.events())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert not (Path(tmp) / "fuzz-pwned").exists() and not Path("fuzz-pwned").exists()
    seqs = [seq for seq, _ in got]
    assert seqs == sorted(set(seqs))  # strictly increasing: no event twice, none out of order
    assert all(everything[seq] == event for seq, event in got)  # nothing that was not written
    assert got == _expected(segments)  # every good frame, before and after the damage
    assert peak < 4 * 1024 * 1024 + 4 * len(blob)  # bounded by the file and one scan chunk, never by a length
    if reader.damage:
        assert all(0 <= d.offset < len(blob) and d.size > 0 for d in reader.damage)


run_json = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=20,
    ).map(json.dumps),
    st.fixed_dictionaries(
        {},
        optional={
            "run_id": st.text(max_size=10) | st.integers(),
            "name": st.none() | st.integers() | st.text(max_size=10),
            "project": st.lists(st.integers(), max_size=2) | st.text(max_size=5),
            "created_at": st.integers() | st.text(max_size=30) | st.none(),
            "status": st.sampled_from(["RUNNING", "FINISHED", "KILLED", "???"]) | st.integers(),
            "events": st.integers(-5, 10**12) | st.text(max_size=3) | st.booleans(),
            "owner": st.integers() | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
            "delivery": st.dictionaries(
                st.text(max_size=5),
                st.integers() | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
                max_size=2,
            ),
            "sync": st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
            "tags": st.integers() | st.lists(st.text(max_size=5), max_size=2),
        },
    ).map(json.dumps),
)


@FUZZ
@given(text=run_json, cut=st.integers(0, 400))
def test_any_run_json_leaves_the_run_listed_with_its_events_readable(text: str, cut: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "proj" / "run-1"
        writer = journal.JournalWriter(run_dir)
        writer.append(0, [("m", "loss", 1.0, 0, 1.0), ("p", {"lr": 0.1}, 1.0)])
        writer.close()
        (run_dir / journal.META_FILE).write_text(text[: cut or None])
        (run,) = store.list_runs(tmp)
        assert isinstance(run.id, str) and (run.status is None or isinstance(run.status, str))
        assert [m.value for m in run.metrics()["loss"]] == [1.0] and run.params() == {"lr": 0.1}
        verify.check(run)  # never raises; whether it calls the run damaged depends on the record
        assert main(["runs", "--dir", tmp]) == 0
        assert main(["show", "--dir", tmp, str(run_dir)]) == 0
