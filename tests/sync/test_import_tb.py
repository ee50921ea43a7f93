"""`tracelet import-tb` of files written by a real torch SummaryWriter, read back from the local store and MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from tracelet import cli, store
from tracelet.transfer.tbimport import import_tb
from tracelet_testsupport.sync import to_mlflow


def _write_logs(logdir: Path) -> None:
    for name, scale in (("exp1", 1.0), ("group/exp2", 2.0)):
        writer = SummaryWriter(str(logdir / name))
        for step in range(120):
            writer.add_scalar("train/loss", scale / (step + 1), step)
            if step % 40 == 0:
                writer.add_scalar("val/acc", step / 120, step * 1000)  # a second step scale
                writer.add_histogram("weights", torch.linspace(-1, 1, 50) * (step + 1), step)
        writer.add_text("notes", f"run {name}: baseline", 0)
        writer.add_text("log", "epoch 1 done", 1)
        writer.add_text("log", "epoch 2 done", 2)
        writer.add_hparams({"lr": 0.01 * scale, "batch": 32, "opt": "adam"}, {"hparam/best": 0.9 / scale})
        writer.close()


def _scalars(path: Path, tag: str) -> list[tuple[float, int, float]]:
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.value, e.step, e.wall_time) for e in acc.Scalars(tag)]


def test_import_tb_reads_back_from_the_local_store_and_mlflow(
    tmp_path: Path, runs_dir: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logdir = tmp_path / "tb"
    _write_logs(logdir)
    code = cli.main(["import-tb", str(logdir), "--project", "tbproj", "--dir", str(runs_dir), "--with-media"])
    assert code == 0, capsys.readouterr()
    runs = {r.name: r for r in store.list_runs(runs_dir)}
    hparam_runs = [n for n in runs if n.startswith("exp1/")]
    assert {"exp1", "group/exp2"} <= set(runs) and len(hparam_runs) == 1 and len(runs) == 4

    run = runs["exp1"]
    assert run.project == "tbproj" and run.status == "FINISHED" and run.meta["tags"] == ["tensorboard"]
    for tag in ("train/loss", "val/acc"):
        got = [(p.value, p.step, p.timestamp) for p in run.metrics()[tag]]
        assert got == _scalars(logdir / "exp1", tag)  # TensorBoard's values, original steps and wall times
    assert [p.step for p in run.metrics()["val/acc"]] == [0, 40_000, 80_000]
    assert run.tags() == {"notes": "run exp1: baseline"}  # one short text: a tag
    names = {a.name for a in run.artifacts()}
    assert names == {"text-log", "histogram-weights"}  # several steps of text, and a histogram
    log_md = next(a for a in run.artifacts() if a.name == "text-log").files[0].local_path
    assert "epoch 1 done" in Path(log_md).read_text() and "epoch 2 done" in Path(log_md).read_text()
    hist = next(a for a in run.artifacts() if a.name == "histogram-weights").files[0].local_path
    lines = [json.loads(line) for line in Path(hist).read_text().splitlines()]
    assert [x["step"] for x in lines] == [0, 40, 80] and sum(b[2] for b in lines[0]["buckets"]) == 50

    session = runs[hparam_runs[0]]
    assert session.params() == {"lr": 0.01, "batch": 32, "opt": "adam"}
    assert [p.value for p in session.metrics()["hparam/best"]] == pytest.approx([0.9])
    assert runs["group/exp2"].metrics()["train/loss"][0].value == pytest.approx(2.0)

    # The same files again: recognised, nothing new.
    again = import_tb(logdir, project="tbproj", dir=runs_dir)
    assert all(r.existing for r in again) and len(store.list_runs(runs_dir)) == 4

    # Then anywhere: MLflow gets the original steps and timestamps.
    assert cli.main(["sync", "--project", "tbproj", *to_mlflow(runs_dir, sqlite_uri)]) == 0
    client = MlflowClient(sqlite_uri)
    exp = client.get_experiment_by_name("tbproj")
    (mlrun,) = client.search_runs([exp.experiment_id], filter_string=f"tags.`tracelet.run_id` = '{run.id}'")
    history = sorted((m.value, m.step, m.timestamp) for m in client.get_metric_history(mlrun.info.run_id, "val/acc"))
    expected = sorted((p.value, p.step, int(p.timestamp * 1000)) for p in run.metrics()["val/acc"])
    assert history == expected
    assert mlrun.data.tags["notes"] == "run exp1: baseline" and mlrun.info.status == "FINISHED"
    assert {f.path for f in client.list_artifacts(mlrun.info.run_id)} >= {"histogram-weights", "text-log"}
    (mlsession,) = client.search_runs([exp.experiment_id], filter_string=f"tags.`tracelet.run_id` = '{session.id}'")
    assert mlsession.data.params == {"lr": "0.01", "batch": "32", "opt": "adam"}


def test_without_media_histograms_are_skipped_and_counted_and_to_syncs_at_once(
    tmp_path: Path, runs_dir: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logdir = tmp_path / "tb"
    writer = SummaryWriter(str(logdir))
    writer.add_scalar("loss", 1.0, 0)
    writer.add_histogram("w", torch.zeros(4), 0)
    writer.close()
    assert cli.main(["import-tb", str(logdir), *to_mlflow(runs_dir, sqlite_uri)]) == 0
    (run,) = store.list_runs(runs_dir)
    assert run.name == "tb" and run.project == "tb" and run.artifacts() == []
    assert run.meta["import"]["skipped"] == {"histograms": 1}
    assert [p.value for p in run.metrics()["loss"]] == [1.0]
    assert f"{run.id}  tb  (1 events)" in capsys.readouterr().out
    mlrun = run.meta["sync"]["mlflow"]
    assert mlrun["ended"] is True
    assert [m.value for m in MlflowClient(sqlite_uri).get_metric_history(mlrun["run_id"], "loss")] == [1.0]
    (again,) = import_tb(logdir, dir=runs_dir)
    assert again.existing and again.run_id == run.id

    # The run went on: imported again in place, and the next sync finishes the same MLflow run.
    writer = SummaryWriter(str(logdir))
    writer.add_scalar("loss", 0.5, 1)
    writer.close()
    (grown,) = import_tb(logdir, dir=runs_dir)
    assert not grown.existing and grown.run_id == run.id
    assert cli.main(["sync", run.id, "--dir", str(runs_dir)]) == 0
    points = MlflowClient(sqlite_uri).get_metric_history(mlrun["run_id"], "loss")
    assert sorted((m.step, m.value) for m in points) == [(0, 1.0), (1, 0.5)]


def test_import_tb_says_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["import-tb", str(tmp_path / "nowhere")]) == 1
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["import-tb", str(tmp_path / "empty")]) == 1
    assert "no TensorBoard event files" in capsys.readouterr().err


BOUNDED_SCRIPT = """
import glob, json, resource, sys
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tracelet.transfer.tbimport import import_tb

