"""Runs a run's collectors: metadata at start, one background thread for sampling, undo at stop.

Guarantees:
- Every collector is a plugin of the `tracelet.collectors` entry-point group (the core's own included), enabled
  by the `ExperimentConfig` switch its class names in `config_switch` (default `track_system_metrics`).
- Nothing here raises into the caller: a failing hook is reported once per (collector, hook, error type) as a
  warning, later ones of that kind at debug level, and the run goes on.
- `start()` only installs hooks and starts the thread; every sample (the first one included) is taken on the
  thread `tracelet-collectors`. `stop()` has the thread take a last sample, waits for it (at most
  `STOP_JOIN_TIMEOUT` seconds), then calls `collector_stop` on the stopping thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from tracelet.core.contract import discovery
from tracelet.core.contract.redact import redact
from tracelet.core.engine.backend import instantiate
from tracelet.core.plugins import CollectorPlugin, PluginType, new_plugin_manager, register_checked

if TYPE_CHECKING:
    import pluggy

    from tracelet.core.contract.protocols import InstrumentedExperiment as Experiment  # not the class: no import cycle

logger = logging.getLogger("tracelet")

DEFAULT_SWITCH = CollectorPlugin.config_switch  # "track_system_metrics"
STOP_JOIN_TIMEOUT = 10.0  # seconds stop() waits for a sample or one-off still running on the collector thread
MIN_INTERVAL = 0.05
STOP_SAMPLE_GAP = 0.005  # seconds between the end of the last reading and the reading at stop, at least
_NEEDS_RUN = frozenset({"collector_metadata", "collector_start", "collector_begin"})  # skipped by metrics-only


class _Collector:
    """One collector plugin with a plugin manager of its own, so a raising plugin reaches no other."""

    def __init__(self, name: str, plugin: Any) -> None:
        self.name = name
        self.plugin = plugin
        self.pm: pluggy.PluginManager = new_plugin_manager()
        register_checked(self.pm, plugin, name)  # an unknown hook name is reported, not ignored

    def implements(self, hook: str) -> bool:
        return bool(getattr(self.pm.hook, hook).get_hookimpls())


class CollectorRunner:
    """The collectors of one run and the thread that samples them every `interval` seconds."""

    def __init__(
        self,
        experiment: Experiment | Callable[..., Any],
        interval: float | None = None,
        log_metric: Callable[..., Any] | None = None,
    ) -> None:
        """:param experiment: the run; collectors read its config and log params and artifacts to it. A bare
            `log_metric` callable instead gives a metrics-only runner (a node's system metrics in a distributed
            job): only `track_system_metrics` collectors, only their samples, `interval` required.
        :param interval: seconds between samples (default: the setting `metrics_interval`).
        :param log_metric: where readings go (default `experiment.log_metric`; distributed runs relabel them).
        """
        run: Experiment | None = cast("Experiment", experiment) if hasattr(experiment, "settings") else None
        self.experiment = run  # None: metrics only, `experiment` is the bare log_metric callable
        self.log_metric: Callable[..., Any] = log_metric or (
            cast("Callable[..., Any]", experiment) if run is None else run.log_metric
        )
        if interval is None:
            interval = self.experiment.settings.metrics_interval if self.experiment is not None else 10.0
        self.interval = max(float(interval), MIN_INTERVAL)
        self.collectors: list[_Collector] = []
        self._reported: set[tuple[str, str, str]] = set()
        self._halt = threading.Event()  # not `_stop`: threading.Thread has a method of that name
        self._thread: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self._lock = threading.Lock()
        self._abandoned = False
        for spec in discovery.installed(PluginType.COLLECTOR):
            try:
                obj = spec.load()
                switch = getattr(obj, "config_switch", DEFAULT_SWITCH)
                if self.experiment is None:  # metrics only
                    if switch != DEFAULT_SWITCH:
                        continue
                elif switch is not None and not _enabled(self.experiment, switch):
                    continue
                self.collectors.append(_Collector(spec.name, instantiate(obj)))
            except Exception as exc:
                self._report(spec.name, "load", exc)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.collectors]

    # -- the hooks, each guarded ---------------------------------------------------------------------------------
    def _report(self, name: str, hook: str, exc: BaseException) -> None:
        key = (name, hook, type(exc).__name__)
        if key in self._reported:
            logger.debug("tracelet: collector %r failed again in %s: %s", name, hook, exc)
            return
        self._reported.add(key)
        logger.warning(
            "tracelet: collector %r failed in %s: %s: %s (reported once; the run goes on)",
            name,
            hook,
            type(exc).__name__,
            exc,
        )

    def _call(self, collector: _Collector, hook: str, **kwargs: Any) -> Any:
        if not collector.implements(hook):
            return None
        if self.experiment is None and hook in _NEEDS_RUN:
            return None
        try:
            results = getattr(collector.pm.hook, hook)(**kwargs)
        except Exception as exc:
            self._report(collector.name, hook, exc)
            return None
        return results[0] if results else None

    def metadata(self) -> dict[str, Any]:
        """Each collector's contribution to the run's metadata, merged and redacted (on the caller's thread)."""
        meta: dict[str, Any] = {}
        for c in self.collectors:
            part = self._call(c, "collector_metadata", experiment=self.experiment)
            if isinstance(part, dict):
                meta.update(part)
        return redact(meta)

    def start(self) -> None:
        """Install the collectors' hooks and start sampling in the background; never blocks on a sample."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for c in self.collectors:
            self._call(c, "collector_start", experiment=self.experiment)
        if any(c.implements("collector_sample") or c.implements("collector_begin") for c in self.collectors):
            self._thread = threading.Thread(target=self._run, name="tracelet-collectors", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """A last sample on the collector thread, then `collector_stop` of each collector here; idempotent."""
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
        self._halt.set()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_TIMEOUT)
            if self._thread.is_alive():
                self._abandoned = True  # late readings are dropped rather than logged into a closed run
                logger.warning(
                    "tracelet: a collector is still busy after %.0f s; the run stops without it", STOP_JOIN_TIMEOUT
                )
        for c in self.collectors:
            self._call(c, "collector_stop", experiment=self.experiment)

    # -- the collector thread -----------------------------------------------------------------------------------
    def sample(self) -> None:
        """One reading of every sampling collector, logged as metrics at the run's current iteration."""
        for c in self.collectors:
            readings = self._call(c, "collector_sample")
            if not readings or self._abandoned:
                continue
            for name, value in readings.items():
                try:
                    self.log_metric(name, value)
                except Exception as exc:
                    self._report(c.name, "log_metric", exc)

    def _run(self) -> None:
        try:
            self.sample()
            last = time.monotonic()
            for c in self.collectors:  # even when stop() came already: a short run still gets its diff and packages
                self._call(c, "collector_begin", experiment=self.experiment)
            while not self._halt.wait(self.interval):
                self.sample()
                last = time.monotonic()
            # The reading at stop, a few milliseconds after the one before ended at least: in a run stopped at once,
            # two readings in one millisecond would be one point to trackers that keep time in ms (MLflow drops
            # a repeated key/step/timestamp/value), and the start and stop readings must both arrive.
            time.sleep(max(STOP_SAMPLE_GAP - (time.monotonic() - last), 0))
            self.sample()
        except BaseException as exc:  # a bug here must not surface as an unhandled-thread traceback mid-training
            self._report("runner", "thread", exc)


def _enabled(experiment: Experiment, switch: str) -> bool:
    value = getattr(experiment.config, switch, None)
    if value is None:
        value = getattr(experiment.settings, switch, True)
    return bool(value)
