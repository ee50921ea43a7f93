"""The group id: one id for a run, shared by every rank of a job, unique per launch where the launcher allows.

The group id is agreed on at start, in this order: ``TRACELET_RUN_GROUP`` (the user's own); torchrun's
launcher store (``MASTER_ADDR``/``MASTER_PORT``, used only when the program has imported
``torch.distributed`` already, so this module never pays for importing torch): rank 0 publishes its run
id and the others read it; else a launcher's job id (``TORCHELASTIC_RUN_ID`` unless ``none``,
``SLURM_JOB_ID`` + ``SLURM_STEP_ID``, ``PMIX_NAMESPACE``, ``OMPI_MCA_ess_base_jobid``) hashed with the run's
name and its sequence number in the process; else ``MASTER_ADDR:MASTER_PORT`` hashed likewise (a warning
says that reruns on the same port share it). Every rank must start its experiments in the same order.

Nothing here imports torch: its launcher store is used only when the program imported ``torch.distributed``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Mapping

from tracelet.core.contract.grouping import digest
from tracelet.core.run.ranks import RankInfo, warn_once

STORE_TIMEOUT_CAP = 60.0  # seconds a rank waits for rank 0 to publish the group id through the store

_sequence: Counter[str] = Counter()
_sequence_lock = threading.Lock()


def _next_sequence(name: str) -> int:
    with _sequence_lock:
        _sequence[name] += 1
        return _sequence[name]


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
        warn_once(f"store:{type(exc).__name__}", "tracelet: the launcher store at %s:%s did not answer (%s)", addr,
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
    key = f"tracelet/group/{restart}/{digest(project, name)}/{sequence}"
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
        warn_once(
            "group:master",
            "tracelet: no launcher job id and no launcher store: ranks are grouped by MASTER_ADDR:MASTER_PORT, "
            "so two launches on the same port share a group; set TRACELET_RUN_GROUP to a per-launch id",
        )
    return digest(job, project, name, sequence)