logdir, runs, points = sys.argv[1], sys.argv[2], int(sys.argv[3])
writer = EventFileWriter(logdir + "/run")  # what SummaryWriter writes with
for i in range(points):
    value = Summary.Value(tag="train/loss", simple_value=1.0 / (i + 1))
    writer.add_event(Event(wall_time=1.7e9 + i, step=i, summary=Summary(value=[value])))
writer.close()

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux

start = peak()
read = sum(1 for _ in LegacyEventFileLoader(glob.glob(logdir + "/run/events*")[0]).Load())
reader = peak()
(run,) = import_tb(logdir, dir=runs)
print(json.dumps({"read": read, "events": run.events, "reader": reader - start, "import": peak() - reader}))
"""


@pytest.mark.slow
def test_import_tb_memory_is_bounded_by_tensorboards_reader_not_the_point_count(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    # 200,000 scalars: holding them all would take about 36 MB of Python objects. import-tb streams them
    # into the journal a frame at a time, so beyond what TensorBoard's own reader needs (its read buffer,
    # measured first in the same process) the import adds only a small constant.
    import subprocess
    import sys

    points = 200_000
    out = subprocess.run(
        [sys.executable, "-c", BOUNDED_SCRIPT, str(tmp_path / "tb"), str(tmp_path / "runs"), str(points)],
        capture_output=True, text=True, env=python_env, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["events"] == points and result["read"] == points + 1  # + the file-version event
    assert result["import"] < 8 * 2**20, result
