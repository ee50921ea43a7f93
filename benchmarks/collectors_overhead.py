"""What the collectors cost: one sample on the collector thread, and the training loop with collectors on vs off.

    python benchmarks/collectors_overhead.py [--rounds 12] [--seconds 1.0] [--interval 1.0]

Everything is measured in this one run and reported as medians (the machines here are small and noisy).

1. Sample cost: each collector's `collector_sample()` timed call by call on this thread (200 calls after a
   first, priming one), plus the one-off work: the metadata read on the thread that calls `start()` (git,
   environment, argv) and the installed-packages listing done on the collector thread.
2. Training loop: a step is a little pure-Python work plus one `log_metric` call; every 200 steps a progress
   line is printed (so the console tee is on the path). Each round runs, in rotated order, a run with every
   collector on (system metrics every `--interval` seconds, git, environment, argv, console tee), one with
   all of them off, and a second all-off one (the noise floor), so all see the same noise. Printed: the ratio
   of the medians of per-step time, for the wall clock and for the training thread's own CPU time
   (`time.thread_time`, immune to other processes' load). Each run is timed from `SETTLE` seconds after
   `start()`: the steady state of a training loop (the one-offs at start are timed in section 1).
   Target: <= 1.02 (no measurable difference).
3. Console tee: one `print` of a 60-character line to /dev/null, through the tee and straight, in interleaved
   batches (the tee adds a line split, a redaction pass and a buffered file write per completed line).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from tracelet import Experiment, ExperimentConfig
from tracelet.collectors.environment import environment_info, installed_distributions
from tracelet.collectors.git import git_info
from tracelet.collectors.gpu import GpuCollector
from tracelet.collectors.system import SystemCollector
from tracelet.settings import TraceletSettings

SETTLE = 0.4  # seconds between start() and the timed loop, in both variants
SWITCHES = ("track_environment", "track_args", "track_stdout", "track_system_metrics", "track_git")


def time_calls(fn, n: int) -> list[float]:
    fn()  # priming: the first system reading measures over a short window
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e3)
    return out


def sample_costs() -> None:
    print("1. cost of one sample / one-off, on the thread that does it (median, p90; microseconds)")
    system = time_calls(SystemCollector().collector_sample, 200)
    gpu_collector = GpuCollector()
    gpu = time_calls(gpu_collector.collector_sample, 200)
    gpu_note = "" if gpu_collector.active else "  (no NVML GPU here: the cost of finding none)"
    rows = [
        ("system sample (collector thread)", system),
        ("gpu sample (collector thread)" + gpu_note, gpu),
        ("git metadata (start thread)", time_calls(git_info, 15)),
        ("environment metadata (start thread)", time_calls(environment_info, 15)),
        ("installed packages (collector thread, once)", time_calls(installed_distributions, 5)),
    ]
    for label, values in rows:
        q = statistics.quantiles(values, n=10)
        print(f"   {label:<75} {statistics.median(values):10.1f} {q[-1]:10.1f}")


def work(i: int) -> float:
    acc = 0.0
    for k in range(40):  # a few microseconds of pure-Python "training"
        acc += (i * k) % 7
    return acc


def one_round(on: bool, seconds: float, interval: float, root: str) -> tuple[float, float]:
    config = ExperimentConfig(**{s: on for s in SWITCHES}, track_metrics=True)
    settings = TraceletSettings.resolve({"dir": root, "metrics_interval": interval})
    exp = Experiment("bench-collectors", config=config, backend=["local"], settings=settings).start()
    time.sleep(SETTLE)  # steady state: the one-offs of section 1 (packages list, diff) are done by then
    log = exp.log_metric
    steps = 0
    t0, c0 = time.perf_counter(), time.thread_time()
    deadline = t0 + seconds
    while True:
        for _ in range(200):
            log("loss", work(steps), steps)
            steps += 1
        print(f"step {steps}", end="\r")
        if time.perf_counter() >= deadline:
            break
    elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
    exp.stop()
    return elapsed / steps * 1e6, cpu / steps * 1e6


def loop_overhead(rounds: int, seconds: float, interval: float) -> None:
    print(f"2. training step (work + log_metric, a progress line every 200 steps), {rounds} alternating rounds "
          f"of {seconds:.1f} s, system metrics every {interval:g} s")  # fmt: skip
    real_stdout = sys.stdout
    sink = open(os.devnull, "w")  # noqa: SIM115 -- the progress lines go nowhere, through the tee when it is on
    runs: dict[str, list[tuple[float, float]]] = {"on": [], "off": [], "off again": []}
    with tempfile.TemporaryDirectory() as root:
        sys.stdout = sink
        try:
            one_round(True, 0.3, interval, root)  # warm-up: imports, first entry-point scan
            order = ["on", "off", "off again"]
            for r in range(rounds):
                for name in order[r % 3 :] + order[: r % 3]:  # rotated, so no variant always runs first
                    runs[name].append(one_round(name == "on", seconds, interval, root))
        finally:
            sys.stdout = real_stdout
            sink.close()
    for i, label in ((0, "wall clock"), (1, "training thread's CPU time")):
        m = {name: statistics.median(r[i] for r in values) for name, values in runs.items()}
        print(
            f"   {label:<26} off: {m['off']:7.3f} us/step   on: {m['on']:7.3f} us/step   ratio on/off: "
            f"{m['on'] / m['off']:.3f} (target <= 1.02);  noise: off again/off {m['off again'] / m['off']:.3f}"
        )
    print("   (CPU time: what the training thread itself spends; the wall clock also shows waiting for the GIL")
    print("   and, on a shared machine, for other processes. `off again` is a second collectors-off run: the")
    print("   difference the machine's noise alone makes.)")


def tee_cost(batches: int = 200, per_batch: int = 200) -> None:
    from pathlib import Path

    from tracelet.collectors.stdout import ConsoleLog, TeeStream

    line = "epoch 3 step 1200 loss=0.2534 acc=0.9121 lr=0.000300 it/s=153.2\n"
    with open(os.devnull, "w") as null, tempfile.TemporaryDirectory() as tmp:
        log = ConsoleLog(Path(tmp) / "output.log")
        tee = TeeStream(null, "stdout", log, print)
        straight: list[float] = []
        teed: list[float] = []
        for _ in range(batches):
            for target, out in ((null, straight), (tee, teed)):
                t0 = time.perf_counter_ns()
                for _ in range(per_batch):
                    print(line, end="", file=target)
                out.append((time.perf_counter_ns() - t0) / per_batch / 1e3)
        log.close()
    m_s, m_t = statistics.median(straight), statistics.median(teed)
    print(f"3. print of one line: straight {m_s:.2f} us, through the tee {m_t:.2f} us (+{m_t - m_s:.2f} us per line)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    sample_costs()
    loop_overhead(args.rounds, args.seconds, args.interval)
    tee_cost()


if __name__ == "__main__":
    main()
