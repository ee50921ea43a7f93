"""`tracelet sync` into a real MLflow sqlite store: twice, dry runs, selection and errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

import tracelet
from tracelet import cli
from tracelet_testsupport.sync import expected, history, local_run, mlflow_runs, to_mlflow


def test_sync_to_a_new_store_twice_delivers_everything_once(runs_dir: Path, sqlite_uri: str, tmp_path: Path) -> None:
    exp = tracelet.Experiment(
        "arts",
        backend=["local"],
        project="art-proj",
        settings=tracelet.TraceletSettings(dir=str(runs_dir), track_system=False),
    )
    exp.start()
    for i in range(500):
        exp.log_metric("loss", float(i), i)
    weights = tmp_path / "weights.txt"
    weights.write_text("w1")
    exp.log_artifact(str(weights))
    weights.write_text("changed after logging")  # the stored snapshot is what syncs
    exp.stop()

    first = tracelet.sync(exp.id, to=["mlflow"], config={"tracking_uri": sqlite_uri}, dir=runs_dir)
    res = first.backends["mlflow"]
    assert res.complete and res.delivered == res.events and res.status == "FINISHED"
    second = tracelet.sync(exp.id, to="mlflow", config={"tracking_uri": sqlite_uri}, dir=runs_dir)
    assert second.backends["mlflow"].skipped == "up to date"

    (mlrun,) = mlflow_runs(sqlite_uri, "art-proj", exp.id)
    assert mlrun.info.run_id == res.run_id
    assert history(sqlite_uri, res.run_id, "loss") == expected(exp.run_dir, "loss")
    client = MlflowClient(sqlite_uri)
    top = [f.path for f in client.list_artifacts(res.run_id)]
    assert "weights.txt" in top, top
    versions = [f.path for f in client.list_artifacts(res.run_id, "weights.txt")]
    assert versions == ["weights.txt/v1"]  # not stored again by the second sync
    got = client.download_artifacts(res.run_id, "weights.txt/v1/files/weights.txt", str(tmp_path / "dl"))
    assert Path(got).read_text() == "w1"
    entry = json.loads((exp.run_dir / "run.json").read_text())["sync"]["mlflow"]
    assert entry["run_id"] == res.run_id and entry["cursor"] == res.events and entry["ended"] is True
    assert entry["config"] == {"tracking_uri": sqlite_uri}


def test_dry_run_says_what_would_go_where_and_delivers_nothing(
    runs_dir: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = local_run(runs_dir, "dry", 50)
    code = cli.main(["sync", "--all", *to_mlflow(runs_dir, sqlite_uri), "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"{run.id} (dry, FINISHED): mlflow <- " in out and "from #0 into a new run" in out
    assert "sync" not in json.loads((run.path / "run.json").read_text())
    assert not os.path.exists(sqlite_uri.removeprefix("sqlite:///")) or not mlflow_runs(sqlite_uri, "sync-proj", run.id)


def test_selection_and_clear_errors(runs_dir: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    a = local_run(runs_dir, "a", 10, project="sel-p1")
    local_run(runs_dir, "b", 10, project="sel-p2")
    assert cli.main(["sync", "--project", "sel-p1", *to_mlflow(runs_dir, sqlite_uri)]) == 0
    assert len(mlflow_runs(sqlite_uri, "sel-p1", a.id)) == 1
    assert MlflowClient(sqlite_uri).get_experiment_by_name("sel-p2") is None
    assert cli.main(["sync", "--dir", str(runs_dir), "--to", "mlflow"]) == 1
    assert "--all, --project or --since" in capsys.readouterr().err
    assert cli.main(["sync", a.id, "--dir", str(runs_dir), "--to", "local"]) == 1
    assert "synced from" in capsys.readouterr().err
    assert cli.main(["sync", a.id, "--dir", str(runs_dir), "--to", "nosuchtracker"]) == 1
    assert "unknown backend 'nosuchtracker'" in capsys.readouterr().err
    assert cli.main(["sync", "--since", "yesterday-ish", "--dir", str(runs_dir), "--to", "mlflow"]) == 1
    assert "--since" in capsys.readouterr().err
    assert (
        cli.main(["sync", "--since", "1h", "--project", "sel-p2", *to_mlflow(runs_dir, sqlite_uri), "--dry-run"]) == 0
    )
    assert "(b, FINISHED)" in capsys.readouterr().out


def test_another_tracking_uri_is_another_destination_a_tuning_key_is_not(
    runs_dir: Path, sqlite_uri: str, tmp_path: Path
) -> None:
    run = local_run(runs_dir, "moved", 30, project="move-proj")
    first = tracelet.sync(run, to="mlflow", config={"tracking_uri": sqlite_uri}).backends["mlflow"]
    assert first.complete
    tuned = tracelet.sync(run, to="mlflow", config={"tracking_uri": sqlite_uri, "request_timeout": 5})
    assert tuned.backends["mlflow"].skipped == "up to date"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    moved = tracelet.sync(run, to="mlflow", config={"tracking_uri": other}).backends["mlflow"]
    assert moved.complete and moved.delivered == moved.events and moved.run_id != first.run_id
    assert history(other, moved.run_id, "loss") == expected(run.path, "loss")
    assert len(mlflow_runs(sqlite_uri, "move-proj", run.id)) == 1


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    import io

    from tracelet.transfer.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term, pipe = Terminal(), io.StringIO()
    bar = Progress.create(True, term, "sync r1", 1000)
    bar.update(500)
    bar.close()
    assert "\rsync r1 [" in term.getvalue() and "50%" in term.getvalue() and "1,000/1,000" not in term.getvalue()
    lines = Progress.create(True, pipe, "sync r1", 1000)
    lines.update(500)
    lines.close("done")
    assert "\r" not in pipe.getvalue() and pipe.getvalue().startswith("sync r1: 500/1,000 events")
    quiet = io.StringIO()
    Progress.create(False, quiet, "sync r1", 1000).close("done")
    assert quiet.getvalue() == ""


def test_a_torn_last_frame_is_synced_up_to_the_tear(runs_dir: Path, sqlite_uri: str) -> None:
    run = local_run(runs_dir, "torn", 300, project="torn-proj")
    whole = len(list(run.events()))
    with open(run.path / "events.bin", "ab") as f:
        f.write(b"\x40\x00\x00\x00half a frame")  # a writer that died mid-write: 64 bytes announced, 12 there
    res = tracelet.sync(run, to="mlflow", config={"tracking_uri": sqlite_uri}).backends["mlflow"]
    assert res.complete and res.events == res.delivered == whole
    assert history(sqlite_uri, res.run_id, "loss") == expected(run.path, "loss")


def test_mlflow_run_id_config_names_an_existing_run_or_is_a_clear_error(runs_dir: Path, sqlite_uri: str) -> None:
    settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False)
    missing = tracelet.Experiment(
        "resume",
        backend=["mlflow"],
        project="resume-proj",
        settings=settings,
        options={"mlflow_tracking_uri": sqlite_uri, "mlflow_run_id": "0" * 32},
    )
    with pytest.raises(tracelet.ConfigurationError, match="names no run"):
        missing.start()
    first = tracelet.Experiment(
        "resume",
        backend=["mlflow"],
        project="resume-proj",
        settings=settings,
        options={"mlflow_tracking_uri": sqlite_uri},
    ).start()
    first.log_metric("x", 1.0, 0)
    first.stop()
    run_id = first.report.backends["mlflow"].details["run_id"]
    again = tracelet.Experiment(
        "resume",
        backend=["mlflow"],
        project="resume-proj",
        settings=settings,
        options={"mlflow_tracking_uri": sqlite_uri, "mlflow_run_id": run_id},
    ).start()
    assert MlflowClient(sqlite_uri).get_run(run_id).info.status == "RUNNING"  # reopened
    again.log_metric("x", 2.0, 1)
    again.stop(status="FAILED")
    got = MlflowClient(sqlite_uri).get_run(run_id)
    assert got.info.status == "FAILED" and again.report.backends["mlflow"].details["run_id"] == run_id
    assert history(sqlite_uri, run_id, "x")[-1][:2] == (2.0, 1) and len(history(sqlite_uri, run_id, "x")) == 2
