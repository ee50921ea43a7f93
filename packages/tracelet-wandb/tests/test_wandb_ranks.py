"""`distributed=per_rank` with W&B: the ranks of one launch are real processes with a launcher's environment
(the variables torchrun sets), each writing its own offline run, read back from the transaction logs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracelet_testsupport.wandb import read_run

RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, tracelet
    rank = int(os.environ["RANK"])
    exp = tracelet.start_logging("train", project="ranks", backend="wandb")
    for step in range(5):
        exp.log_metric("loss", rank * 10.0 + step, step)
    print(json.dumps(exp.stop().backends["wandb"].details["transaction_log"]))
    """
)


def launch(launch_ranks: Callable[..., list[Any]], job: str, ranks: list[int], env: dict[str, str],
           cwd: Path) -> list[Path]:  # fmt: skip
    env = {**env, "TRACELET_TRACK_SYSTEM": "false", "TRACELET_DIR": str(cwd / "runs")}
    return [Path(log) for log in launch_ranks(RANK_SCRIPT, job, ranks, 2, env, cwd)]


def test_per_rank_runs_share_one_wandb_group_per_launch(
    tmp_path: Path, python_env: dict[str, str], offline_wandb: dict[str, str], launch_ranks: Callable[..., list[Any]]
) -> None:
    env = {**python_env, **offline_wandb}
    first = [read_run(log) for log in launch(launch_ranks, "job-a", [0, 1], env, tmp_path)]
    again = read_run(launch(launch_ranks, "job-b", [1], env, tmp_path)[0])  # the next launch of the script

    assert [r.run.display_name for r in first] == ["train/rank0", "train/rank1"]
    groups = {r.run.run_group for r in first}
    assert len(groups) == 1 and next(iter(groups)).startswith("train-")
    assert again.run.run_group.startswith("train-") and again.run.run_group not in groups
    for rank, run in enumerate(first):
        assert run.points("loss") == [(step, rank * 10.0 + step) for step in range(5)]
        facts = run.user_config()["tracelet"]["distributed"]
        assert facts["rank"] == rank and facts["world_size"] == 2 and facts["mode"] == "per_rank"
    assert first[0].run.run_id != first[1].run.run_id


def test_wandbs_own_group_variable_wins(
    tmp_path: Path, python_env: dict[str, str], offline_wandb: dict[str, str], launch_ranks: Callable[..., list[Any]]
) -> None:
    env = {**python_env, **offline_wandb, "WANDB_RUN_GROUP": "mine"}
    run = read_run(launch(launch_ranks, "job-c", [1], env, tmp_path)[0])
    assert run.run.run_group == "mine"
