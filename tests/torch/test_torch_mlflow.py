"""TensorBoard capture into MLflow (a real sqlite store), and the spec's "Basic Usage" example as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import tracelet
from tracelet_testsupport.torch import config, event_scalars

# The spec's "Basic Usage" example, verbatim (docs/api-reference: Usage Examples).
BASIC_USAGE = """
import tracelet
from torch.utils.tensorboard import SummaryWriter

# Start experiment tracking
experiment = tracelet.start_logging(
    exp_name="my_experiment",
    project="my_project",
    backend="mlflow"
)

# Use TensorBoard normally - metrics automatically captured
writer = SummaryWriter()
writer.add_scalar('loss', 0.5, 0)
writer.add_scalar('accuracy', 0.95, 0)

# Direct API usage
experiment.log_params({
    "learning_rate": 0.01,
    "batch_size": 32
})

experiment.log_artifact("model.pth")

# Stop tracking
tracelet.stop_logging()
"""


def test_spec_basic_usage_as_written(tmp_path: Path, sqlite_uri: str, python_env: dict[str, str]) -> None:
    torch.save(nn.Linear(2, 1).state_dict(), tmp_path / "model.pth")
    env = {**python_env, "MLFLOW_TRACKING_URI": sqlite_uri, "TRACELET_TRACK_SYSTEM": "false",
           "TRACELET_TRACK_GIT": "false", "TRACELET_DIR": str(tmp_path / "tracelet-store")}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", BASIC_USAGE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=180)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]

    from mlflow import MlflowClient

    client = MlflowClient(sqlite_uri)
    experiment = client.get_experiment_by_name("my_project")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "my_experiment" and run.info.status == "FINISHED"
    assert run.data.params == {"learning_rate": "0.01", "batch_size": "32"}
    assert {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)] for k in run.data.metrics} == {
        "loss": [(0, 0.5)], "accuracy": [(0, 0.95)],
    }  # fmt: skip
    stored = [f.path for f in client.list_artifacts(run.info.run_id, "model.pth")] or [
        f.path for f in client.list_artifacts(run.info.run_id)
    ]
    assert any("model.pth" in p for p in stored)
    (logdir,) = (tmp_path / "runs").iterdir()
    events = event_scalars(logdir)
    assert {k: [(s, v) for s, v, _ in pts] for k, pts in events.items()} == {
        "loss": [(0, 0.5)],
        "accuracy": [(0, pytest.approx(0.95))],
    }  # the writer's own event files (./runs/<date>_<host>/) are written as always


def test_training_scalars_reach_mlflow_with_step_and_walltime(tmp_path: Path, sqlite_uri: str) -> None:
    exp = tracelet.start_logging("tb-mlflow", project="tb", backend="mlflow",
                                 config=config(mlflow_tracking_uri=sqlite_uri))  # fmt: skip
    writer = SummaryWriter(tmp_path / "tb")
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    for step in range(20):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        writer.add_scalar("train/loss", loss.detach(), step, walltime=1_700_000_000.25 + step)
        writer.add_scalars("lr", {"group0": 0.1}, step, walltime=1_700_000_000.25 + step)
    writer.close()
    report = tracelet.stop_logging() or exp.report
    run_id = report.backends["mlflow"].details["run_id"]

    from mlflow import MlflowClient

    client = MlflowClient(sqlite_uri)
    events = event_scalars(tmp_path / "tb")
    history = sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, "train/loss"))
    assert [(s, v) for s, v, _ in history] == [(s, v) for s, v, _ in events["train/loss"]]
    assert [t for _, _, t in history] == [int((1_700_000_000.25 + s) * 1000) for s in range(20)]  # walltime, in ms
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "lr/group0")] == [(s, 0.1) for s in range(20)]
