"""Helpers shared by the sync tests: MLflow runs by Tracelet run id, metric histories, local runs."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

import tracelet
from tracelet import store
from tracelet_testsupport.mlflow import journal_metrics


def mlflow_runs(uri: str, project: str, run_id: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(project)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`tracelet.run_id` = '{run_id}'")


def history(uri: str, mlflow_run: str, name: str) -> list[tuple[float, int, int]]:
    points = MlflowClient(uri).get_metric_history(mlflow_run, name)
    return sorted(((m.value, m.step, m.timestamp) for m in points), key=lambda t: (t[1], t[2]))


def expected(run_dir: Path, name: str) -> list[tuple[float, int, int]]:
    return sorted(
        ((v, s, int(ts * 1000)) for _, n, v, s, ts in journal_metrics(run_dir) if n == name), key=lambda t: (t[1], t[2])
    )


def local_run(runs_dir: Path, name: str, points: int, project: str = "sync-proj") -> store.LocalRun:
    exp = tracelet.Experiment(
        name,
        backend=["local"],
        project=project,
        settings=tracelet.TraceletSettings(dir=str(runs_dir), track_system=False),
    )
    exp.start()
    exp.log_params({"lr": 0.01, "layers": 3})
    exp.set_tags({"team": "vision"})
    for i in range(points):
        exp.log_metric("loss", 1.0 / (i + 1), i)
        if i % 10 == 0:
            exp.log_metric("val/acc", i / points, i * 100)  # a second step scale
    exp.stop()
    return store.open_run(exp.id, runs_dir)


def to_mlflow(runs_dir: Path, uri: str) -> list[str]:
    """The arguments that end a `tracelet sync` / `import-tb` command line here: the runs folder and the MLflow store."""
    return ["--dir", str(runs_dir), "--to", "mlflow", "--config", f"tracking_uri={uri}"]
