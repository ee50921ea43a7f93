"""The one piece of work of a rank that does not report (the `rank0` policy, rank != 0; its experiment is an
`IdleRank`, every method a no-op): on the leader of every node other than rank 0's, the node's system metrics
written into rank 0's run.

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
from typing import TYPE_CHECKING, Any

from tracelet.core.engine import lifecycle
from tracelet.core.run.groups import resolve_group
from tracelet.core.run.ranks import warn_once

if TYPE_CHECKING:
    from tracelet.core.contract.discovery import PluginSpec
    from tracelet.core.contract.records import Append
    from tracelet.core.run.distributed import DistributedRun, Plan

logger = logging.getLogger("tracelet")

ATTACH_CAPABILITY = "attach"
CLOSE_SETUP_WAIT = 5.0  # seconds a node leader's stop() waits for its system-metrics writer to come up


def start_node_metrics(experiment: DistributedRun, p: Plan) -> NodeMetrics | None:
    """On the leader of a node other than rank 0's (`p.role == "attach"`), start writing the node's system metrics
    into rank 0's run in the background (stopped by the idle experiment's stop(), or at exit); else None."""
    if p.role != "attach":
        return None
    node = NodeMetrics(experiment, p)
    node.start()
    lifecycle.register(experiment)  # its system metrics are delivered at exit too
    return node


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
        from tracelet.core.engine.collectors import CollectorRunner
        from tracelet.core.engine.wiring import bind_backends
        from tracelet.core.orchestrator import Orchestrator
        from tracelet.core.plugins import PluginType
        from tracelet.core.run.backend_config import backend_config

        exp = self.experiment
        settings = exp.settings
        p = self.plan
        p.group = resolve_group(p.info, p.group_name or exp.name, exp.project, exp.id, settings.start_timeout)
        if self._closed.is_set():
            return
        specs = []
        for name in exp.backend_names:
            try:
                specs.append(discovery.find(PluginType.BACKEND, name))
            except Exception as exc:
                _not_available(name, exc)

        def context_for(name: str) -> RunContext:
            return RunContext(
                run_id=exp.id, name=p.group_name or exp.name, project=exp.project, created_at=exp.created_at,
                config=backend_config(name, exp.options), metadata={"distributed": p.metadata}, settings=settings,
            )  # fmt: skip

        def can_attach(spec: PluginSpec, plugin: Any) -> bool:
            meta = _plugin_metadata(plugin)
            if ATTACH_CAPABILITY in (getattr(meta, "capabilities", None) or []):
                return True
            warn_once(
                f"attach:{spec.name}",
                "tracelet: backend %r cannot write into another process's run; system metrics of node %s "
                "are not recorded there (use distributed=per_rank to give every rank its own run)",
                spec.name, p.info.node,
            )  # fmt: skip
            return False

        orch = Orchestrator(None, max_buffered=settings.max_buffered, stop_timeout=settings.stop_timeout)
        workers = bind_backends(specs, context_for, orch, accept=can_attach,
                                on_error=lambda spec, exc: _not_available(spec.name, exc), clock=orch.clock)  # fmt: skip
        if not workers:
            return
        with self._lock:
            if self._closed.is_set():
                return
            self.orchestrator = orch
            for worker in workers:
                orch.add_worker(worker)
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

    def __init__(self, append: Append, p: Plan) -> None:
        self._append = append
        self._plan = p
        self._steps: Counter[str] = Counter()

    def log_metric(self, name: str, value: Any, iteration: int | None = None) -> None:
        from tracelet.core.contract.values import to_float

        label = self._plan.system_name(name)
        step = self._steps[label] if iteration is None else iteration
        self._steps[label] += 1
        self._append(("m", label, to_float(value), step, time.time()))


def _not_available(name: str, exc: BaseException) -> None:
    logger.warning("tracelet: backend %r not available for node metrics: %s", name, exc)


def _plugin_metadata(plugin: Any) -> Any:
    fn = getattr(plugin, "plugin_metadata", None)
    try:
        return fn() if callable(fn) else None
    except Exception:
        return None
