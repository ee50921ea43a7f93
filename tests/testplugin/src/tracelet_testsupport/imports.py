"""Runs written by MLflow's own client (no Tracelet involved), and comparisons of an imported run with them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

T0 = 1_700_000_000_000  # ms: the chosen timestamps are far from "now", so a replaced time would show
METRICS = ("train/loss", "val/acc", "lr")
STEPS = 1000


def timestamp(key_index: int, step: int) -> int:
    """A chosen, irregular time for each point (ms): not the time of logging."""
    return T0 + step * 1500 + key_index * 7 + (step % 13)


def value(key_index: int, step: int) -> float:
    if key_index == 1 and step == 500:
        return math.nan
    return (key_index + 1) / (step + 1) + step * 1e-6


def write_mlflow_runs(uri: str, experiment: str, tmp: Path, steps: int = STEPS) -> dict[str, str]:
    """A FAILED parent run (3 metrics x `steps` points at chosen times, params, tags, system tags, an artifact
    file and a folder) and a FINISHED nested child run; returns their MLflow run ids."""
    client = MlflowClient(uri)
    exp_id = client.create_experiment(experiment)
    parent = client.create_run(
        exp_id,
        start_time=T0 - 5000,
        run_name="parent",
        tags={
            "team": "vision",
            "mlflow.user": "ada",
            "mlflow.source.name": "train.py",
            "mlflow.source.git.commit": "abc123",
            "mlflow.note.content": "first try",
        },
    )
    pid = parent.info.run_id
    batch: list[Metric] = []
    for step in range(steps):
        for k, key in enumerate(METRICS):
            batch.append(Metric(key, value(k, step), timestamp(k, step), step))
            if len(batch) == 1000:
                client.log_batch(pid, metrics=batch)
                batch = []
    client.log_batch(
        pid, metrics=batch, params=[Param("lr", "0.01"), Param("optimizer", "adam")], tags=[RunTag("stage", "pretrain")]
    )
    (tmp / "art").mkdir(parents=True, exist_ok=True)
    (tmp / "art" / "notes.txt").write_text("hello from mlflow\n")
    (tmp / "art" / "model").mkdir(exist_ok=True)
    (tmp / "art" / "model" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (tmp / "art" / "model" / "sub").mkdir(exist_ok=True)
    (tmp / "art" / "model" / "sub" / "cfg.json").write_text('{"depth": 4}')
    client.log_artifact(pid, str(tmp / "art" / "notes.txt"))
    client.log_artifacts(pid, str(tmp / "art" / "model"), artifact_path="model")
    client.set_terminated(pid, "FAILED", end_time=T0 + steps * 1500 + 999)
    child = client.create_run(exp_id, start_time=T0 + 100, run_name="child", tags={"mlflow.parentRunId": pid})
    cid = child.info.run_id
    client.log_batch(
        cid,
        metrics=[Metric("fold/score", 0.5 + i / 10, T0 + 200 + i, i) for i in range(5)],
        params=[Param("fold", "1")],
    )
    client.set_terminated(cid, "FINISHED", end_time=T0 + 9000)
    return {"parent": pid, "child": cid}


def mlflow_points(uri: str, run_id: str) -> dict[str, list[tuple[int, Any, int]]]:
    """metric -> sorted (step, value, timestamp ms), read with MLflow's own client."""
    client = MlflowClient(uri)
    out = {}
    for key in client.get_run(run_id).data.metrics:
        out[key] = sorted(
            ((m.step, _nan(m.value), m.timestamp) for m in client.get_metric_history(run_id, key)), key=repr
        )
    return out


def imported_points(run: Any) -> dict[str, list[tuple[int, Any, int]]]:
    """metric -> sorted (step, value, timestamp ms) of an imported local run."""
    return {
        name: sorted(((p.step, _nan(p.value), round(p.timestamp * 1000)) for p in points), key=repr)
        for name, points in run.metrics().items()
    }


def _nan(v: float) -> Any:
    return "nan" if v != v else v
