"""`tracelet sync` and `tracelet import-tb` speed, each against its raw counterpart, measured side by side.

    python benchmarks/sync_throughput.py [--points 50000] [--tb-points 50000] [--repeats 3]

1. sync: a finished local run of `--points` metric points is synced into a fresh MLflow sqlite store
   (`tracelet.sync(run, to="mlflow")`, from reading the journal until the MLflow run is ended), against
   `MlflowClient.log_batch` of the same points (1000 per call, entities built in the loop) into a fresh
   store of its own. Both count their points back (100% must land). Target: sync >= 0.9x log_batch.
2. import-tb: a logdir written by torch's SummaryWriter with `--tb-points` scalars is imported
   (`import_tb`, journal written) against loading it with TensorBoard's `EventAccumulator` (every scalar
   kept: `size_guidance={"scalars": 0}`). Target: import >= 1.0x the EventAccumulator's events/s.

Medians over `--repeats`, the ways interleaved so both see the same machine noise, each after a full GC.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TRACELET_TRACK_SYSTEM", "false")
os.environ.setdefault("TRACELET_TRACK_ENV", "false")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402

import tracelet  # noqa: E402
from tracelet import store  # noqa: E402
from tracelet.core.engine import journal  # noqa: E402

NAME = "loss"


def fresh_store(root: Path, label: str) -> tuple[str, MlflowClient, str]:
    folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("bench", artifact_location=(folder / "artifacts").as_uri())
    return uri, client, exp_id


def make_run(root: Path, points: int) -> store.LocalRun:
    settings = tracelet.TraceletSettings(dir=str(root / "runs"), track_system=False)
    exp = tracelet.Experiment("bench", backend=["local"], project="bench", settings=settings)
    exp.start()
    for i in range(points):
        exp.log_metric(NAME, 1.0 / (i + 1), i)
    exp.stop()
    return store.open_run(exp.id, root / "runs")


def bench_sync(root: Path, run: store.LocalRun, points: int) -> float:
    uri, client, _ = fresh_store(root, "sync")
    meta = journal.read_meta(run.path)
    meta.pop("sync", None)  # each repeat delivers the whole run again, into its fresh store
    journal.write_meta(run.path, meta)
    gc.collect()
    t0 = time.perf_counter()
    report = tracelet.sync(run.path, to="mlflow", config={"tracking_uri": uri})
    elapsed = time.perf_counter() - t0
    res = report.backends["mlflow"]
    got = len(client.get_metric_history(res.run_id, NAME))
    assert res.complete and got == points, (res, got)
    return elapsed


def bench_log_batch(root: Path, run: store.LocalRun, points: int) -> float:
    uri, client, exp_id = fresh_store(root, "raw")
    values = [(e[2], e[3], int(e[4] * 1000)) for e in run.events() if e[0] == "m"]
    gc.collect()
    t0 = time.perf_counter()
    run_id = client.create_run(exp_id).info.run_id
    for start in range(0, len(values), 1000):
        client.log_batch(run_id, metrics=[Metric(NAME, v, ts, s) for v, s, ts in values[start : start + 1000]])
    client.set_terminated(run_id)
    elapsed = time.perf_counter() - t0
    assert len(client.get_metric_history(run_id, NAME)) == points
    return elapsed


def write_tb(logdir: Path, points: int) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(logdir), max_queue=1000)
    for i in range(points):
        writer.add_scalar("train/loss", 1.0 / (i + 1), i)
    writer.close()


def bench_import(root: Path, logdir: Path, points: int) -> float:
    from tracelet.transfer.tbimport import import_tb

    dest = Path(tempfile.mkdtemp(prefix="import-", dir=root))
    gc.collect()
    t0 = time.perf_counter()
    (result,) = import_tb(logdir, dir=dest)
    elapsed = time.perf_counter() - t0
    assert result.events == points, result
    shutil.rmtree(dest)
    return elapsed


def bench_accumulator(logdir: Path, points: int) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    gc.collect()
    t0 = time.perf_counter()
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    elapsed = time.perf_counter() - t0
    assert len(acc.Scalars("train/loss")) == points
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--tb-points", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracelet-sync-bench-"))
    try:
        run = make_run(root, args.points)
        logdir = root / "tb"
        write_tb(logdir, args.tb_points)
        times: dict[str, list[float]] = {"sync": [], "log_batch": [], "import-tb": [], "EventAccumulator": []}
        for _ in range(args.repeats):
            times["log_batch"].append(bench_log_batch(root, run, args.points))
            times["sync"].append(bench_sync(root, run, args.points))
            times["EventAccumulator"].append(bench_accumulator(logdir, args.tb_points))
            times["import-tb"].append(bench_import(root, logdir, args.tb_points))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"points: sync {args.points:,}, import-tb {args.tb_points:,}; medians of {args.repeats}")
        for way, n in (
            ("log_batch", args.points),
            ("sync", args.points),
            ("EventAccumulator", args.tb_points),
            ("import-tb", args.tb_points),
        ):
            print(f"  {way:<17} {med[way]:8.3f} s  {n / med[way]:>12,.0f} points/s")
        sync_ratio = med["log_batch"] / med["sync"]
        import_ratio = med["EventAccumulator"] / med["import-tb"]
        print(f"sync / log_batch:             {sync_ratio:.2f}x  (target >= 0.90x)")
        print(f"import-tb / EventAccumulator: {import_ratio:.2f}x  (target >= 1.00x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
