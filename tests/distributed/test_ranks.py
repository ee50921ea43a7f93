"""Rank detection from every launcher's environment, and what an Experiment does on each rank (no torch)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

import tracelet
from tracelet.core.contract import grouping
from tracelet.core.run import distributed, groups
from tracelet.core.run.ranks import RankInfo, detect
from tracelet.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, RankInfo(node="n")),
        (
            {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "GROUP_RANK": "1", "LOCAL_WORLD_SIZE": "2",
             "TORCHELASTIC_RUN_ID": "job"},
            RankInfo(3, 1, 8, 1, 2, "torchrun", "n"),
        ),
        (
            {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "ACCELERATE_MIXED_PRECISION": "no"},
            RankInfo(1, 1, 2, 0, 2, "accelerate", "n"),
        ),
        (
            {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NODEID": "2",
             "SLURM_JOB_NUM_NODES": "4"},
            RankInfo(5, 1, 8, 2, 2, "slurm", "n"),
        ),
        (
            {"OMPI_COMM_WORLD_RANK": "6", "OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "2",
             "OMPI_COMM_WORLD_LOCAL_SIZE": "4"},
            RankInfo(6, 2, 8, 1, 4, "openmpi", "n"),
        ),
        (
            {"PMI_RANK": "3", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2"},
            RankInfo(3, 1, 4, 1, 2, "pmi", "n"),
        ),
        # torchrun inside a SLURM allocation: torchrun's variables win.
        (
            {"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "GROUP_RANK": "0", "LOCAL_WORLD_SIZE": "4",
             "SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
            RankInfo(1, 1, 4, 0, 4, "env", "n"),
        ),
    ],
)  # fmt: skip
def test_detect_every_launcher(env: dict[str, str], expected: RankInfo) -> None:
    assert detect({**env, "TRACELET_NODE_NAME": "n"}) == expected


def test_broken_launcher_variables_mean_a_single_process_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        assert detect({"RANK": "one", "WORLD_SIZE": "2", "TRACELET_NODE_NAME": "n"}) == RankInfo(node="n")
        assert detect({"RANK": "5", "WORLD_SIZE": "2", "TRACELET_NODE_NAME": "n"}) == RankInfo(node="n")
    assert "RANK='one' is not an integer" in caplog.text and "rank 5 outside a world of 2" in caplog.text


def test_node_name_defaults_to_the_host() -> None:
    import socket

    assert detect({}).node == socket.gethostname()


def test_unknown_policy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_DISTRIBUTED", "everyone")
    with pytest.raises(ConfigurationError, match="rank0.*per_rank.*off"):
        tracelet.start_logging("x", backend="local")
    assert distributed.parse_mode("PER-RANK") == "per_rank"


def _as_rank(monkeypatch: pytest.MonkeyPatch, rank: int, world: int = 2, local: int | None = None) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("LOCAL_RANK", str(rank if local is None else local))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(world))
    monkeypatch.setenv("TRACELET_RUN_GROUP", "job-1")


def test_rank0_policy_nonzero_rank_is_a_no_op_that_never_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _as_rank(monkeypatch, 1)
    exp = tracelet.start_logging("train", backend="local")
    exp.log_metric("loss", "not a number", "not a step")  # rank 0 would raise TypeError; rank 1 ignores it
    exp.log_metric("loss", 1.0, 3)
    exp.log_params({"lr": object()})
    exp.set_tags({"a": 1})
    exp.set_iteration("x")
    assert exp.flush() is True
    assert exp.log_artifact("nothing-here") == {} and exp.list_artifacts() == [] and exp.get_artifact("a") is None
    assert exp.capture_model(object()) == {} and exp.capture_hyperparams() == {}
    assert exp.backends == [] and exp.run_dir is None
    assert exp.stop() is None
    with exp:
        pass
    assert not (tmp_path / "tracelet-runs").exists()  # the local store stays off


def test_rank0_policy_every_public_method_of_a_nonzero_rank_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the common ones: log_metric_at (TensorBoard's relay logs through it) must not raise either."""
    from tracelet.core.experiment import Experiment

    _as_rank(monkeypatch, 1)
    exp = tracelet.start_logging("train", backend="local")
    exp.log_metric_at("loss", "not a number", "not a step", "not a time")
    exp.log_metric_at("loss", 1.0, 3, None)
    # Methods with nothing to do with a run: building an artifact, and what lifecycle calls itself.
    pure = {"create_artifact", "start", "detach_after_fork"}
    public = [n for n, v in vars(Experiment).items() if callable(v) and not n.startswith("_") and n not in pure]
    idle = type(exp)
    assert isinstance(exp, Experiment) and idle is not Experiment
    not_idle = [n for n in public if n not in vars(idle)]  # the idle class defines its own no-op of each
    assert not_idle == [], f"Experiment methods that still do work on a non-reporting rank: {not_idle}"
    assert vars(exp).keys().isdisjoint(public)  # no method is replaced on the instance
    exp.stop()


