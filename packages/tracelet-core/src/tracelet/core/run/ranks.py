"""Which process of a multi-process job this is, read from the environment every launcher sets.

Nothing here imports torch (or any launcher library).

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
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

import attrs

logger = logging.getLogger("tracelet")

_warned: set[str] = set()


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


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log `message` the first time `key` is seen in this process (a broken environment is said once)."""
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
        warn_once(f"env:{exc}", "tracelet: %s; this process is treated as a single process (rank 0 of 1)", exc)
        found = None
    if found is None:
        found = _process_group()
    if found is None:
        return RankInfo(node=node_name(env))
    launcher, rank, world, local, node, local_world = found
    world = max(world, 1)
    if not 0 <= rank < world:
        warn_once(
            f"range:{rank}/{world}", "tracelet: rank %d outside a world of %d (%s); treated as a single process",
            rank, world, launcher,
        )  # fmt: skip
        return RankInfo(node=node_name(env))
    if local_world is None or local_world < 1:
        local_world = world if node in (None, 0) and local == rank else max(local + 1, 1)
    if node is None:
        node = rank // local_world if local_world else 0
    return RankInfo(rank, local, world, node, local_world, launcher, node_name(env))
