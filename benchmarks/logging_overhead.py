"""Calling-thread cost of `log_metric`, `import tracelet` time, and end-to-end throughput into the journal.

    python benchmarks/logging_overhead.py [--batches 1000] [--points 1000000]

Everything is measured in this one run, side by side, and reported as medians (the machines here are small
and noisy). Per-call times are per-batch averages of 1000 calls (timing single calls would mostly measure the
timer); p50/p99 are over batches, interleaved with batches of the baseline so both see the same noise.

Baseline: `deque.append` of the same 5-tuple the experiment appends, built in the same loop with the same
`time.time()` stamp: what any in-process queue must at least do. Targets: p50 <= 0.6 us and <= 4x the baseline;
`import tracelet` <= 100 ms; >= 100k points/s from the first call until `stop()` returns with every point
in the journal.

Journal checksum cost, in rounds that alternate which goes first (medians, and the median of per-round
ratios): the end-to-end throughput above with the journal in format 2 (crc32 per frame) against the same run
with format-1 framing (no crc); target: the crc costs <= 5% of it. Beside it, the journal writer alone in CPU
time of this process (`JournalWriter.append` in the dispatcher's 20,000-event chunks, then close with its
fsync): what the crc adds to the dispatcher thread's work, part of which runs beside the training thread
(zlib releases the GIL for large buffers).
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


def journal_rate(points: int, root: str, encode: object, tag: str) -> float:
    from tracelet.core.engine import journal

    events = [("m", "loss", 0.5 + i, i, 1.7e9 + i) for i in range(points)]
    chunks = [events[i : i + 20_000] for i in range(0, points, 20_000)]
    writer = journal.JournalWriter(os.path.join(root, tag))
    writer._encode = encode  # type: ignore[assignment]  # the frame format under test; nothing else differs
    t0 = time.process_time()  # this process's CPU: what the crc adds, less of the shared machine's noise
    for n, chunk in enumerate(chunks):
        writer.append(n * 20_000, chunk)
    writer.close()
    elapsed = time.process_time() - t0
    os.remove(writer.path)
    return points / elapsed


def end_to_end(points: int, root: str, crc: bool) -> float:
    """`throughput` with the journal in format 2 (crc32 per frame) or, with `crc=False`, in format-1 framing."""
    from tracelet.core.engine import journal

    real = journal.encode_frame
    if not crc:
        journal.encode_frame = journal.encode_frame_v1  # what JournalWriter picks for a new file
    try:
        rate, landed = throughput(points, root)
    finally:
        journal.encode_frame = real
    assert landed == points
    return rate


def checksum_cost(points: int, rounds: int, root: str) -> dict[str, tuple[float, float, float]]:
    """Per measure ("end to end", "writer CPU"): median points/s with the crc and without, and the median of
    per-round ratios. Rounds alternate which goes first, so warm-up and drift favour neither."""
    from tracelet.core.engine import journal

    measures = {
        "end to end": (lambda r: end_to_end(points, root, True), lambda r: end_to_end(points, root, False)),
        "writer CPU": (
            lambda r: journal_rate(points, root, journal.encode_frame, f"crc{r}"),
            lambda r: journal_rate(points, root, journal.encode_frame_v1, f"plain{r}"),
        ),
    }
    out = {}
    for name, (with_crc_fn, without_fn) in measures.items():
        with_crc, without, ratios = [], [], []
        for r in range(rounds):
            if r % 2:
                b, a = without_fn(r), with_crc_fn(r)
            else:
                a, b = with_crc_fn(r), without_fn(r)
            with_crc.append(a)
            without.append(b)
            ratios.append(a / b)
        out[name] = (statistics.median(with_crc), statistics.median(without), statistics.median(ratios))
    return out


def import_time(runs: int = 9) -> tuple[float, float]:
    code = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}

    def median(module: str) -> float:
        samples = [
            float(
                subprocess.run(
                    [sys.executable, "-c", code.format(module)], capture_output=True, text=True, env=env, check=True
                ).stdout
            )
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
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        ours, base = per_call(args.batches, root)
        rate, landed = throughput(args.points, root)
        costs = checksum_cost(args.points, args.rounds, root)
    imp, deps = import_time()
    p50, p99, b50, b99 = pct(ours, 0.5), pct(ours, 0.99), pct(base, 0.5), pct(base, 0.99)
    print(f"log_metric on the calling thread   p50 {p50:.3f} us   p99 {p99:.3f} us")
    print(f"deque.append of the same tuple     p50 {b50:.3f} us   p99 {b99:.3f} us")
    print(f"ratio of the medians               {p50 / b50:.2f}x   (target <= 4x, p50 <= 0.6 us)")
    print(
        f"import tracelet                    {imp:.1f} ms   (its dependencies alone: {deps:.1f} ms; target <= 100 ms)"
    )
    print(
        f"first call -> stop() returned      {rate:,.0f} points/s   ({landed:,}/{args.points:,} in the journal;"
        f" target >= 100k/s)"
    )
    for name, (crc, plain, ratio) in costs.items():
        print(
            f"crc32 per journal frame, {name:<10} {crc:,.0f} points/s vs {plain:,.0f} without: {ratio:.3f}x"
            f" (median of {args.rounds} per-round ratios; cost {100 * (1 - ratio):.1f}%"
            f"{', target <= 5%' if name == 'end to end' else ''})"
        )


if __name__ == "__main__":
    main()