def test_rank0_policy_a_stopped_nonzero_rank_is_not_the_active_experiment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As on rank 0: after stop() nothing is active, and the next start_logging has nothing to stop."""
    _as_rank(monkeypatch, 1)
    exp = tracelet.start_logging("first", backend="local")
    assert tracelet.get_active_experiment() is exp
    exp.stop()
    assert tracelet.get_active_experiment() is None
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        tracelet.start_logging("second", backend="local").stop()
    assert "stops the active experiment" not in caplog.text


def test_rank0_policy_rank0_records_where_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_rank(monkeypatch, 0)
    exp = tracelet.start_logging("train", backend="local")
    exp.log_metric("loss", 1.0, 0)
    report = exp.stop()
    assert report is not None and report.complete and exp.name == "train"
    meta = json.loads((exp.run_dir / "run.json").read_text())["metadata"]["distributed"]
    assert meta["mode"] == "rank0" and meta["rank"] == 0 and meta["world_size"] == 2 and meta["launcher"] == "env"
    assert "group" not in meta  # one node: nobody needs to find rank 0's run


def test_distributed_local_store_keeps_a_nonzero_ranks_own_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet.core.engine import journal

    _as_rank(monkeypatch, 1)
    monkeypatch.setenv("TRACELET_DISTRIBUTED_LOCAL_STORE", "true")
    exp = tracelet.start_logging("train", backend="local")
    exp.log_metric("loss", 2.5, 7)
    report = exp.stop()
    assert report is not None and exp.name == "train/rank1" and exp.backend_names == []
    events = [e for _, e in journal.read_events(exp.run_dir / journal.EVENTS_FILE) if e[0] == "m"]
    assert [(e[1], e[2], e[3]) for e in events] == [("loss", 2.5, 7)]


def test_per_rank_names_each_rank_and_shares_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_DISTRIBUTED", "per_rank")
    metas = []
    for rank in (0, 1):
        _as_rank(monkeypatch, rank)
        groups._sequence.clear()  # each rank is its own process in a real job
        exp = tracelet.start_logging("train", backend="local")
        exp.stop()
        assert exp.name == f"train/rank{rank}"
        metas.append(json.loads((exp.run_dir / "run.json").read_text())["metadata"]["distributed"])
    assert metas[0]["group"] == metas[1]["group"] == "job-1"
    assert [m["role"] for m in metas] == ["member", "member"] and metas[0]["group_name"] == "train"


def test_off_policy_every_process_independent(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_rank(monkeypatch, 1)
    monkeypatch.setenv("TRACELET_DISTRIBUTED", "off")
    exp = tracelet.start_logging("train", backend="local")
    exp.log_metric("loss", 1.0, 0)
    report = exp.stop()
    assert report is not None and report.events == 1 and exp.name == "train" and exp.run_dir is not None
    meta = json.loads((exp.run_dir / "run.json").read_text())["metadata"]["distributed"]
    assert meta["mode"] == "off" and meta["rank"] == 1 and "group" not in meta


def test_group_id_from_launcher_job_ids_is_shared_and_distinct_per_run() -> None:
    info = RankInfo(1, 1, 2, 0, 2, "slurm", "n")
    env = {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0"}
    groups._sequence.clear()
    first = groups.resolve_group(info, "a", "p", "id1", 1.0, env)
    second = groups.resolve_group(info, "a", "p", "id2", 1.0, env)  # the same name started again
    groups._sequence.clear()
    assert groups.resolve_group(info, "a", "p", "other-rank-id", 1.0, env) == first  # another rank agrees
    assert second != first
    other_job = groups.resolve_group(info, "a", "p", "x", 1.0, {"SLURM_JOB_ID": "78"})
    assert other_job != first


def test_group_label_names_one_launch_and_keeps_ids_apart() -> None:
    def label(group: str, name: str = "train", role: str = "member") -> str | None:
        return grouping.group_label({"distributed": {"group": group, "group_name": name, "role": role}})

    # Rank 0's run ids (shared through the launcher's store) start with the date: two launches minutes apart
    # must not share a label.
    assert label("20261128-141742-527123") == "train-20261128-141742-527123"
    assert label("20261128-141742-527123") != label("20261128-141901-0af3b1")
    long_ids = ["exp-" + "x" * 40 + "-1", "exp-" + "x" * 40 + "-2"]  # TRACELET_RUN_GROUP can be anything
    assert label(long_ids[0]) != label(long_ids[1]) and len(label(long_ids[0]) or "") <= 40
    assert len(label("g", name="n" * 300) or "") == grouping.GROUP_LABEL_MAX
    assert (label("g", name="n" * 300) or "").endswith("-g")
    assert label("g", role="main") is None and grouping.group_label({}) is None


def test_system_metrics_are_labelled_by_node() -> None:
    got: list[tuple[str, float]] = []
    p = distributed.Plan("rank0", RankInfo(0, 0, 2, 0, 2, "env", "gpu-7"), True, "x", label_system=True)
    log = p.wrap_system(lambda name, value, iteration=None: got.append((name, value)))
    log("system/cpu_percent", 3.0)
    log("gpu0/util", 1.0)
    assert got == [("system/gpu-7/cpu_percent", 3.0), ("system/gpu-7/gpu0/util", 1.0)]
    single = distributed.Plan("rank0", RankInfo(node="h"), True, "x")
    assert single.wrap_system(print) is print


def test_the_idle_path_costs_no_torch_import() -> None:
    import subprocess
    import sys

    code = (
        "import os, sys; os.environ.update(RANK='1', WORLD_SIZE='2', TRACELET_TRACK_SYSTEM='false');"
        "import tracelet; e = tracelet.start_logging('x'); e.log_metric('a', 1.0); e.stop();"
        "print('torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
