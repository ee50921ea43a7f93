"""`distributed=per_rank` with ClearML: the ranks of one launch are real processes with a launcher's
environment (the variables torchrun sets), each writing its own offline session, read back from disk."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracelet_testsupport.clearml import OfflineSession

RANK_SCRIPT = textwrap.dedent(
    """
    import json, os, tracelet
    rank = int(os.environ["RANK"])
    exp = tracelet.start_logging("train", project="ranks", backend="clearml",
                                 config={"clearml": {"offline": True}, "track_system": False})
    for step in range(5):
        exp.log_metric("loss", rank * 10.0 + step, step)
    print(json.dumps(exp.stop().backends["clearml"].details["task_id"]))
    """
)


def test_per_rank_tasks_share_one_group_tag_per_launch(
    tmp_path: Path, cache_dir: Path, launch_ranks: Callable[..., list[Any]]
) -> None:
    env = dict(os.environ)
    first = [OfflineSession(cache_dir, task) for task in launch_ranks(RANK_SCRIPT, "job-a", [0, 1], 2, env, tmp_path)]
    again = OfflineSession(cache_dir, launch_ranks(RANK_SCRIPT, "job-b", [1], 2, env, tmp_path)[0])  # next launch

    assert [s.task["name"] for s in first] == ["train/rank0", "train/rank1"]
    group_tags = [[t for t in s.task["tags"] if t.startswith("group:")] for s in first]
    assert len(group_tags[0]) == 1 and group_tags[0] == group_tags[1]
    assert group_tags[0][0].startswith("group:train-")
    assert [t for t in again.task["tags"] if t.startswith("group:")] not in ([], group_tags[0])
    for rank, session in enumerate(first):
        assert session.scalars() == {("loss", "loss"): [(step, rank * 10.0 + step) for step in range(5)]}
        props = session.hyperparams()["properties"]
        assert props["tracelet.rank"] == str(rank) and props["tracelet.world_size"] == "2"
    assert first[0].task_id != first[1].task_id
