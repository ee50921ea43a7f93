"""Periodic metric sources (system metrics and third-party collectors) feeding the same append path."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from tracelet.core import discovery
from tracelet.core.backend import instantiate
from tracelet.core.plugins import PluginType, hookimpl, new_plugin_manager

if TYPE_CHECKING:
    from tracelet.core.experiment import Experiment

logger = logging.getLogger("tracelet")


class CollectorRunner(threading.Thread):
    """Samples every installed collector each `interval` seconds and logs the readings as metrics."""

    def __init__(self, experiment: Experiment, interval: float) -> None:
        super().__init__(name="tracelet-collectors", daemon=True)
        self.experiment = experiment
        self.interval = max(float(interval), 0.1)
        self._stop = threading.Event()
        self.pm = new_plugin_manager()
        for spec in discovery.installed(PluginType.COLLECTOR):
            try:
                self.pm.register(instantiate(spec.load()), name=spec.name)
            except Exception as exc:
                logger.warning("tracelet: collector %r not active: %s", spec.name, exc)

    def sample(self) -> None:
        for readings in self.pm.hook.collector_sample():
            for name, value in (readings or {}).items():
                try:
                    self.experiment.log_metric(name, value)
                except TypeError:
                    pass

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception as exc:
                logger.debug("tracelet: collector sample failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()


class SystemCollector:
    """CPU, memory and process readings through psutil (when installed)."""

    def __init__(self) -> None:
        try:
            import psutil
        except ImportError:
            self._psutil: Any = None
            return
        self._psutil = psutil
        self._process = psutil.Process()
        psutil.cpu_percent(None)  # the first reading primes the counter

    @hookimpl
    def collector_sample(self) -> dict[str, float] | None:
        ps = self._psutil
        if ps is None:
            return None
        mem = ps.virtual_memory()
        with self._process.oneshot():
            rss = self._process.memory_info().rss
        return {
            "system/cpu_percent": ps.cpu_percent(None),
            "system/memory_percent": mem.percent,
            "system/memory_used_gb": mem.used / 2**30,
            "system/process_rss_mb": rss / 2**20,
        }
