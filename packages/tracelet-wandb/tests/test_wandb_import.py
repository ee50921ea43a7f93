"""`tracelet import --from wandb`: an offline run written by W&B's own client (no Tracelet involved), read from its
`.wandb` transaction log: every history point with its step (the custom step metric honoured, out of order as
logged) and timestamp, nested config, tags, summary, exit status and an artifact; a second import writes nothing."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import wandb

import tracelet
from tracelet import cli, store
from tracelet.core.engine import journal
from tracelet_testsupport.wandb import read_run
from tracelet_wandb import txlog

ROWS = 400  # enough rows for a log of several 32 KiB blocks
EPOCHS = [3, 1, 2, 0]  # custom steps, out of order


def _native_run(tmp_path: Path) -> Path:
    """A W&B run written offline by wandb itself; returns its .wandb file once W&B has finished writing it."""
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    run = wandb.init(
        project="wbproj",
        name="native",
        config={"lr": 0.01, "model": {"depth": 4, "act": {"name": "relu"}}},
        tags=["a", "b"],
        reinit="create_new",
    )
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch")
    for i in range(ROWS):
        row: dict[str, Any] = {"train/loss": 1.0 / (i + 1), "grad": {"norm": i * 0.5}}
        if i == 10:
            row["hist"] = wandb.Histogram([1, 2, 3])
        run.log(row)
    for e in EPOCHS:
        run.log({"epoch": e, "val/acc": e / 10})
    run.config.update({"extra": 3})
    artifact = wandb.Artifact("mydata", type="dataset")
    artifact.add_file(str(data))
    run.log_artifact(artifact)
    run.summary["best"] = 0.9
    folder = Path(run.dir).parent
    run.finish(exit_code=1)
    log = txlog.find_run_file(folder)
    deadline = time.monotonic() + 60
    while not txlog.has_exit(log):  # W&B's service may still be writing the last records
        assert time.monotonic() < deadline, "W&B never wrote the exit record"
        time.sleep(0.1)
    return log


def _expected(log: Path) -> dict[str, list[tuple[int, float, float]]]:
    """What W&B's log holds, read by the tests' own reader: (step, value, timestamp) per key."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for row in read_run(log).history:
        for key, value in row.items():
            if key.startswith(("_", "hist.")):  # W&B's own keys; the histogram's fields
                continue
            if isinstance(value, dict):
                for sub, v in value.items():
                    out.setdefault(f"{key}.{sub}", []).append((row["_step"], v, row["_timestamp"]))
                continue
            step = row["epoch"] if key.startswith("val/") else row["_step"]
            out.setdefault(key, []).append((step, value, row["_timestamp"]))
    return out


def test_import_an_offline_wandb_run(tmp_path: Path) -> None:
    log = _native_run(tmp_path)
    runs_dir = tmp_path / "runs"
    (result,) = tracelet.import_runs(log.parent, source="wandb", dir=runs_dir)
    assert result.error is None and result.skipped == {"histogram": 1}
    run = store.LocalRun(result.path)
    got = {name: [(p.step, p.value, p.timestamp) for p in points] for name, points in run.metrics().items()}
    expected = _expected(log)
    assert got == expected  # point for point: step, value, W&B's own timestamp
    assert [s for s, _, _ in got["val/acc"]] == EPOCHS and len(got["train/loss"]) == ROWS
    assert run.params() == {"lr": 0.01, "model": {"depth": 4, "act": {"name": "relu"}}, "extra": 3}
    meta = run.meta
    assert meta["name"] == "native" and meta["project"] == "wbproj" and meta["status"] == "FAILED"
    assert meta["tags"] == ["a", "b"] and meta["metadata"]["wandb"]["summary"]["best"] == 0.9
    assert meta["import"]["run_id"] == read_run(log).run.run_id and meta["import"]["uri"] == str(log.resolve())
    (artifact,) = run.artifacts()
    assert artifact.name == "mydata" and artifact.type.value == "dataset"
    assert Path(artifact.files[0].local_path).read_text() == "a,b\n1,2\n"
    # The block-by-block reader sees exactly the records of the whole-file reader, over several blocks.
    assert log.stat().st_size > 2 * txlog.BLOCK_SIZE
    assert list(txlog.stream(log)) == list(txlog.payloads(log))

    # Again, from the run's .wandb file or from the folder above it: the same run, nothing written.
    before = (result.path / journal.EVENTS_FILE).stat().st_mtime_ns
    for source in (log, log.parent.parent):  # the folder above may hold earlier tests' runs too (W&B reuses it)
        (again,) = [
            r
            for r in tracelet.import_runs(source, source="wandb", dir=runs_dir)
            if r.name == "native" and r.run_id == result.run_id
        ]
        assert again.existing and again.events == 0
    assert (result.path / journal.EVENTS_FILE).stat().st_mtime_ns == before


def test_a_torn_log_is_a_killed_run_and_an_unreadable_one_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = _native_run(tmp_path)
    torn = tmp_path / "torn" / log.name
    torn.parent.mkdir()
    torn.write_bytes(log.read_bytes()[: txlog.BLOCK_SIZE + 1000])  # killed mid-write: no exit record
    (result,) = tracelet.import_runs(torn, source="wandb", dir=tmp_path / "runs")
    run = store.LocalRun(result.path)
    assert result.error is None and run.meta["status"] == "KILLED"
    n = len(run.metrics()["train/loss"])
    assert 0 < n < ROWS and run.metrics()["train/loss"][-1].step == n - 1  # what was written, in order
    bad = tmp_path / "bad" / "run-x.wandb"
    bad.parent.mkdir()
    shutil.copy(log, bad)
    with open(bad, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 8)  # a corrupted record: W&B's checksum catches it
    assert cli.main(["import", "--from", "wandb", str(bad), str(log), "--dir", str(tmp_path / "runs2")]) == 1
    captured = capsys.readouterr()
    assert "checksum mismatch" in captured.err and str(bad) in captured.err
    assert "native" in captured.out  # the readable run was imported all the same
    assert [r.name for r in store.list_runs(tmp_path / "runs2")] == ["native"]
