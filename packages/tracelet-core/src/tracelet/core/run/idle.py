"""A rank that does not report (the `rank0` policy, rank != 0): every method a cheap no-op, and on the leader of
every node other than rank 0's, the node's system metrics written into rank 0's run.

Rank 0's run lives in another process (often on another machine), so the node leader opens its own writer into
that run, through every backend that declares the ``attach`` capability (MLflow does, by run id), and labels
its readings ``system/<node>/...`` so nodes never collide. Everything happens on the writer's own thread:
agreeing on the group with rank 0 may take a while, and the training script's start() never waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tracelet.core.engine import lifecycle
from tracelet.core.run.groups import resolve_group
from tracelet.core.run.ranks import warn_once

if TYPE_CHECKING:
    from tracelet.core.run.distributed import DistributedRun, Plan

logger = logging.getLogger("tracelet")

ATTACH_CAPABILITY = "attach"
CLOSE_SETUP_WAIT = 5.0  # seconds a node leader's stop() waits for its system-metrics writer to come up


# -- inactive ranks -----------------------------------------------------------------------------------------------


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def _empty_dict(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {}


def _empty_list(*args: Any, **kwargs: Any) -> list[Any]:
    return []


def _true(*args: Any, **kwargs: Any) -> bool:
    return True


# Every public method of an inactive rank's experiment and what it returns there. These are instance
# attributes, found before the class's methods, so a call costs one Python call with no conversion at all:
# never more than rank 0's log_metric, and nothing can raise (a value rank 0 would refuse is not looked at).
_IDLE: dict[str, Callable[..., Any]] = {
    "log_metric": _nothing,
    "log_metric_at": _nothing,  # TensorBoard's relay and other integrations log through it
    "log_params": _nothing,
    "log_hyperparameter": _nothing,
    "set_tags": _nothing,
    "set_iteration": _nothing,
    "flush": _true,
    "log_artifact": _empty_dict,
    "log_file_artifact": _empty_dict,
    "get_artifact": _nothing,
    "list_artifacts": _empty_list,
    "capture_hyperparams": _empty_dict,
    "capture_model": _empty_dict,
    "capture_dataset": _empty_dict,
    "log_summary": _nothing,
    "skip_capture": _nothing,
    "capture_skipped": _true,  # nothing is captured on this rank: every path is left alone
}


def make_idle(experiment: DistributedRun, p: Plan) -> None:
    """Turn `experiment` into the cheap no-op of a rank that does not report (rank0 mode, rank != 0).

    The node leader of another node also starts, in the background, its node's system metrics into rank 0's
    run (`NodeMetrics`); its stop() ends that writer, everything else returns at once.
    """
    for attr, fn in _IDLE.items():
        setattr(experiment, attr, fn)
    node: NodeMetrics | None = None
    if p.role == "attach":
        node = NodeMetrics(experiment, p)
        node.start()
        lifecycle.register(experiment)  # its system metrics are delivered at exit too

    def stop(*args: Any, **kwargs: Any) -> None:
        lifecycle.deactivate(experiment)  # as on rank 0: a stopped run is nobody's active experiment
        if node is not None:
            lifecycle.unregister(experiment)
            node.close()
        return None

    # Deliberate monkeypatch of this one instance (instance attributes, found before the class's methods).
    experiment.stop = stop  # type: ignore[method-assign]
    experiment.end = stop  # type: ignore[method-assign]


class NodeMetrics(threading.Thread):
    """A node leader's system metrics, written into rank 0's run through every backend that can attach.

    Runs entirely on its own thread: agreeing on the group with rank 0 and finding its run may take a while
    (rank 0 may start later), and start() of the training script must not wait for it.
    """

    def __init__(self, experiment: DistributedRun, p: Plan) -> None:
        super().__init__(name="tracelet-node-metrics", daemon=True)
        self.experiment = experiment
        self.plan = p
        self._closed = threading.Event()
        self._ready = threading.Event()  # set once sampling runs, or setup gave up
        self._lock = threading.Lock()
        self.orchestrator: Any = None
        self.collectors: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # system metrics of one node are never worth a crash
            self.error = exc
            logger.warning("tracelet: system metrics of node %s not written into rank 0's run: %s",
                           self.plan.info.node, exc)  # fmt: skip
        finally:
            self._ready.set()

    def _run(self) -> None:
        from tracelet.core.contract import discovery
        from tracelet.core.contract.records import RunContext
        from tracelet.core.engine.backend import Backend, instantiate
        from tracelet.core.engine.collectors import CollectorRunner
        from tracelet.core.orchestrator import Orchestrator
        from tracelet.core.plugins import PluginType
        from tracelet.core.run.backend_config import backend_config

        exp = self.experiment
        settings = exp.settings
        p = self.plan
        p.group = resolve_group(p.info, p.group_name or exp.name, exp.project, exp.id, settings.start_timeout)
        if self._closed.is_set():
            return
        backends = []
        for spec_name in exp.backend_names:
            try:
                spec = discovery.find(PluginType.BACKEND, spec_name)
                plugin = instantiate(spec.load())
            except Exception as exc:
                logger.warning("tracelet: backend %r not available for node metrics: %s", spec_name, exc)
                continue
            meta = _plugin_metadata(plugin)
            if ATTACH_CAPABILITY not in (getattr(meta, "capabilities", None) or []):
                warn_once(
                    f"attach:{spec.name}",
                    "tracelet: backend %r cannot write into another process's run; system metrics of node %s "
                    "are not recorded there (use distributed=per_rank to give every rank its own run)",
                    spec.name, p.info.node,
                )  # fmt: skip
                continue
            context = RunContext(
                run_id=exp.id, name=p.group_name or exp.name, project=exp.project, created_at=exp.created_at,
                config=backend_config(spec.name, exp.options), metadata={"distributed": p.metadata},
                settings=settings,
            )  # fmt: skip
            backends.append(Backend(spec.name, plugin, context, spec))
        if not backends:
            return
        with self._lock:
            if self._closed.is_set():
                return
            orch = self.orchestrator = Orchestrator(None, max_buffered=settings.max_buffered,
                                                    stop_timeout=settings.stop_timeout)  # fmt: skip
            for backend in backends:
                orch.add_backend(backend)
            orch.start()
            self.collectors = CollectorRunner(_Appender(orch.append, p).log_metric, settings.metrics_interval)
            self.collectors.start()

    def close(self) -> None:
        """Stop sampling (a last sample is taken) and deliver what was sampled (within the stop timeout).

        A short job may end while the writer is still being set up: give it a few seconds to come up, so
        even then the node leaves a reading in the run.
        """
        self._ready.wait(CLOSE_SETUP_WAIT)
        self._closed.set()
        with self._lock:
            collectors, orch = self.collectors, self.orchestrator
        if collectors is not None:
            collectors.stop()
        if orch is not None:
            orch.stop()


class _Appender:
    """A `log_metric` for the node's CollectorRunner, appending straight to the node's orchestrator.

    Each reading's step is how many readings of that name came before (rank 0's iteration is not known here).
    """

    def __init__(self, append: Callable[[tuple], None], p: Plan) -> None:
        self._append = append
        self._plan = p
        self._steps: Counter[str] = Counter()

    def log_metric(self, name: str, value: Any, iteration: int | None = None) -> None:
        from tracelet.core.contract.values import to_float

        label = self._plan.system_name(name)
        step = self._steps[label] if iteration is None else iteration
        self._steps[label] += 1
        self._append(("m", label, to_float(value), step, time.time()))


def _plugin_metadata(plugin: Any) -> Any:
    fn = getattr(plugin, "plugin_metadata", None)
    try:
        return fn() if callable(fn) else None
    except Exception:
        return None
