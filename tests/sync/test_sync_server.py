"""`tracelet sync` against a real `mlflow server`: a run made while it was down, finished in place once it is up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import tracelet
from tracelet import cli, store
from tracelet_testsupport.mlflow import MlflowServer
from tracelet_testsupport.sync import expected, history, mlflow_runs


def test_run_logged_while_the_server_was_down_is_finished_in_place_once_it_is_up(
    down_server: MlflowServer, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False, start_timeout=0.5)
    exp = tracelet.Experiment(
        "outage",
        backend=["local", "mlflow"],
        project="down-proj",
        settings=settings,
        options={"mlflow_tracking_uri": down_server.uri, "mlflow_stop_timeout": 1},
    )
    exp.start()
    exp.log_params({"lr": 0.1})
    exp.set_tags({"phase": "pretrain"})
    for i in range(3000):
        exp.log_metric("loss", 1.0 / (i + 1), i)
    report = exp.stop()
    assert report is not None and report.backends["mlflow"].undelivered == report.events > 3000

    assert cli.main(["runs", "--dir", str(runs_dir)]) == 0
    assert f"mlflow: {report.events:,} behind" in capsys.readouterr().out
    assert store.open_run(exp.id, runs_dir).behind() == {"mlflow": report.events}

    # A sync while the server is still down gives up at its timeout, keeps its place, and says so.
    t0 = time.monotonic()
    assert cli.main(["sync", exp.id, "--dir", str(runs_dir), "--timeout", "2"]) == 1
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert "mlflow: 0 delivered" in err and "run the same sync again to resume" in err
    assert store.open_run(exp.id, runs_dir).behind() == {"mlflow": report.events}

    down_server.start()
    assert cli.main(["sync", exp.id, "--dir", str(runs_dir)]) == 0  # no --to: the run's own backend
    err = capsys.readouterr().err
    assert f"mlflow: {report.events:,} events delivered" in err and "ended FINISHED" in err  # plain lines: no TTY
    (mlrun,) = mlflow_runs(down_server.uri, "down-proj", exp.id)
    assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == "outage"
    assert history(down_server.uri, mlrun.info.run_id, "loss") == expected(exp.run_dir, "loss")
    assert mlrun.data.params["lr"] == "0.1" and mlrun.data.tags["phase"] == "pretrain"
    assert store.open_run(exp.id, runs_dir).behind() == {}
    capsys.readouterr()
    assert cli.main(["runs", "--dir", str(runs_dir)]) == 0
    assert "behind" not in capsys.readouterr().out.split("\n", 1)[1]

    # Once more: up to date, nothing delivered twice.
    again = tracelet.sync(exp.id, dir=runs_dir)
    assert again.backends == {}
    again = tracelet.sync(exp.id, to="mlflow", dir=runs_dir)
    assert again.backends["mlflow"].skipped == "up to date" and again.backends["mlflow"].delivered == 0
    assert len(mlflow_runs(down_server.uri, "down-proj", exp.id)) == 1
    assert len(history(down_server.uri, mlrun.info.run_id, "loss")) == 3000


def test_a_server_lost_mid_run_leaves_the_rest_behind_and_sync_finishes_that_same_run(
    down_server: MlflowServer, runs_dir: Path
) -> None:
    down_server.start()
    settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False)
    exp = tracelet.Experiment(
        "midway",
        backend=["local", "mlflow"],
        project="mid-proj",
        settings=settings,
        options={"mlflow_tracking_uri": down_server.uri, "mlflow_stop_timeout": 1},
    ).start()
    for i in range(1000):
        exp.log_metric("loss", float(i), i)
    assert exp.flush(timeout=60)
    down_server.kill()
    for i in range(1000, 2500):
        exp.log_metric("loss", float(i), i)
    report = exp.stop()
    live = report.backends["mlflow"]
    mlflow_run = live.details["run_id"]
    assert 0 < live.undelivered <= 1500 and live.delivered >= 1000
    run = store.open_run(exp.id, runs_dir)
    assert run.behind() == {"mlflow": live.undelivered}

    down_server.start()
    res = tracelet.sync(run).backends["mlflow"]
    assert res.complete and res.run_id == mlflow_run and res.delivered == live.undelivered  # only the rest
    (mlrun,) = mlflow_runs(down_server.uri, "mid-proj", exp.id)
    assert mlrun.info.run_id == mlflow_run and mlrun.info.status == "FINISHED"
    assert history(down_server.uri, mlflow_run, "loss") == expected(exp.run_dir, "loss")
    assert len(expected(exp.run_dir, "loss")) == 2500
