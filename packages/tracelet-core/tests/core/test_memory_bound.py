"""Memory stays bounded however long a backend stalls: peak RSS at 10M points is within 10 MB of 1M points.

The bound before the dispatcher (the caller's queue, `orchestrator.QUEUE_HIGH`, with fsync off the dispatcher
so a slow disk cannot stall it) and after it (the chunk window, `max_buffered`, with laggards reading the
journal) both hold while a backend never answers. Measured in a child process (ru_maxrss is per process):
one run, peak RSS after 1M points and after 10M, the caller logging as fast as Python can call.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import collections, itertools, resource, sys, threading
    import tracelet
    from tracelet import hookimpl, register_plugin
    from tracelet.core import orchestrator

    release = threading.Event()

    class Stalled:
        @hookimpl
        def backend_log_metrics(self, metrics):
            release.wait()  # a tracker that never answers

    register_plugin(Stalled, "stalled")
    exp = tracelet.start_logging(
        "rss", backend=["local", "stalled"], config={"track_system": False, "stalled_stop_timeout": 0.2}
    )
    queue = exp.orchestrator._queue
    peak_queue = 0
    done = threading.Event()

    def watch():
        global peak_queue
        while not done.wait(0.005):
            peak_queue = max(peak_queue, len(queue))

    threading.Thread(target=watch, daemon=True).start()

    def log(n):
        # map() drives log_metric from C: the caller as fast as a training loop could ever be
        collections.deque(map(exp.log_metric, itertools.repeat("x", n), itertools.repeat(0.5, n)), maxlen=0)

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    log(1_000_000)
    at_1m = peak_mb()
    log(9_000_000)
    at_10m = peak_mb()
    done.set()
    report = exp.stop()
    release.set()
    print(at_1m, at_10m, peak_queue, report.events, orchestrator.QUEUE_HIGH, flush=True)
    """
)


def test_rss_plateaus_under_a_stalled_backend(tmp_path: Path, python_env: dict[str, str]) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=python_env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    at_1m, at_10m, peak_queue, events, high = out.stdout.split()
    # Every point reached the journal (waiting, not dropping); collectors may add an event or two of their own.
    assert 10_000_000 <= int(events) < 10_000_100
    assert float(at_10m) - float(at_1m) < 10, (
        f"peak RSS {at_1m} MB at 1M points, {at_10m} MB at 10M (caller's queue peaked at {peak_queue} events, "
        f"bound {high})"
    )
