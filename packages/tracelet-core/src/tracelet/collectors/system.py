"""System metrics: CPU, memory, disk and network I/O of the machine and of the training process (psutil).

Switch: `ExperimentConfig.track_system_metrics` (setting `track_system`, `TRACELET_TRACK_SYSTEM`); interval:
setting `metrics_interval` (seconds). Readings are taken only on the collector thread: one when the run starts,
one every `metrics_interval` seconds, one when it stops. Metric names (all floats):

- `system/cpu_percent` (whole machine), `system/process_cpu_percent` (this process, 100 = one core busy)
- `system/memory_percent`, `system/memory_used_gb`, `system/memory_available_gb`, `system/process_rss_mb`
- `system/disk_read_mb_s`, `system/disk_write_mb_s`, `system/net_recv_mb_s`, `system/net_sent_mb_s`

Percentages and rates are averages since the previous reading; the first reading measures over a short window
(`FIRST_WINDOW` seconds, on the collector thread) so a run shorter than the interval still gets real values.
A counter the platform does not provide (disk counters in some containers) is left out, not reported as 0.
"""

from __future__ import annotations

import time
from typing import Any

from tracelet.plugin import hookimpl

FIRST_WINDOW = 0.1  # seconds the first reading measures CPU and I/O rates over
_MB = 2**20
_GB = 2**30


class SystemCollector:
    """CPU, memory, disk and network readings of this machine and process."""

    config_switch = "track_system_metrics"

    def __init__(self) -> None:
        # Nothing is read here: plugins are created on the thread that calls start().
        self._ps: Any = None
        self._process: Any = None
        self._last: tuple[float, Any, Any] | None = None  # (monotonic time, disk counters, net counters)

    def _counters(self) -> tuple[float, Any, Any]:
        ps = self._ps
        try:
            disk = ps.disk_io_counters()
        except Exception:  # no disks visible (containers), or permission
            disk = None
        try:
            net = ps.net_io_counters()
        except Exception:
            net = None
        return time.monotonic(), disk, net

    def _prime(self) -> None:
        import psutil

        self._ps = psutil
        self._process = psutil.Process()
        psutil.cpu_percent(None)
        self._process.cpu_percent(None)
        self._last = self._counters()
        time.sleep(FIRST_WINDOW)

    @hookimpl
    def collector_sample(self) -> dict[str, float]:
        if self._ps is None:
            self._prime()
        ps = self._ps
        out: dict[str, float] = {
            "system/cpu_percent": float(ps.cpu_percent(None)),
        }
        mem = ps.virtual_memory()
        out["system/memory_percent"] = float(mem.percent)
        out["system/memory_used_gb"] = mem.used / _GB
        out["system/memory_available_gb"] = mem.available / _GB
        with self._process.oneshot():
            out["system/process_cpu_percent"] = float(self._process.cpu_percent(None))
            out["system/process_rss_mb"] = self._process.memory_info().rss / _MB
        now = self._counters()
        assert self._last is not None
        before, self._last = self._last, now
        elapsed = now[0] - before[0]
        if elapsed > 0:
            if now[1] is not None and before[1] is not None:
                out["system/disk_read_mb_s"] = max(now[1].read_bytes - before[1].read_bytes, 0) / _MB / elapsed
                out["system/disk_write_mb_s"] = max(now[1].write_bytes - before[1].write_bytes, 0) / _MB / elapsed
            if now[2] is not None and before[2] is not None:
                out["system/net_recv_mb_s"] = max(now[2].bytes_recv - before[2].bytes_recv, 0) / _MB / elapsed
                out["system/net_sent_mb_s"] = max(now[2].bytes_sent - before[2].bytes_sent, 0) / _MB / elapsed
        return out
