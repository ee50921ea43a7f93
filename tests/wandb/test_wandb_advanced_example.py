"""The spec's "Advanced Configuration" example, as written, with both trackers installed: MLflow's URI pointed
at a real local `mlflow server`, W&B offline. Both hold every point the run journaled."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import tracelet
from tracelet.core.engine import journal
from tracelet_testsupport.wandb import run_of

if TYPE_CHECKING:
    from tracelet_testsupport.mlflow import MlflowServer


@pytest.mark.slow
def test_advanced_configuration_example(mlflow_server: MlflowServer, capsys: pytest.CaptureFixture[str]) -> None:
    # --- the spec's example; only the tracking URI names the test's server instead of localhost:5000 ---
    experiment = tracelet.start_logging(
        exp_name="advanced_experiment",
        project="research_project",
        backend=["mlflow", "wandb"],
        config={
            "track_system": True,
            "track_git": True,
            "track_env": True,
            "metrics_interval": 10.0,
            "mlflow_tracking_uri": mlflow_server.uri,
            "wandb_project": "my-wandb-project",
        },
    )

    # Get current experiment for direct manipulation
    current_exp = tracelet.get_active_experiment()
    print(f"Experiment ID: {current_exp.experiment_id}")
    print(f"Active backends: {[b.name for b in current_exp.backends]}")
    # --- end of the example; then some training ---
    assert current_exp is experiment
    printed = capsys.readouterr().out
    assert f"Experiment ID: {experiment.experiment_id}" in printed
    assert "Active backends: ['mlflow', 'wandb']" in printed

    for epoch in range(3):
        for batch in range(200):
            step = epoch * 200 + batch
            experiment.log_metric("train/loss", 1.0 / (step + 1), step)
            experiment.log_metric("train/acc", step / 600, step)
        experiment.log_metric("val/loss", 0.5 / (epoch + 1), epoch)  # a second step scale
    experiment.log_params({"lr": 0.01, "optimizer": {"name": "sgd", "momentum": 0.9}})
    run_dir = Path(experiment.run_dir)
    tracelet.stop_logging()
    report = experiment.report
    assert report is not None and report.complete, report

    logged: dict[str, list[tuple[int, float]]] = {}
    for _, event in journal.read_events(run_dir / journal.EVENTS_FILE):
        if event[0] == "m":
            logged.setdefault(str(event[1]), []).append((event[3], event[2]))
    assert len(logged["train/loss"]) == 600 and len(logged["val/loss"]) == 3

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    mlflow_run = client.get_run(report.backends["mlflow"].details["run_id"])
    assert mlflow_run.info.status == "FINISHED" and mlflow_run.info.run_name == "advanced_experiment"
    assert client.get_experiment(mlflow_run.info.experiment_id).name == "research_project"
    wb = run_of(report)
    assert wb.run.project == "my-wandb-project" and wb.run.display_name == "advanced_experiment"
    assert wb.exit_code == 0
    for name, points in logged.items():  # every point, including the system collectors' samples
        history = client.get_metric_history(mlflow_run.info.run_id, name)
        stored = sorted((m.step, m.value) for m in history)
        assert _same(stored, sorted(points)), f"MLflow {name}"
        assert _same(sorted(wb.points(name)), sorted(points)), f"W&B {name}"
    assert mlflow_run.data.params["lr"] == "0.01"
    assert wb.config["lr"] == 0.01 and wb.config["optimizer"] == {"name": "sgd", "momentum": 0.9}


def _same(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    return len(a) == len(b) and all(
        sa == sb and (va == vb or (math.isnan(va) and math.isnan(vb))) for (sa, va), (sb, vb) in zip(a, b)
    )
