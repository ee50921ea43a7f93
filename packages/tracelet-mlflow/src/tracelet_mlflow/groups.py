"""Runs of a multi-process job in MLflow: grouped the way MLflow's UI nests them.

Tracelet's core tells the backend where the process sits through ``RunContext.metadata["distributed"]``
(``tracelet.core.run.distributed``): rank, world size, node, and for grouped runs a ``group`` id shared by every
rank of the launch and a ``role``:

- ``member`` (policy ``per_rank``): each rank's run ``<name>/rank<N>`` is a child of one parent run ``<name>``
  (tag ``mlflow.parentRunId``). Rank 0 creates the parent (tagged ``tracelet.group`` and
  ``tracelet.group.role=parent``) and ends it with its own status; the other ranks find it by those tags,
  waiting for rank 0 (a start that finds no parent yet is retried by the worker, never blocking training).
- ``main`` (policy ``rank0``, global rank 0): the job's one run, tagged with the group so others can find it.
- ``attach`` (policy ``rank0``, local rank 0 of another node): no run of its own; its node's system metrics
  go into the ``main`` run by its run id (MLflow takes writes to one run from many clients), and it never
  ends that run.

A start that finds no run to join waits up to config ``group_wait`` seconds (``mlflow_group_wait``, default 10)
per attempt, then the worker retries it with backoff until the run's stop deadline.

Every run of a multi-process job carries ``tracelet.rank``, ``tracelet.world_size``, ``tracelet.node`` and
``tracelet.launcher`` tags.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tracelet.plugin import RunContext
from tracelet_mlflow.tags import RUN_ID_TAG

if TYPE_CHECKING:
    from mlflow import MlflowClient

GROUP_TAG = "tracelet.group"
ROLE_TAG = "tracelet.group.role"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_GROUP_WAIT = 10.0  # seconds one start attempt waits for rank 0's run; then the worker retries


class NotYetThere(RuntimeError):
    """Rank 0 has not created the run this process joins yet (a transient error: the start is retried)."""


class Group:
    """What one backend instance does about the job its process belongs to."""

    def __init__(self, run: RunContext, wait: float = DEFAULT_GROUP_WAIT) -> None:
        meta = (run.metadata or {}).get("distributed") or {}
        self.meta: dict[str, Any] = dict(meta)
        self.role: str | None = meta.get("role")
        self.group: str | None = meta.get("group")
        self.rank: int = int(meta.get("rank", 0) or 0)
        self.wait = wait
        self.parent_id: str | None = None  # per_rank, rank 0: the parent run this process also ends

    @property
    def attaches(self) -> bool:
        """True when this process writes into rank 0's run instead of opening one."""
        return self.role == "attach" and bool(self.group)

    def tags(self) -> dict[str, str]:
        """Tags every run of a multi-process job carries."""
        if not self.meta:
            return {}
        out = {
            f"tracelet.{key}": str(self.meta[key])
            for key in ("rank", "local_rank", "world_size", "node", "node_rank", "launcher")
            if self.meta.get(key) is not None
        }
        if self.group:
            out[GROUP_TAG] = self.group
            out[ROLE_TAG] = "main" if self.role == "main" else "member"
        return out

    def child_tags(
        self, client: MlflowClient, experiment_id: str, run: RunContext, base: dict[str, str]
    ) -> dict[str, str]:
        """Tags of this process's own run: the job's tags, and its parent when it is a per_rank member."""
        tags = self.tags()
        if self.role == "member" and self.group:
            tags[PARENT_TAG] = self._parent(client, experiment_id, run, base)
        return tags

    def _parent(self, client: MlflowClient, experiment_id: str, run: RunContext, base: dict[str, str]) -> str:
        if self.parent_id is not None:
            return self.parent_id
        found = find(client, experiment_id, self.group or "", "parent", self.wait if self.rank != 0 else 0.0)
        if found is None and self.rank != 0:
            raise NotYetThere(f"no parent run of group {self.group} yet (rank 0 creates it); retrying")
        if found is None:
            parent_tags = {**base, **self.tags(), ROLE_TAG: "parent"}
            # The parent is the group's, not rank 0's: without rank 0's run id (and local folder) a search by
            # `tracelet.run_id` (a user's, or a retried start looking for the run it already made) finds
            # rank 0's own run only, never the parent.
            for key in (RUN_ID_TAG, "tracelet.run_dir", "tracelet.rank", "tracelet.local_rank", "tracelet.node",
                        "tracelet.node_rank"):  # fmt: skip
                parent_tags.pop(key, None)
            created = client.create_run(
                experiment_id,
                start_time=int(run.created_at.timestamp() * 1000),
                tags=parent_tags,
                run_name=str(self.meta.get("group_name") or run.name),
            )
            found = created.info.run_id
        if self.rank == 0:
            self.parent_id = found
        return found

    def attached_run(self, client: MlflowClient, experiment_id: str) -> str:
        """The run id of rank 0's run, which this node leader writes its system metrics into."""
        found = find(client, experiment_id, self.group or "", "main", self.wait)
        if found is None:
            raise NotYetThere(f"rank 0's run of group {self.group} is not there yet; retrying")
        return found


def find(client: MlflowClient, experiment_id: str, group: str, role: str, wait: float) -> str | None:
    """The newest run of `group` with `role`, polling up to `wait` seconds for it to appear."""
    query = f"tags.`{GROUP_TAG}` = '{group}' and tags.`{ROLE_TAG}` = '{role}'"
    deadline = time.monotonic() + wait
    while True:
        runs = client.search_runs([experiment_id], filter_string=query, max_results=1, order_by=["start_time DESC"])
        if runs:
            return str(runs[0].info.run_id)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.25)
