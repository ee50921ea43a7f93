"""The journal format: frames round-trip, a torn tail is ignored, and reading never imports classes."""

from __future__ import annotations

import io
import math
import pickle
import time

import pytest

import tracelet
from tracelet.core.engine import journal
from tracelet.store import open_run


def test_frames_round_trip_and_sequence_numbers(tmp_path) -> None:
    writer = journal.JournalWriter(tmp_path / "run")
    events = [("m", "loss", float(i), i, 1.5) for i in range(5000)]
    writer.append(0, events)
    writer.append(5000, [("p", {"lr": 0.1}, 2.0), ("m", "acc", math.inf, 1, 3.0)])
    writer.close()
    got = list(journal.read_events(writer.path))
    assert [seq for seq, _ in got] == list(range(5002))
    assert [e for _, e in got[:5000]] == events
    assert got[5000][1] == ("p", {"lr": 0.1}, 2.0) and got[5001][1][2] == math.inf
    # Catching up from the middle: the index gives the frame that holds the sequence number.
    tail = list(journal.read_events(writer.path, 4321, writer.offset_for(4321)))
    assert tail[0] == (4321, ("m", "loss", 4321.0, 4321, 1.5)) and len(tail) == 5002 - 4321


def test_read_frames_gives_where_each_frame_ends_for_reading_on_from_there(tmp_path) -> None:
    writer = journal.JournalWriter(tmp_path / "run")
    writer.append(0, [("m", "loss", float(i), i, 1.0) for i in range(2500)])  # two frames (FRAME_EVENTS = 2000)
    frames = list(journal.read_frames(writer.path))
    assert [(seq, len(events)) for seq, _, events in frames] == [(0, 2000), (2000, 500)]
    assert frames[-1][1] == writer.path.stat().st_size
    writer.append(2500, [("p", {"lr": 0.1}, 2.0)])
    with open(writer.path, "ab") as f:
        f.write(b"\x10\0\0\0half")  # a frame being written
    later = list(journal.read_frames(writer.path, frames[-1][1]))  # only what was appended since
    assert [(seq, events) for seq, _, events in later] == [(2500, [("p", {"lr": 0.1}, 2.0)])]
    assert later[0][1] == writer.path.stat().st_size - 8  # the torn tail is not read past
    writer.close()


def test_torn_last_frame_is_ignored(tmp_path) -> None:
    writer = journal.JournalWriter(tmp_path / "run")
    writer.append(0, [("m", "a", 1.0, 0, 0.0)])
    writer.append(1, [("m", "a", 2.0, 1, 0.0)])
    writer.close()
    data = writer.path.read_bytes()
    writer.path.write_bytes(data[:-3])
    assert [e[2] for _, e in journal.read_events(writer.path)] == [1.0]


