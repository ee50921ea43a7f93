"""Rank awareness: which process of a multi-process job this is, and what its runs do about it.

Nothing here imports torch (or any launcher library): ranks come from the environment every launcher sets.

Detection, first match wins (a `torchrun` inside a SLURM allocation is seen as torchrun):

=============  ========================  ================  ==================  =====================
launcher       global rank               local rank        world size          node
=============  ========================  ================  ==================  =====================
torchrun,      ``RANK``                  ``LOCAL_RANK``    ``WORLD_SIZE``      ``GROUP_RANK``
accelerate                                                                     (``NODE_RANK``)
SLURM          ``SLURM_PROCID``          ``SLURM_LOCALID`` ``SLURM_NTASKS``    ``SLURM_NODEID``
Open MPI       ``OMPI_COMM_WORLD_RANK``  ``..._LOCAL_RANK`` ``..._SIZE``       rank // local size
MPICH / Intel  ``PMI_RANK``              ``MPI_LOCALRANKID`` ``PMI_SIZE``      rank // local size
=============  ========================  ================  ==================  =====================

Without any of these, an initialised ``torch.distributed`` process group (``torch.multiprocessing.spawn``
with ``init_process_group(rank=..., world_size=...)`` before ``start()``) gives rank and world size, on one
node; it is consulted only when the program has imported ``torch.distributed`` itself.

A variable that is not an integer is reported once (a warning) and that launcher is skipped: a broken
environment never stops training, it only makes the process count as a single one. The node's label is
``TRACELET_NODE_NAME`` when set (containers with random host names), else the host name.

The policy, setting ``distributed`` (``TRACELET_DISTRIBUTED``):

- ``rank0`` (default): only global rank 0 opens backend runs. On every other rank each ``Experiment``
  method is a no-op that accepts anything and never raises, and ``stop()`` returns at once; the local store
  is off there unless ``distributed_local_store`` asks for it (then the rank journals its own points,
  delivered to no tracker). On a node other than rank 0's, the node's local rank 0 still samples system
  metrics and writes them, labelled ``system/<node>/...``, into rank 0's run through every backend that
  declares the ``attach`` capability (a second writer to one run; MLflow does, by run id).
- ``per_rank``: every rank opens its own run, named ``<name>/rank<N>``; backends group them natively.
- ``off``: every process is independent, as if it were alone.

Backends learn all this from ``RunContext.metadata["distributed"]`` (see ``Plan.metadata``): ``rank``,
``local_rank``, ``world_size``, ``node_rank``, ``node``, ``launcher``, ``mode``, and for grouped runs
``group`` (one id shared by every rank of this job and run, unique per launch), ``group_name`` (the name
the user gave) and ``role`` (``main``: rank 0's run in rank0 mode; ``member``: a rank's run in per_rank
mode; ``attach``: a node's system-metrics writer into rank 0's run).

The group id is agreed on at start, in this order: ``TRACELET_RUN_GROUP`` (the user's own); torchrun's
launcher store (``MASTER_ADDR``/``MASTER_PORT``, used only when the program has imported
``torch.distributed`` already, so this module never pays for importing torch): rank 0 publishes its run
id and the others read it; else a launcher's job id (``TORCHELASTIC_RUN_ID`` unless ``none``,
``SLURM_JOB_ID`` + ``SLURM_STEP_ID``, ``PMIX_NAMESPACE``, ``OMPI_MCA_ess_base_jobid``) hashed with the run's
name and its sequence number in the process; else ``MASTER_ADDR:MASTER_PORT`` hashed likewise (a warning
says that reruns on the same port share it). Every rank must start its experiments in the same order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from datetime import datetime

    from tracelet.core.contract.records import RunStatus
    from tracelet.settings import TraceletSettings

logger = logging.getLogger("tracelet")

MODES = ("rank0", "per_rank", "off")
RANK0, PER_RANK, OFF = MODES
ATTACH_CAPABILITY = "attach"
STORE_TIMEOUT_CAP = 60.0  # seconds a rank waits for rank 0 to publish the group id through the store
CLOSE_SETUP_WAIT = 5.0  # seconds a node leader's stop() waits for its system-metrics writer to come up
GROUP_LABEL_MAX = 128  # W&B's limit on a group name; a longer run name is cut, never the group id
GROUP_ID_CHARS = 24  # a group id up to this long appears whole in a group label (run ids, digests)

_warned: set[str] = set()
_sequence: Counter[str] = Counter()
_sequence_lock = threading.Lock()


class DistributedRun(Protocol):
    """What this module uses of an experiment (`tracelet.core.experiment.Experiment`; not the class itself: no
    import cycle). `make_idle` replaces its methods on the instance; `stop` makes it a `lifecycle.Run`."""

    @property
    def name(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def project(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def settings(self) -> TraceletSettings: ...

    @property
    def options(self) -> dict[str, Any]: ...

    @property
    def backend_names(self) -> list[str]: ...

    def stop(self, *, status: RunStatus | str = ...) -> Any: ...

    def end(self) -> Any: ...


@attrs.frozen
class RankInfo:
    """Where this process sits in its job. A lone process is rank 0 of a world of 1."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    node_rank: int = 0
    local_world_size: int = 1
    launcher: str | None = None
    node: str = ""

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def nodes(self) -> int:
        """How many nodes the job spans (assuming as many processes per node as on this one)."""
        return max(1, -(-self.world_size // max(self.local_world_size, 1)))

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def _int(env: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def _launcher(env: Mapping[str, str]) -> tuple[str, int, int, int, int | None, int | None] | None:
    """(launcher, rank, world size, local rank, node rank or None, local world size or None)."""
    if "RANK" in env and "WORLD_SIZE" in env:
        name = (
            "torchrun"
            if "TORCHELASTIC_RUN_ID" in env
            else "accelerate"
            if any(k.startswith("ACCELERATE_") for k in env)
            else "env"
        )
        node = _int(env, "GROUP_RANK")
        if node is None:
            node = _int(env, "NODE_RANK")
        return (
            name,
            _int(env, "RANK"),
            _int(env, "WORLD_SIZE"),
            _int(env, "LOCAL_RANK", 0),
            node,
            _int(env, "LOCAL_WORLD_SIZE"),
        )  # type: ignore[return-value]
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        nodes = _int(env, "SLURM_JOB_NUM_NODES") or _int(env, "SLURM_NNODES")
        ntasks = _int(env, "SLURM_NTASKS") or 1
        per_node = -(-ntasks // nodes) if nodes else None
        return (
            "slurm",
            _int(env, "SLURM_PROCID"),
            ntasks,
            _int(env, "SLURM_LOCALID", 0),
            _int(env, "SLURM_NODEID"),
            per_node,
        )  # type: ignore[return-value]
    if "OMPI_COMM_WORLD_RANK" in env:
        return (
            "openmpi",
            _int(env, "OMPI_COMM_WORLD_RANK"),
            _int(env, "OMPI_COMM_WORLD_SIZE", 1),
            _int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0),
            None,
            _int(env, "OMPI_COMM_WORLD_LOCAL_SIZE"),
        )  # type: ignore[return-value]
    if "PMI_RANK" in env:
        local = _int(env, "MPI_LOCALRANKID")
        if local is None:
            local = _int(env, "PMI_LOCAL_RANK", 0)
        return "pmi", _int(env, "PMI_RANK"), _int(env, "PMI_SIZE", 1), local, None, _int(env, "MPI_LOCALNRANKS")  # type: ignore[return-value]
    return None


def _process_group() -> tuple[str, int, int, int, int | None, int | None] | None:
    """No launcher variables, but an initialised torch.distributed process group (`torch.multiprocessing.spawn`
    with an explicit `init_process_group(rank=...)`): its rank and size, all on this node. Looked up only when
    the program imported torch.distributed itself."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is None or not (dist.is_available() and dist.is_initialized()):
            return None
        rank, world = int(dist.get_rank()), int(dist.get_world_size())
    except Exception:
        return None
    return "torch.distributed", rank, world, rank, 0, world


def node_name(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("TRACELET_NODE_NAME") or socket.gethostname() or "node"


def detect(env: Mapping[str, str] | None = None) -> RankInfo:
    """This process's rank, local rank, world size and node, from the launcher's environment variables."""
    env = os.environ if env is None else env
    try:
        found = _launcher(env)
    except ValueError as exc:
        _warn_once(f"env:{exc}", "tracelet: %s; this process is treated as a single process (rank 0 of 1)", exc)
        found = None
    if found is None:
        found = _process_group()
    if found is None:
        return RankInfo(node=node_name(env))
    launcher, rank, world, local, node, local_world = found
    world = max(world, 1)
    if not 0 <= rank < world:
        _warn_once(
            f"range:{rank}/{world}", "tracelet: rank %d outside a world of %d (%s); treated as a single process",
            rank, world, launcher,
        )  # fmt: skip
        return RankInfo(node=node_name(env))
    if local_world is None or local_world < 1:
        local_world = world if node in (None, 0) and local == rank else max(local + 1, 1)
    if node is None:
        node = rank // local_world if local_world else 0
    return RankInfo(rank, local, world, node, local_world, launcher, node_name(env))


def parse_mode(value: Any) -> str:
    mode = str(value or RANK0).strip().lower().replace("-", "_")
    if mode not in MODES:
        raise ConfigurationError(
            f"distributed={value!r} is not a policy Tracelet knows: use rank0 (only global rank 0 reports; "
            "the default), per_rank (one run per rank, grouped) or off (every process independent)"
        )
    return mode


# -- the group id ------------------------------------------------------------------------------------------------


def _next_sequence(name: str) -> int:
    with _sequence_lock:
        _sequence[name] += 1
        return _sequence[name]


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def _store_exchange(key: str, value: str, info: RankInfo, timeout: float, env: Mapping[str, str]) -> str | None:
    """Rank 0 publishes `value` under `key` in torchrun's launcher store; the other ranks read it.

    Only when the program imported torch.distributed already and a store is known to be up: torchrun's agent
    hosts one (`TORCHELASTIC_USE_AGENT_STORE`), and an initialised default process group has one on rank 0.
    """
    dist = sys.modules.get("torch.distributed")
    addr, port = env.get("MASTER_ADDR"), env.get("MASTER_PORT")
    if dist is None or not addr or not port or not hasattr(dist, "TCPStore"):
        return None
    agent = str(env.get("TORCHELASTIC_USE_AGENT_STORE", "")).lower() == "true"
    try:
        initialised = bool(dist.is_available() and dist.is_initialized())
    except Exception:
        initialised = False
    if not (agent or initialised):
        return None
    from datetime import timedelta

    try:
        store = dist.TCPStore(addr, int(port), is_master=False, timeout=timedelta(seconds=timeout))
        if info.rank == 0:
            store.set(key, value)
            return value
        return bytes(store.get(key)).decode()
    except Exception as exc:  # a store we cannot reach is a reason to fall back, never to fail the run
        _warn_once(f"store:{type(exc).__name__}", "tracelet: the launcher store at %s:%s did not answer (%s)", addr,
                   port, exc)  # fmt: skip
        return None


def resolve_group(info: RankInfo, name: str, project: str, run_id: str, timeout: float,
                  env: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """One id for this run shared by every rank of the job, unique per launch where the launcher allows."""
    env = os.environ if env is None else env
    sequence = _next_sequence(f"{project}\x1f{name}")
    explicit = env.get("TRACELET_RUN_GROUP")
    if explicit:
        return explicit if sequence == 1 else f"{explicit}-{sequence}"
    restart = env.get("TORCHELASTIC_RESTART_COUNT", "0")
    key = f"tracelet/group/{restart}/{_digest(project, name)}/{sequence}"
    shared = _store_exchange(key, run_id, info, min(timeout, STORE_TIMEOUT_CAP), env)
    if shared:
        return shared
    job = None
    if env.get("TORCHELASTIC_RUN_ID", "none") not in ("", "none"):
        job = f"torchelastic:{env['TORCHELASTIC_RUN_ID']}:{restart}"
    elif env.get("SLURM_JOB_ID"):
        job = f"slurm:{env['SLURM_JOB_ID']}.{env.get('SLURM_STEP_ID', '')}"
    elif env.get("PMIX_NAMESPACE") or env.get("OMPI_MCA_ess_base_jobid"):
        job = f"mpi:{env.get('PMIX_NAMESPACE') or env.get('OMPI_MCA_ess_base_jobid')}"
    if job is None:
        job = f"master:{env.get('MASTER_ADDR', '')}:{env.get('MASTER_PORT', '')}:{restart}"
        _warn_once(
            "group:master",
            "tracelet: no launcher job id and no launcher store: ranks are grouped by MASTER_ADDR:MASTER_PORT, "
            "so two launches on the same port share a group; set TRACELET_RUN_GROUP to a per-launch id",
        )
    return _digest(job, project, name, sequence)


# -- what a run does on this rank ------------------------------------------------------------------------------


@attrs.define
class Plan:
    """What `Experiment.start()` does on this rank (see the module docstring)."""

    mode: str
    info: RankInfo
    active: bool  # opens backend runs (or, with distributed_local_store, a local run of its own)
    run_name: str
    role: str | None = None  # main / member / attach, None when not grouped
    group: str | None = None
    group_name: str | None = None
    local_only: bool = False  # an inactive rank that keeps its own local store, delivered nowhere
    label_system: bool = False  # system metrics go out as system/<node>/...

    @property
    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"mode": self.mode, **self.info.as_dict()}
        if self.group is not None:
            meta.update(group=self.group, group_name=self.group_name, role=self.role)
        return meta

    def wrap_system(self, log_metric: Callable[..., None]) -> Callable[..., None]:
        return system_log_metric(log_metric, self)

    def system_name(self, name: str) -> str:
        """`system/cpu_percent` -> `system/<node>/cpu_percent` (other names get `system/<node>/` in front)."""
        rest = name[len("system/") :] if name.startswith("system/") else name
        return f"system/{self.info.node}/{rest}"


def group_label(metadata: Mapping[str, Any] | None) -> str | None:
    """A readable name for the group of a ``per_rank`` job, the same on every rank of one launch.

    For backends that group runs by a name (W&B's ``group``, a ClearML tag): ``<group_name>-<group id>``, an
    id longer than ``GROUP_ID_CHARS`` replaced by a digest of it (never a prefix: ids that are run ids start
    with the date). None when `metadata` (a run's ``RunContext.metadata``) is not one rank's run of a
    ``per_rank`` job.
    """
    meta = (metadata or {}).get("distributed") or {}
    group = str(meta.get("group") or "")
    if not group or meta.get("role") != "member":
        return None
    short = group if len(group) <= GROUP_ID_CHARS else _digest(group)[:GROUP_ID_CHARS]
    name = str(meta.get("group_name") or "run")[: GROUP_LABEL_MAX - len(short) - 1]
    return f"{name}-{short}"


def plan(experiment: DistributedRun, info: RankInfo | None = None) -> Plan:
    """Decide, from the setting and the launcher's environment, what `experiment` does on this rank."""
    settings = experiment.settings
    mode = parse_mode(getattr(settings, "distributed", RANK0))
    info = detect() if info is None else info
    name = experiment.name
    if mode == OFF or not info.is_distributed:
        return Plan(mode, info, True, name)
    timeout = float(getattr(settings, "start_timeout", 30.0))
    group: str | None
    if mode == PER_RANK:
        group = resolve_group(info, name, experiment.project, experiment.id, timeout)
        return Plan(mode, info, True, f"{name}/rank{info.rank}", "member", group, name, label_system=True)
    # rank0: rank 0 and the node leaders of other nodes need the group (to meet in one run); others nothing.
    leader = info.local_rank == 0 and info.node_rank != 0
    track = bool(getattr(settings, "track_system", False))
    if info.rank == 0:
        group = resolve_group(info, name, experiment.project, experiment.id, timeout) if info.nodes > 1 else None
        return Plan(mode, info, True, name, "main", group, name, label_system=True)
    local_only = bool(getattr(settings, "distributed_local_store", False))
    p = Plan(mode, info, False, f"{name}/rank{info.rank}", local_only=local_only, label_system=True)
    if leader and track:
        p.role, p.group_name = "attach", name  # the group is resolved on the attach thread: start() never waits
    return p


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
        from tracelet.core.engine import lifecycle

        node = NodeMetrics(experiment, p)
        node.start()
        lifecycle.register(experiment)  # its system metrics are delivered at exit too

    def stop(*args: Any, **kwargs: Any) -> None:
        from tracelet.core.engine import lifecycle

        lifecycle.deactivate(experiment)  # as on rank 0: a stopped run is nobody's active experiment
        if node is not None:
            lifecycle.unregister(experiment)
            node.close()
        return None

    # Deliberate monkeypatch of this one instance (instance attributes, found before the class's methods).
    experiment.stop = stop  # type: ignore[method-assign]
    experiment.end = stop  # type: ignore[method-assign]


def system_log_metric(log_metric: Callable[..., None], p: Plan | None) -> Callable[..., None]:
    """What the collectors log through: `log_metric` itself, or, when the job spans processes, a wrapper that
    labels `system/...` readings `system/<node>/...` (so nodes writing into one run never collide)."""
    if p is None or not p.label_system:
        return log_metric
    names: dict[str, str] = {}

    def labelled(name: str, value: Any, iteration: int | None = None) -> None:
        label = names.get(name)
        if label is None:
            label = names[name] = p.system_name(name)
        log_metric(label, value, iteration)

    return labelled


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
                _warn_once(
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
