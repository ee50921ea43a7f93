"""Many processes into one MLflow server on PostgreSQL, and what a non-reporting rank pays per call.

    python benchmarks/distributed.py [--processes 8] [--points 20000] [--repeats 3]

Starts its own PostgreSQL 15 (initdb/pg_ctl, as an unprivileged user when run as root) and an
`mlflow server --backend-store-uri postgresql+psycopg2://...` on 127.0.0.1 (tracelet_testsupport.distributed, in tests/testplugin).

1. Aggregate points/s: `--processes` processes at once, each its own run of `--points` points.
   - tracelet: `exp.log_metric` per point, timed from the first call to `stop()` returning (all delivered).
   - log_batch: `MlflowClient.log_batch`, 1000 points per call (MLflow's limit), the direct way.
   Each is measured from the earliest first call to the latest "all delivered" over all processes, the two
   ways interleaved over `--repeats` rounds (each round in a fresh MLflow experiment); every point is counted
   back from PostgreSQL (100% must land). Printed: the ratio of the medians and the median of the per-round
   ratios. Both ways send the same requests (1000 points each); the server's time per request dominates.
   Target: tracelet >= 0.9x log_batch.
2. The hot-path cost of `log_metric` on a rank that does not report (distributed=rank0, RANK=1) beside
   the same call on rank 0 (a running experiment), per-call medians of 1000-call batches, in one process.
   Target: the no-op costs no more than rank 0's call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The tests' PostgreSQL and server helpers (tracelet_testsupport), without installing the test plugins into the
# environment the benchmarks measure in.
sys.path.insert(0, str(HERE.parent / "tests" / "testplugin" / "src"))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from tracelet_testsupport.distributed import MlflowPgServer, Postgres, pg_bindir  # noqa: E402

WORKER = HERE.parent / "tests" / "distributed" / "load_worker.py"
SKIPPED = 77  # exit status benchmarks/run.py reports as "skipped": PostgreSQL is not installed here


def check_prerequisites() -> None:
    """Stop before any work when the PostgreSQL driver or server is missing, saying what to install."""
    # Imported here, not at the end when the points are counted: without it the mlflow server would fail
    # half-way through, and a missing module is what benchmarks/run.py reports as "skipped".
    import psycopg2  # noqa: F401

    try:
        pg_bindir()
    except RuntimeError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        sys.exit(SKIPPED)


def count_points(pg: Postgres, project: str) -> int:
    import psycopg2

    with psycopg2.connect(pg.uri.replace("postgresql+psycopg2://", "postgresql://")) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
            "JOIN experiments e ON e.experiment_id = r.experiment_id WHERE e.name = %s",
            (project,),
        )
        return int(cur.fetchone()[0])


def one_round(mode: str, server: MlflowPgServer, processes: int, points: int, root: Path) -> float:
    """Aggregate points/s of `processes` processes logging `points` each in `mode`."""
    project = f"bench-{mode}-{uuid.uuid4().hex[:8]}"
    out = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=root))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env.update(TRACELET_TRACK_SYSTEM="false", TRACELET_TRACK_ENV="false", TRACELET_TRACK_GIT="false",
               TRACELET_DIR=str(out / "runs"), TRACELET_STOP_TIMEOUT="600", OMP_NUM_THREADS="1",
               LOAD_BARRIER="1")  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), mode, server.uri, project, str(i), str(points), str(out)], env=env
        )  # fmt: skip
        for i in range(processes)
    ]
    # Imports and run creation take seconds under load: the clock starts when every process is ready.
    while sum((out / f"{i}.ready").exists() for i in range(processes)) < processes:
        if any(p.poll() not in (None, 0) for p in procs):
            raise SystemExit(f"a {mode} worker failed while starting")
        time.sleep(0.05)
    (out / "go").write_text("")
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a {mode} worker failed ({p.returncode})")
    results = [json.loads((out / f"{i}.json").read_text()) for i in range(processes)]
    start, end = min(r["t0"] for r in results), max(r["t2"] for r in results)
    total = count_points(server.pg, project)
    if total != processes * points:
        raise SystemExit(f"{mode}: {total} of {processes * points} points landed")
    return total / (end - start)


def hot_path_costs(calls: int = 1000, batches: int = 300) -> tuple[float, float]:
    """(rank 1 no-op, rank 0) per-call seconds of log_metric, medians over `batches` batches."""
    import tracelet
    from tracelet.core.run import distributed

    os.environ.update(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1", TRACELET_TRACK_SYSTEM="false")
    os.environ.update(TRACELET_LOCAL_STORE="false", TRACELET_TRACK_ENV="false", TRACELET_TRACK_GIT="false")
    try:
        idle = tracelet.Experiment("bench-idle", backend=["local"]).start()
        assert idle._distributed is not None and not idle._distributed.active
        os.environ.update(RANK="0", LOCAL_RANK="0", TRACELET_LOCAL_STORE="true")
        with tempfile.TemporaryDirectory() as folder:
            os.environ["TRACELET_DIR"] = folder
            rank0 = tracelet.Experiment("bench-rank0", backend=["local"]).start()
            assert rank0._distributed is not None and rank0._distributed.active
            times: dict[str, list[float]] = {"idle": [], "rank0": []}
            for _ in range(batches):
                for label, exp in (("idle", idle), ("rank0", rank0)):
                    log = exp.log_metric
                    t = time.perf_counter()
                    for i in range(calls):
                        log("loss", 0.5, i)
                    times[label].append((time.perf_counter() - t) / calls)
            rank0.stop()
        idle.stop()
    finally:
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            os.environ.pop(key, None)
        del distributed
    return statistics.median(times["idle"]), statistics.median(times["rank0"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    check_prerequisites()

    idle, rank0 = hot_path_costs()
    print(f"log_metric on a non-reporting rank (no-op): {idle * 1e6:.3f} us/call")
    print(
        f"log_metric on rank 0:                      {rank0 * 1e6:.3f} us/call  (no-op / rank 0 = {idle / rank0:.2f}x)"
    )

    root = Path(tempfile.mkdtemp(prefix="tracelet-bench-dist-"))
    pg = Postgres()
    server = MlflowPgServer(pg, root)
    try:
        pg.start()
        server.start()
        one_round("raw", server, 2, 2000, root)  # warm-up: the server's first requests, tables, caches
        rates: dict[str, list[float]] = {"tracelet": [], "log_batch": []}
        for _ in range(args.repeats):
            for mode in ("tracelet", "log_batch"):
                rates[mode].append(one_round(mode if mode == "tracelet" else "raw", server, args.processes,
                                             args.points, root))  # fmt: skip
        tracelet_rate, raw_rate = statistics.median(rates["tracelet"]), statistics.median(rates["log_batch"])
        print(f"{args.processes} processes x {args.points} points into mlflow server on PostgreSQL, all landed:")
        print(
            f"  tracelet:  {tracelet_rate:,.0f} points/s  (rounds: {', '.join(f'{r:,.0f}' for r in rates['tracelet'])})"
        )
        print(f"  log_batch: {raw_rate:,.0f} points/s  (rounds: {', '.join(f'{r:,.0f}' for r in rates['log_batch'])})")
        # Rounds run back to back, so each pair saw the same machine; the median of the pairs' ratios is the
        # figure least moved by other load on a shared machine.
        paired = statistics.median(t / r for t, r in zip(rates["tracelet"], rates["log_batch"]))
        print(
            f"  tracelet / log_batch = {tracelet_rate / raw_rate:.2f}x (medians), {paired:.2f}x (median of "
            "per-round ratios)  (target >= 0.9x)"
        )
    finally:
        server.kill()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)  # workers' run folders and the server log: nothing to keep


if __name__ == "__main__":
    main()
