"""`tracelet ui`: time to first chart on runs of 10k, 1M and 10M points, cold and warm, beside `tracelet show`.

    python benchmarks/ui.py [--max-points 10000000] [--repeats 3] [--width 1000]

For each run size (10,000, 1,000,000, 10,000,000 points of one metric, up to `--max-points`; the journal is
written with the journal's own writer, as a run writes it, which is quicker than logging 10M points):

- cold: a fresh `tracelet ui` process, no series cache yet (first visit): the run page's request
  (`/api/run`, which builds the cache beside the journal) then the chart's (`/api/series`, `--width` pixels).
- warm: a fresh `tracelet ui` process with the cache on disk (any later visit, after a restart).
- again: the same two requests once more on the warm server (a page reload, a live poll with nothing new).
- bytes per chart: the `/api/series` response body; server memory: the server process's RSS after the requests.
- `tracelet show RUN` on the same run, in its own process: wall time and peak RSS (it reads every point).

Medians over `--repeats`, each measured in fresh processes. The development machine is 2-core and shared
with other engineers' jobs: figures are noisy, and the README says when and where they were measured.
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
import urllib.request
from pathlib import Path

import psutil

from tracelet.core.engine import journal
from tracelet.ui.series import CACHE_DIR

SIZES = (10_000, 1_000_000, 10_000_000)
CHUNK = 100_000


def make_run(root: Path, points: int) -> str:
    """A finished run of `points` points of `loss`, written by the journal writer; its id."""
    run_id = f"bench-{points}"
    run_dir = root / "bench" / run_id
    writer = journal.JournalWriter(run_dir)
    t0 = 1_700_000_000.0
    for start in range(0, points, CHUNK):
        stop = min(start + CHUNK, points)
        writer.append(
            start, [("m", "loss", 1.0 / (1 + i * 1e-4) + (i % 97) * 1e-3, i, t0 + i * 1e-3) for i in range(start, stop)]
        )
    writer.close()
    journal.write_meta(
        run_dir,
        {
            "run_id": run_id,
            "name": f"{points:,} points",
            "project": "bench",
            "created_at": "2026-12-05T00:00:00+00:00",
            "ended_at": "2026-12-05T01:00:00+00:00",
            "status": "FINISHED",
            "tags": [],
            "backends": ["local"],
            "events": points,
        },
    )
    return run_id


class Server:
    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracelet.cli", "ui", "--dir", str(root), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.split(" at ")[1].split()[0]

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=600) as resp:
            return resp.read()

    def first_chart(self, run_id: str, width: int) -> tuple[float, int]:
        """Seconds for the run page's data and its chart's, and the chart's bytes."""
        t0 = time.perf_counter()
        json.loads(self.get(f"api/run?id={run_id}"))
        body = self.get(f"api/series?id={run_id}&metric=loss&x=step&width={width}")
        return time.perf_counter() - t0, len(body)

    def rss_mb(self) -> float:
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def show(root: Path, run_id: str) -> tuple[float, float]:
    """`tracelet show` wall seconds and peak RSS (MB), sampled every 50 ms."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracelet.cli", "show", run_id, "--dir", str(root)], stdout=subprocess.DEVNULL
    )
    ps, peak = psutil.Process(proc.pid), 0.0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss / 2**20)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    return time.perf_counter() - t0, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-points", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=1000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracelet-ui-bench-"))
    try:
        rows = []
        for points in [s for s in SIZES if s <= args.max_points]:
            t0 = time.perf_counter()
            run_id = make_run(root, points)
            print(f"{points:>12,} points: journal written in {time.perf_counter() - t0:.1f} s", flush=True)
            cold, warm, again, rss, show_s, show_mb = [], [], [], [], [], []
            size = 0
            for _ in range(args.repeats):
                shutil.rmtree(root / "bench" / run_id / CACHE_DIR, ignore_errors=True)
                server = Server(root)
                try:
                    seconds, size = server.first_chart(run_id, args.width)
                    cold.append(seconds)
                finally:
                    server.close()
                server = Server(root)
                try:
                    warm.append(server.first_chart(run_id, args.width)[0])
                    again.append(server.first_chart(run_id, args.width)[0])
                    rss.append(server.rss_mb())
                finally:
                    server.close()
                s, mb = show(root, run_id)
                show_s.append(s)
                show_mb.append(mb)
            med = statistics.median
            rows.append((points, med(cold), med(warm), med(again), size, med(rss), med(show_s), med(show_mb)))
            print(
                f"{'':>12}  cold {med(cold):.2f} s, warm {med(warm):.3f} s, again {med(again):.3f} s, "
                f"{size:,} bytes/chart, server RSS {med(rss):.0f} MB; tracelet show {med(show_s):.2f} s, "
                f"peak RSS {med(show_mb):.0f} MB",
                flush=True,
            )
        print(
            "\n| points | first chart, cold | warm (restarted server) | again (same server) | bytes per chart "
            "| server RSS | `tracelet show` | its peak RSS |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p, c, w, a, b, r, s, m in rows:
            print(f"| {p:,} | {c:.2f} s | {w:.3f} s | {a:.3f} s | {b:,} | {r:.0f} MB | {s:.2f} s | {m:.0f} MB |")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TRACELET_TRACK_SYSTEM", "false")
    sys.exit(main())
