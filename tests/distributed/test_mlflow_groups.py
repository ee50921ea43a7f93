"""MLflow grouping of a per_rank job, read back through MlflowClient (a sqlite store; one process per rank)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from mlflow import MlflowClient

import tracelet
from tracelet.core.run import groups
from tracelet.plugin import RunContext
from tracelet_mlflow.backend import MLflowBackend
from tracelet_mlflow.groups import PARENT_TAG, ROLE_TAG, Group
from tracelet_mlflow.tags import native_tags


def _as_rank0_of_two(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2",
                       "TRACELET_RUN_GROUP": "launch-1", "TRACELET_DISTRIBUTED": "per_rank"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    groups._sequence.clear()  # a fresh process in a real job


def test_per_rank_parent_is_not_found_as_rank0s_own_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`tracelet.run_id` names one MLflow run: rank 0's child, never the group's parent as well."""
    _as_rank0_of_two(monkeypatch)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    exp = tracelet.start_logging("train", project="groups", backend="mlflow", config={"mlflow_tracking_uri": uri})
    exp.log_metric("loss", 1.0, 0)
    report = exp.stop()
    assert report is not None and report.complete
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("groups")
    assert experiment is not None
    found = client.search_runs([experiment.experiment_id], filter_string=f"tags.`tracelet.run_id` = '{exp.id}'")
    assert [r.info.run_name for r in found] == ["train/rank0"]
    parent = client.get_run(found[0].data.tags[PARENT_TAG])
    assert parent.info.run_name == "train" and parent.data.tags[ROLE_TAG] == "parent"


def test_retried_start_after_the_parent_was_made_opens_rank0s_own_run(tmp_path: Path) -> None:
    """A start retried after a lost create_run answer (the parent made, rank 0's run not) must not take the
    parent for rank 0's run: rank 0's points would land in the parent."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    meta = {"mode": "per_rank", "rank": 0, "local_rank": 0, "world_size": 2, "node_rank": 0, "node": "n",
            "launcher": "env", "group": "launch-2", "group_name": "train", "role": "member"}  # fmt: skip
    run = RunContext(run_id="rank0-run", name="train/rank0", project="groups",
                     created_at=datetime.now(timezone.utc), metadata={"distributed": meta})  # fmt: skip
    backend = MLflowBackend()
    backend.plugin_setup({"tracking_uri": uri})
    backend._connect()
    assert backend.client is not None
    experiment_id = backend._experiment("groups")
    # What the first attempt did before its create_run of rank 0's own run failed: the parent, with the
    # tags _create_run hands it.
    first = Group(run)
    parent_id = first.child_tags(backend.client, experiment_id, run, native_tags(run))[PARENT_TAG]
    backend._create_tried = True  # the worker's retry of backend_start_run
    details = backend.backend_start_run(run)
    assert details["run_id"] != parent_id
    own = backend.client.get_run(details["run_id"])
    assert own.info.run_name == "train/rank0" and own.data.tags[PARENT_TAG] == parent_id
