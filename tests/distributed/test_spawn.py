"""Ranks from `torch.multiprocessing.spawn` (no launcher variables), with forked DataLoader workers: one run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tracelet.core.engine import journal
from tracelet_testsupport.distributed import free_port

JOB = Path(__file__).parent / "spawn_job.py"


def test_spawned_ranks_with_dataloader_workers_give_one_run_of_rank0s_points(
    tmp_path: Path, job_env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env = {**job_env, "TRACELET_DIR": str(tmp_path / "runs"), "TRACELET_TRACK_SYSTEM": "false"}
    done = subprocess.run([sys.executable, str(JOB), str(free_port()), str(out)], env=env, capture_output=True,
                          text=True, timeout=240, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rank0, rank1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank1["report"] is None and rank1["run_dir"] is None and rank1["total"] == 28.0
    assert rank0["report"]["complete"] and rank0["total"] == 28.0
    runs = list((tmp_path / "runs").glob("*/*"))
    assert [str(p) for p in runs] == [rank0["run_dir"]]
    points = [(e[1], e[2]) for _, e in journal.read_events(Path(rank0["run_dir"]) / journal.EVENTS_FILE) if e[0] == "m"]
    assert points == [("total", 28.0), ("rank", 0.0)]  # the forked workers' calls were dropped
    meta = json.loads((Path(rank0["run_dir"]) / "run.json").read_text())["metadata"]["distributed"]
    assert meta["launcher"] == "torch.distributed" and meta["world_size"] == 2 and meta["rank"] == 0
