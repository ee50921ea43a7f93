"""`tracelet import --from mlflow` speed and memory, against reading the same run with MLflow's own client.

    python benchmarks/import_mlflow.py [--points 300000] [--memory-points 1000000] [--repeats 3]

1. rate: an MLflow sqlite store holds one run of `--points` metric points (3 metrics; how it is
   written: `make_store`). `tracelet.import_runs(uri, source="mlflow")` imports it into a fresh local store
   (journal written, run.json last) against reading the same points with `MlflowClient.get_metric_history`, one
   call per metric (what a hand-written export does; nothing written). Both include creating their MlflowClient. Both count the points (100% must come
   back). Target: import >= 1.0x get_metric_history's points/s.
2. memory: a run of `--memory-points` points, imported in a fresh interpreter, against `get_metric_history` of
   the same run in another: each one's peak resident memory (ru_maxrss) above what it held once its imports
   and its MlflowClient were set up. The import's is bounded by one batch (the journal frame and the store's
   streamed query), not by the run's size. (tracemalloc would count Python objects only, and slows a 1M-point
   `get_metric_history` past any patience.)

Medians over `--repeats`, the two ways interleaved so both see the same machine noise, each after a full GC.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402

import tracelet  # noqa: E402
from tracelet import store  # noqa: E402

KEYS = ("train/loss", "val/acc", "lr")
TARGET = 1.0
TARGET_MISSED = 3


def make_store(root: Path, points: int) -> tuple[str, str]:
    """A sqlite store with one run of `points` points over KEYS; returns (uri, run id).

    The run, its first point of each metric and its end go through `MlflowClient`; the other points are inserted
    into the store's `metrics` table in one `executemany` on MLflow's own engine and table model, as
    `log_batch` would store them: `log_batch` writes about 1,200 points/s into sqlite on the 2-core machine
    these figures come from, so a 1M-point run would take a quarter of an hour to create.
    """
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("bench")
    run_id = client.create_run(exp_id, run_name="bench").info.run_id
    t0 = 1_700_000_000_000
    per_key = points // len(KEYS)
    client.log_batch(run_id, metrics=[Metric(key, 1.0 / (1 + k), t0 + k, 0) for k, key in enumerate(KEYS)])
    engine = client._tracking_client.store.engine
    chunk = 30_000  # steps per executemany: the benchmark's own memory stays small too
    with engine.begin() as conn:
        for first in range(1, per_key, chunk):
            rows = [
                {
                    "key": key,
                    "value": 1.0 / (step + 1 + k),
                    "timestamp": t0 + step * 10 + k,
                    "step": step,
                    "is_nan": False,
                    "run_uuid": run_id,
                }
                for step in range(first, min(first + chunk, per_key))
                for k, key in enumerate(KEYS)
            ]
            conn.execute(sa.insert(SqlMetric.__table__), rows)
    client.set_terminated(run_id, "FINISHED")
    return uri, run_id


def do_import(uri: str, run_id: str, root: Path, count_back: bool = False) -> int:
    """Import the run into a fresh local store; the events written (or, with `count_back`, the points read
    back from its journal)."""
    dest = Path(tempfile.mkdtemp(prefix="import-", dir=root))
    try:
        (result,) = tracelet.import_runs(uri, source="mlflow", config={"run_ids": [run_id]}, dir=dest)
        assert result.error is None, result.error
        if count_back:
            return sum(len(v) for v in store.LocalRun(result.path).metrics().values())
        return int(result.events)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def do_read(uri: str, run_id: str) -> int:
    client = MlflowClient(uri)
    return sum(len(client.get_metric_history(run_id, key)) for key in KEYS)


def timed(fn: object, *args: object) -> tuple[float, int]:
    gc.collect()
    t0 = time.perf_counter()
    n = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - t0, n


def peak_rss(way: str, uri: str, run_id: str, root: Path) -> tuple[float, float, int]:
    """(baseline MiB, peak MiB, points) of `way` ("import" or "read") run in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", way, uri, run_id, str(root)], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[-3]), float(out[-2]), int(out[-1])


def measure(way: str, uri: str, run_id: str, root: Path) -> None:
    MlflowClient(uri).get_run(run_id)  # the store's engine and tables loaded, as both ways need them
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = do_import(uri, run_id, root) if way == "import" else do_read(uri, run_id)
    top = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{base:.1f} {top:.1f} {n}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=300_000)
    parser.add_argument("--memory-points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--measure", nargs=4, metavar=("WAY", "URI", "RUN_ID", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        way, uri, run_id, where = args.measure
        measure(way, uri, run_id, Path(where))
        return 0
    root = Path(tempfile.mkdtemp(prefix="tracelet-bench-import-"))
    try:
        t0 = time.perf_counter()
        (root / "rate").mkdir()
        uri, run_id = make_store(root / "rate", args.points)
        expected = (args.points // len(KEYS)) * len(KEYS)
        print(f"store of {expected:,} points written in {time.perf_counter() - t0:.0f} s", flush=True)
        assert do_import(uri, run_id, root, count_back=True) == expected, "the import lost points"
        imports, reads = [], []
        for _ in range(args.repeats):
            secs, n = timed(do_import, uri, run_id, root)
            assert n == expected, f"import wrote {n} of {expected} events"
            imports.append(expected / secs)
            secs, n = timed(do_read, uri, run_id)
            assert n == expected, f"get_metric_history read {n} of {expected}"
            reads.append(expected / secs)
        rate_import, rate_read = statistics.median(imports), statistics.median(reads)
        ratio = rate_import / rate_read
        mark = "" if ratio >= TARGET else "  MISSED"
        print(f"import from sqlite      {rate_import:12,.0f} points/s (median of {args.repeats})")
        print(f"get_metric_history      {rate_read:12,.0f} points/s")
        print(f"ratio                   {ratio:12.2f}x  (target >= {TARGET:.1f}x){mark}", flush=True)

        (root / "memory").mkdir()
        t0 = time.perf_counter()
        uri, run_id = make_store(root / "memory", args.memory_points)
        big = (args.memory_points // len(KEYS)) * len(KEYS)
        print(f"store of {big:,} points written in {time.perf_counter() - t0:.0f} s", flush=True)
        base, top, n = peak_rss("import", uri, run_id, root)
        assert n == big, f"import wrote {n} of {big}"
        print(f"import of {big:,} points: peak RSS {top:7.1f} MiB, {top - base:7.1f} MiB above its start", flush=True)
        base, top, n = peak_rss("read", uri, run_id, root)
        assert n == big
        print(f"get_metric_history of the same run: peak RSS {top:7.1f} MiB, {top - base:7.1f} MiB above its start")
        return 0 if ratio >= TARGET else TARGET_MISSED
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
