"""`tracelet sync`: config in the live run's `<backend>_key` form, and a failed artifact upload is never lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

import tracelet
from tracelet import cli, store
from tracelet_testsupport.mlflow import copy_sqlite_store
from tracelet_testsupport.sync import expected, history, mlflow_runs


def _run_with_artifact(runs_dir: Path, tmp_path: Path, project: str) -> store.LocalRun:
    exp = tracelet.Experiment(
        "with-artifact",
        backend=["local"],
        project=project,
        settings=tracelet.TraceletSettings(dir=str(runs_dir), track_system=False, track_env=False, track_git=False),
    )
    exp.start()
    for i in range(300):
        exp.log_metric("loss", float(i), i)
    weights = tmp_path / "weights.txt"
    weights.write_text("w1")
    exp.log_artifact(str(weights))
    exp.log_metric("loss", -1.0, 300)  # an event after the artifact: delivery must not run past the artifact
    exp.stop()
    return store.open_run(exp.id, runs_dir)


def test_backend_prefixed_config_keys_reach_that_backend(
    runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's default store would be ./mlflow.db: the key must not be ignored
    run = _run_with_artifact(runs_dir, tmp_path, "prefixed")
    cli_uri = f"sqlite:///{tmp_path / 'cli.db'}"
    assert (
        cli.main(
            ["sync", run.id, "--dir", str(runs_dir), "--to", "mlflow", "--config", f"mlflow_tracking_uri={cli_uri}"]
        )
        == 0
    )
    (mlrun,) = mlflow_runs(cli_uri, "prefixed", run.id)
    assert history(cli_uri, mlrun.info.run_id, "loss") == expected(run.path, "loss")
    assert not (tmp_path / "mlflow.db").exists()
    entry = json.loads((run.path / "run.json").read_text())["sync"]["mlflow"]
    assert entry["config"] == {"tracking_uri": cli_uri}

    api_uri = f"sqlite:///{tmp_path / 'api.db'}"
    report = tracelet.sync(run.id, to="mlflow", config={"mlflow_tracking_uri": api_uri}, dir=runs_dir)
    assert report.backends["mlflow"].complete
    assert len(mlflow_runs(api_uri, "prefixed", run.id)) == 1
    assert len(mlflow_runs(cli_uri, "prefixed", run.id)) == 1  # the first store got nothing more


def test_an_artifact_that_fails_to_upload_is_retried_then_resumed_not_skipped(
    runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_sqlite_template: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    # An empty store made beforehand: MLflow's migrations (seconds on a loaded machine) stay out of the 8 s below.
    uri = copy_sqlite_store(mlflow_sqlite_template, tmp_path / "mlflow.db")
    run = _run_with_artifact(runs_dir, tmp_path, "failing-artifacts")
    # MLflow puts a sqlite store's artifacts under ./mlartifacts: a file there makes every upload fail.
    (tmp_path / "mlartifacts").write_text("not a folder")
    failed = tracelet.sync(run, to="mlflow", config={"tracking_uri": uri}, timeout=8).backends["mlflow"]
    assert not failed.complete and failed.cursor < failed.events
    assert failed.errors.get("log_artifact: NotADirectoryError", 0) >= 1, failed.errors
    entry = json.loads((run.path / "run.json").read_text())["sync"]["mlflow"]
    assert entry["cursor"] == failed.cursor and entry["artifacts"] == [] and entry["ended"] is False
    assert store.open_run(run.id, runs_dir).behind()["mlflow"] == failed.events - failed.cursor

    (tmp_path / "mlartifacts").unlink()
    done = tracelet.sync(run, to="mlflow", config={"tracking_uri": uri}).backends["mlflow"]
    assert done.complete and done.run_id == failed.run_id
    (mlrun,) = mlflow_runs(uri, "failing-artifacts", run.id)
    assert [f.path for f in MlflowClient(uri).list_artifacts(mlrun.info.run_id)] == ["weights.txt"]
    assert history(uri, mlrun.info.run_id, "loss") == expected(run.path, "loss")  # each point once
