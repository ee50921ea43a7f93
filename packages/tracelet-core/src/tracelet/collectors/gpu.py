"""GPU metrics through NVIDIA's NVML bindings (`nvidia-ml-py`, installed by the extra `tracelet[gpu]`).

Switch: `ExperimentConfig.track_system_metrics`, as for the other system metrics, on the same collector thread
and schedule. Per GPU `i` (NVML's index order):

- `system/gpu<i>/utilization_percent`, `system/gpu<i>/memory_used_mb`, `system/gpu<i>/memory_total_mb`,
  `system/gpu<i>/memory_percent`, `system/gpu<i>/temperature_c`, `system/gpu<i>/power_w`
- params, once: `system/gpu_count` and `system/gpu<i>/name`

Without the bindings, without an NVIDIA driver, or with no GPU, the run gets no GPU metrics and the
`tracelet` logger one debug line saying why; nothing is raised. A reading a GPU does not support (power on
some boards) is dropped for that GPU from then on.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from types import ModuleType
from typing import Any

from tracelet.plugin import InstrumentedExperiment, hookimpl

logger = logging.getLogger("tracelet")

_MB = 2**20

# The bindings are imported on the collector thread, in its first sample: right after start(), when training
# code may fork (DataLoader workers). A fork in the middle of that import would give the child the module's
# import lock held by a thread the child does not have, and the child's own import of it would hang for good.
# A fork waits for the import instead (once, for as long as the import takes).
_importing = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_importing.acquire, after_in_parent=_importing.release, after_in_child=_importing.release
    )


def _import_bindings() -> ModuleType:
    with _importing:
        return importlib.import_module("pynvml")


class GpuCollector:
    """Utilisation, memory, temperature and power of each NVIDIA GPU."""

    config_switch = "track_system_metrics"

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._tried = False
        self._unsupported: set[tuple[int, str]] = set()

    def _init(self) -> None:
        self._tried = True
        try:
            pynvml = _import_bindings()
        except ImportError:
            logger.debug("tracelet: no GPU metrics: NVML bindings not installed (pip install 'tracelet[gpu]')")
            return
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded on machines without a GPU
            logger.debug("tracelet: no GPU metrics: NVML not available: %s", exc)
            return
        try:
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:
            logger.debug("tracelet: no GPU metrics: NVML could not list GPUs: %s", exc)
            _shutdown(pynvml)
            return
        if not handles:
            logger.debug("tracelet: no GPU metrics: NVML sees no GPU")
            _shutdown(pynvml)
            return
        self._nvml = pynvml
        self._handles = handles

    @property
    def active(self) -> bool:
        return self._nvml is not None

    def _read(self, i: int, what: str, fn: Any, out: dict[str, float]) -> None:
        if (i, what) in self._unsupported:
            return
        try:
            fn(out)
        except Exception as exc:
            self._unsupported.add((i, what))
            logger.debug("tracelet: GPU %d does not report %s: %s", i, what, exc)

    @hookimpl
    def collector_sample(self) -> dict[str, float] | None:
        if not self._tried:
            self._init()
        if self._nvml is None:
            return None
        nvml = self._nvml
        out: dict[str, float] = {}
        for i, h in enumerate(self._handles):
            p = f"system/gpu{i}/"

            def util(o: dict[str, float], h: Any = h, p: str = p) -> None:
                o[p + "utilization_percent"] = float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)

            def memory(o: dict[str, float], h: Any = h, p: str = p) -> None:
                info = nvml.nvmlDeviceGetMemoryInfo(h)
                o[p + "memory_used_mb"] = info.used / _MB
                o[p + "memory_total_mb"] = info.total / _MB
                o[p + "memory_percent"] = 100.0 * info.used / info.total if info.total else 0.0

            def temperature(o: dict[str, float], h: Any = h, p: str = p) -> None:
                o[p + "temperature_c"] = float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))

            def power(o: dict[str, float], h: Any = h, p: str = p) -> None:
                o[p + "power_w"] = nvml.nvmlDeviceGetPowerUsage(h) / 1000.0  # milliwatts

            for what, fn in (("utilization", util), ("memory", memory), ("temperature", temperature), ("power", power)):
                self._read(i, what, fn, out)
        return out

    @hookimpl
    def collector_begin(self, experiment: InstrumentedExperiment) -> None:
        if self._nvml is None:
            return
        params: dict[str, Any] = {"system/gpu_count": len(self._handles)}
        for i, h in enumerate(self._handles):
            try:
                name = self._nvml.nvmlDeviceGetName(h)
            except Exception:
                continue
            params[f"system/gpu{i}/name"] = name.decode() if isinstance(name, bytes) else str(name)
        experiment.log_params(params)

    @hookimpl
    def collector_stop(self) -> None:
        if self._nvml is not None:
            _shutdown(self._nvml)
            self._nvml = None


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass
