"""`torch.multiprocessing.spawn` of 2 ranks (gloo, explicit rank), each with DataLoader workers forked from it.

Usage: python spawn_job.py <master-port> <out-dir>

Ranks come from the initialised process group (no launcher variables). Every DataLoader worker item calls
log_metric on the forked copy of the experiment: a forked child's points are dropped, the parent's run goes on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, Dataset

import tracelet


class Logged(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        exp = tracelet.get_active_experiment()
        if exp is not None:
            exp.log_metric("from_worker", float(index), index)  # in a forked worker: dropped
        return torch.tensor([float(index)])


def worker(rank: int, world: int, port: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    exp = tracelet.start_logging("spawned", backend="local")
    total = 0.0
    for batch in DataLoader(Logged(), batch_size=2, num_workers=2, multiprocessing_context="fork"):
        total += float(batch.sum())
    exp.log_metric("total", total, 0)
    exp.log_metric("rank", float(rank), 0)
    report = exp.stop()
    Path(out, f"rank{rank}.json").write_text(json.dumps({
        "name": exp.name, "report": None if report is None else {"complete": report.complete, "events": report.events},
        "run_dir": None if exp.run_dir is None else str(exp.run_dir), "total": total,
    }))  # fmt: skip
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(worker, args=(2, sys.argv[1], sys.argv[2]), nprocs=2)