def test_reader_refuses_classes(tmp_path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / journal.EVENTS_FILE
    payload = pickle.dumps((0, [("m", Evil(), 1.0, 0, 0.0)]))
    path.write_bytes(len(payload).to_bytes(4, "little") + payload)
    reader = journal.JournalReader(path, warn=False)
    assert list(reader.events()) == []  # refused and skipped, never run (test_journal_integrity.py)
    assert "builtins.print" in reader.damage[0].reason


def test_foreign_scalars_are_stored_as_plain_values(tmp_path) -> None:
    np = pytest.importorskip("numpy")
    frame = journal.encode_frame(0, [("m", np.str_("n"), 1.0, np.int64(3), 0.0), ("p", {"k": np.float32(0.5)}, 0.0)])
    seq, events = journal._Unpickler(io.BytesIO(frame[journal.HEAD_SIZE :])).load()
    assert events[0] == ("m", "n", 1.0, 3, 0.0) and type(events[0][3]) is int
    assert events[1][1]["k"] == 0.5


def test_run_json_describes_the_run_and_its_delivery() -> None:
    with tracelet.start_logging("meta", project="p", backend=["local", "recorder"]) as exp:
        exp.log_metric("x", 1.0, 0)
        time.sleep(0.05)
        running = journal.read_meta(exp.run_dir)
        assert running["status"] == "RUNNING" and running["format"] == "tracelet-run" and running["version"] == 2
    meta = open_run(exp.id).meta
    assert meta["status"] == "FINISHED" and meta["events"] == 1 and meta["ended_at"]
    assert meta["delivery"]["recorder"]["delivered"] == 1 and meta["delivery"]["recorder"]["undelivered"] == 0
    assert meta["metadata"]["environment"]["python"]


def test_a_running_run_records_how_far_each_backend_got() -> None:
    """`progress` in run.json, every couple of seconds while backends advance: what `tracelet sync` resumes a
    dead run from. A backend that takes nothing stays at 0 beside the others."""
    exp = tracelet.start_logging(
        "progress",
        project="p",
        backend=["recorder", "failing"],
        config={"track_system": False, "failing_stop_timeout": 0.2},
    )
    for i in range(3000):
        exp.log_metric("x", float(i), i)
    assert exp.flush(timeout=1) is False  # the failing backend never takes its batch
    deadline = time.monotonic() + 10
    progress: dict[str, int] = {}
    while time.monotonic() < deadline and progress.get("recorder") != 3000:
        time.sleep(0.1)
        progress = journal.read_meta(exp.run_dir).get("progress") or {}
    assert progress == {"recorder": 3000, "failing": 0}
    exp.stop()
    meta = open_run(exp.id).meta
    assert meta["delivery"]["recorder"]["delivered"] == 3000  # the end record is the exact account


def test_non_str_metric_names_are_delivered_as_str() -> None:
    from tracelet_testplugin.backends import record_for

    with tracelet.start_logging("names", backend=["local", "recorder"]) as exp:
        exp.log_metric(7, 1.0, 0)  # type: ignore[arg-type]
    assert record_for(exp.id, "recorder")["metrics"][0].name == "7"
    assert list(open_run(exp.id).metrics()) == ["7"]


def test_system_metrics_are_collected_when_tracked() -> None:
    pytest.importorskip("psutil")
    with tracelet.start_logging("sys", backend="local", config={"track_system": True, "metrics_interval": 0.1}) as exp:
        time.sleep(0.5)
    metrics = open_run(exp.id).metrics()
    assert len(metrics["system/cpu_percent"]) >= 2
    assert 0 < metrics["system/process_rss_mb"][0].value < 100_000


def test_unwritable_store_is_a_clear_configuration_error(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store should be")
    with pytest.raises(tracelet.ConfigurationError, match="TRACELET_LOCAL_STORE=false"):
        tracelet.start_logging("x", backend="local", config={"dir": str(blocker)})


def test_journal_write_failure_keeps_delivering_from_memory(monkeypatch, caplog) -> None:
    """A full disk mid-run: an error is logged once, backends still get everything, nothing crashes."""
    from tracelet_testplugin.backends import record_for

    calls = {"n": 0}
    real_append = journal.JournalWriter.append

    def failing_append(self, first_seq, events):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(28, "No space left on device")
        real_append(self, first_seq, events)

    monkeypatch.setattr(journal.JournalWriter, "append", failing_append)
    exp = tracelet.start_logging("disk-full", backend=["recorder"])
    for i in range(30):
        exp.log_metric("x", float(i), i)
        time.sleep(0.01)  # several dispatcher passes
    report = exp.stop()
    assert report is not None and report.complete
    assert [m.value for m in record_for(exp.id, "recorder")["metrics"]] == [float(i) for i in range(30)]
    errors = [r for r in caplog.records if "cannot write the journal" in r.getMessage()]
    assert len(errors) == 1
    kept = [p.value for p in open_run(exp.id).metrics()["x"]]
    assert kept == [float(i) for i in range(len(kept))] and 0 < len(kept) < 30  # what was written stays readable
