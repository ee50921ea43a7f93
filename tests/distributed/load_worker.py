"""One process of the load test / benchmark: its own run, `points` metric points, as fast as it can.

Usage: python load_worker.py <mode> <tracking-uri> <project> <index> <points> <out-dir>
  mode `tracelet`: tracelet.start_logging(..., backend="mlflow") and log_metric per point, then stop().
  mode `raw`: MlflowClient.log_batch of 1000 points per call (MLflow's own limit), the baseline.

With LOAD_BARRIER=1 every process waits, once set up, for a file `<out-dir>/go` before its first point.
Point k of process i: name `load/m<k % 4>`, value `i * 1e6 + k`, step `k`. Writes `<out>/<index>.json` with
the MLflow run id, when logging started and ended (the calls), and when everything was delivered.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def barrier(out_dir: Path, i: int) -> None:
    """With LOAD_BARRIER=1 (the benchmark): say ready, then wait for `go`, so all processes start together."""
    if os.environ.get("LOAD_BARRIER") != "1":
        return
    (out_dir / f"{i}.ready").write_text("")
    while not (out_dir / "go").exists():
        time.sleep(0.01)


def main() -> None:
    mode, uri, project, index, points, out = sys.argv[1:7]
    i, n = int(index), int(points)
    out_dir = Path(out)
    result: dict[str, object] = {"index": i, "points": n}
    if mode == "tracelet":
        import tracelet

        exp = tracelet.start_logging(f"load-{i}", project=project, backend="mlflow",
                                     config={"mlflow_tracking_uri": uri})  # fmt: skip
        exp.flush()  # the run exists in MLflow before the clock starts, as it does for the raw way below
        barrier(out_dir, i)
        t0 = time.time()
        log = exp.log_metric
        for k in range(n):
            log(f"load/m{k % 4}", float(i * 1_000_000 + k), k)
        t1 = time.time()
        (out_dir / f"{i}.logged").write_text(str(t1))
        exp.flush()
        result["tf"] = time.time()  # every point delivered; stop() then ends the run
        report = exp.stop()
        t2 = time.time()
        assert report is not None
        mlflow = report.backends["mlflow"]
        result.update(run_id=mlflow.details.get("run_id"), complete=report.complete, delivered=mlflow.delivered,
                      errors=mlflow.errors)  # fmt: skip
    else:
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name(project)
        experiment_id = experiment.experiment_id if experiment else None
        if experiment_id is None:
            try:
                experiment_id = client.create_experiment(project)
            except Exception:  # another process created it meanwhile
                experiment_id = client.get_experiment_by_name(project).experiment_id
        run_id = client.create_run(experiment_id, run_name=f"raw-{i}").info.run_id
        barrier(out_dir, i)
        t0 = time.time()
        batch = []
        for k in range(n):
            batch.append(Metric(f"load/m{k % 4}", float(i * 1_000_000 + k), int(time.time() * 1000), k))
            if len(batch) == 1000:
                client.log_batch(run_id, metrics=batch)
                batch = []
        if batch:
            client.log_batch(run_id, metrics=batch)
        t1 = time.time()
        client.set_terminated(run_id)  # inside the clock, as tracelet's stop() ends its run
        t2 = time.time()
        result.update(run_id=run_id, complete=True)
    result.update(t0=t0, t1=t1, t2=t2)
    (out_dir / f"{i}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
