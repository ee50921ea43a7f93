"""System metrics from real psutil readings: a sample at start, every interval, one at stop, then none."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from tracelet.collectors.system import SystemCollector
from tracelet_testsupport.collectors import stored

NAMES = {
    "system/cpu_percent",
    "system/process_cpu_percent",
    "system/memory_percent",
    "system/memory_used_gb",
    "system/memory_available_gb",
    "system/process_rss_mb",
    "system/net_recv_mb_s",
    "system/net_sent_mb_s",
}


def _collector_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tracelet-collectors"]


def test_samples_at_start_every_interval_and_at_stop(experiment_factory) -> None:
    exp = experiment_factory(track_system_metrics=True, settings={"metrics_interval": 0.3})
    t_start = time.time()
    exp.start()
    assert _collector_threads()
    time.sleep(1.5)
    t_stop = time.time()
    exp.stop()
    assert not _collector_threads()  # sampling ends with the run
    metrics = stored(exp).metrics()
    assert NAMES <= set(metrics)
    cpu = metrics["system/cpu_percent"]
    stamps = [m.timestamp for m in cpu]
    assert len(cpu) >= 4  # start, at least two on the interval, stop
    assert stamps[0] - t_start < 1.0  # the first reading does not wait for the interval
    assert stamps[-1] >= t_stop  # the last one is taken by stop()
    gaps = [b - a for a, b in zip(stamps, stamps[1:-1])]
    assert all(g >= 0.25 for g in gaps[1:])  # the periodic ones follow the configured interval
    assert all(0.0 <= m.value <= 100.0 for m in cpu)
    rss = metrics["system/process_rss_mb"][-1].value
    assert 5 < rss < 100_000
    assert not any(name.startswith("system/gpu") for name in metrics)


def test_a_run_shorter_than_the_interval_still_gets_start_and_stop(experiment_factory) -> None:
    exp = experiment_factory(track_system_metrics=True, settings={"metrics_interval": 30})
    exp.start()
    exp.stop()
    cpu = stored(exp).metrics()["system/cpu_percent"]
    assert len(cpu) == 2


def test_io_rates_are_rates(tmp_path) -> None:
    collector = SystemCollector()
    first = collector.collector_sample()
    (tmp_path / "blob").write_bytes(b"x" * (8 << 20))
    second = collector.collector_sample()
    for reading in (first, second):
        assert reading["system/net_recv_mb_s"] >= 0 and reading["system/net_sent_mb_s"] >= 0
        if "system/disk_write_mb_s" in reading:  # some containers expose no disk counters
            assert reading["system/disk_write_mb_s"] >= 0


def test_no_gpu_means_no_gpu_metrics_and_one_debug_line(experiment_factory, caplog: pytest.LogCaptureFixture) -> None:
    """nvidia-ml-py is installed in the test environment, the NVML library is not: NVML cannot start."""
    caplog.set_level(logging.DEBUG, logger="tracelet")
    exp = experiment_factory(track_system_metrics=True)
    exp.start()
    time.sleep(0.5)
    exp.stop()
    lines = [r.getMessage() for r in caplog.records if "no GPU metrics" in r.getMessage()]
    assert len(lines) == 1 and "NVML not available" in lines[0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "GPU" in r.getMessage()]
    params = stored(exp).params()
    assert not any(k.startswith("system/gpu") for k in list(stored(exp).metrics()) + list(params))


def test_without_the_nvml_bindings(python_env: dict[str, str], tmp_path) -> None:
    """A child process where `pynvml` cannot be imported: one debug line that names the extra to install."""
    code = """
import logging, sys, time
sys.modules["pynvml"] = None  # as if nvidia-ml-py were not installed
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(levelname)s %(message)s")
from tracelet import Experiment, ExperimentConfig
cfg = ExperimentConfig(track_environment=False, track_args=False, track_stdout=False, track_git=False)
exp = Experiment("nogpu", config=cfg).start()
time.sleep(0.3)
exp.stop()
print("GPU-METRICS", [n for n in __import__("tracelet.store", fromlist=["x"]).LocalRun(exp.run_dir).metrics()
                      if n.startswith("system/gpu")])
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=python_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "no GPU metrics" in line]
    assert lines == ["DEBUG tracelet: no GPU metrics: NVML bindings not installed (pip install 'tracelet[gpu]')"]
    assert "GPU-METRICS []" in out.stdout


def test_a_run_stopped_at_once_gets_its_start_and_stop_readings_a_few_ms_apart(experiment_factory) -> None:
    # Two readings in one millisecond would be one point to MLflow (it keeps time in ms and drops a repeated
    # key/step/timestamp/value): the reading at stop waits until a few ms after the one before ended.
    from tracelet.core.engine import journal

    exp = experiment_factory(track_system_metrics=True, settings={"metrics_interval": 30})
    exp.start()
    exp.stop()
    stamps: dict[str, list[float]] = {}
    for _, event in journal.read_events(exp.run_dir / journal.EVENTS_FILE):
        if event[0] == "m" and str(event[1]).startswith("system/"):
            stamps.setdefault(str(event[1]), []).append(event[4])
    assert stamps and all(len(ts) == 2 for ts in stamps.values()), stamps  # at start and at stop
    first_ended = max(ts[0] for ts in stamps.values())
    stop_began = min(ts[1] for ts in stamps.values())
    assert stop_began - first_ended >= 0.004, (first_ended, stop_began)
