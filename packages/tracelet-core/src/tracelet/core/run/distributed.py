"""Rank awareness: what the runs of each process of a multi-process job do.

Where this process sits in its job is read by `tracelet.core.run.ranks` (from the launcher's environment; nothing
imports torch), the group id every rank agrees on by `tracelet.core.run.groups`, and a node's system metrics
in rank 0's run are written by `tracelet.core.run.idle`, with everything else a rank that does not report does.

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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from tracelet.core.run.groups import resolve_group
from tracelet.core.run.ranks import RankInfo, detect
from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from datetime import datetime

    from tracelet.core.contract.records import RunStatus
    from tracelet.settings import TraceletSettings

MODES = ("rank0", "per_rank", "off")
RANK0, PER_RANK, OFF = MODES


class DistributedRun(Protocol):
    """What this module uses of an experiment (`tracelet.core.experiment.Experiment`; not the class itself: no
    import cycle). `stop` makes it a `lifecycle.Run`."""

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


def parse_mode(value: Any) -> str:
    mode = str(value or RANK0).strip().lower().replace("-", "_")
    if mode not in MODES:
        raise ConfigurationError(
            f"distributed={value!r} is not a policy Tracelet knows: use rank0 (only global rank 0 reports; "
            "the default), per_rank (one run per rank, grouped) or off (every process independent)"
        )
    return mode


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
