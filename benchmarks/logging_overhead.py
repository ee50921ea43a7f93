"""Calling-thread cost of `log_metric`, `import tracelet` time, and end-to-end throughput into the journal.

    python benchmarks/logging_overhead.py [--batches 1000] [--points 1000000]

Everything is measured in this one run, side by side, and reported as medians (the machines here are small
and noisy). Per-call times are per-batch averages of 1000 calls (timing single calls would mostly measure the
timer); p50/p99 are over batches, interleaved with batches of the baseline so both see the same noise.

Baseline: `deque.append` of the same 5-tuple the experiment appends, built in the same loop with the same
`time.time()` stamp: what any in-process queue must at least do. Targets: p50 <= 0.6 us and <= 4x the baseline;
`import tracelet` <= 100 ms; >= 100k points/s from the first call until `stop()` returns with every point
in the journal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque

import tracelet
from tracelet.store import open_run

BATCH = 1000


def per_call(batches: int, root: str) -> tuple[list[float], list[float]]:
    exp = tracelet.start_logging("bench-calls", backend="local", config={"dir": root, "track_system": False})
    log = exp.log_metric
    queue: deque = deque()
    append = queue.append
    now = time.time
    clock = time.perf_counter_ns
    ours: list[float] = []
    base: list[float] = []
    for _ in range(batches):
        t0 = clock()
        for i in range(BATCH):
            append(("m", "loss", 0.5, i, now()))
        t1 = clock()
        for i in range(BATCH):
            log("loss", 0.5, i)
        t2 = clock()
        base.append((t1 - t0) / BATCH / 1000)
        ours.append((t2 - t1) / BATCH / 1000)
        queue.clear()
    tracelet.stop_logging()
    return ours, base


def throughput(points: int, root: str) -> tuple[float, int]:
    exp = tracelet.start_logging("bench-throughput", backend="local", config={"dir": root, "track_system": False})
    log = exp.log_metric
    t0 = time.perf_counter()
    for i in range(points):
        log("loss", 0.5, i)
    tracelet.stop_logging()
    elapsed = time.perf_counter() - t0
    landed = len(open_run(exp.id, root).metrics()["loss"])
    return points / elapsed, landed


def import_time(runs: int = 9) -> tuple[float, float]:
    code = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}

    def median(module: str) -> float:
        samples = [
            float(subprocess.run([sys.executable, "-c", code.format(module)], capture_output=True, text=True,
                                 env=env, check=True).stdout)
            for _ in range(runs)
        ]
        return statistics.median(samples) * 1000

    return median("tracelet"), median("pluggy, attrs")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        ours, base = per_call(args.batches, root)
        rate, landed = throughput(args.points, root)
    imp, deps = import_time()
    p50, p99, b50, b99 = pct(ours, 0.5), pct(ours, 0.99), pct(base, 0.5), pct(base, 0.99)
    print(f"log_metric on the calling thread   p50 {p50:.3f} us   p99 {p99:.3f} us")
    print(f"deque.append of the same tuple     p50 {b50:.3f} us   p99 {b99:.3f} us")
    print(f"ratio of the medians               {p50 / b50:.2f}x"
          f"   (target <= 4x, p50 <= 0.6 us)")
    print(f"import tracelet                    {imp:.1f} ms   (its dependencies alone: {deps:.1f} ms; target <= 100 ms)")
    print(f"first call -> stop() returned      {rate:,.0f} points/s   ({landed:,}/{args.points:,} in the journal;"
          f" target >= 100k/s)")


if __name__ == "__main__":
    main()
