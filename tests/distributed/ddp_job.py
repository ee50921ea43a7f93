"""A tiny DDP training job for `torchrun` (gloo, CPU), tracked with Tracelet into MLflow.

Usage: torchrun --nproc-per-node 2 ddp_job.py <tracking-uri> <out-dir> [steps]

Each rank writes `<out-dir>/rank<N>.json`: what it logged (so tests compare what MLflow holds against what
each rank sent) and how its Experiment saw itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import tracelet
from tracelet_torch.distributed import log_reduced, log_reduced_dict


def main() -> None:
    uri, out = sys.argv[1], Path(sys.argv[2])
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(rank)
    model = DistributedDataParallel(nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data, target = torch.randn(16, 4), torch.randn(16, 1)

    exp = tracelet.start_logging("ddp-job", project=os.environ.get("JOB_PROJECT", "distributed"), backend="mlflow",
                                 config={"mlflow_tracking_uri": uri})  # fmt: skip
    sent: dict[str, list[list[float]]] = {"loss": [], "rank_value": [], "reduced/loss": []}
    for step in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(data), target)
        loss.backward()
        optimizer.step()
        value = loss.item()
        exp.log_metric("loss", value, step)
        exp.log_metric("rank_value", float(rank + 1) * (step + 1), step)
        sent["loss"].append([step, value])
        sent["rank_value"].append([step, float(rank + 1) * (step + 1)])
        # Every rank, same calls, same order: a mean of every rank's value, logged once by rank 0.
        log_reduced("reduced/rank_value", float(rank + 1) * (step + 1), step)
        log_reduced_dict({"reduced/loss": loss.detach(), "reduced/max_rank": float(rank)}, step, op="mean")
        log_reduced("reduced/max_rank_op", float(rank), step, op="max")
        time.sleep(float(os.environ.get("JOB_STEP_SLEEP", "0.1")))  # long enough for system metric samples
    exp.stop()
    (out / f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world": world, "name": exp.name, "id": exp.id, "sent": sent,
        "report": None if exp.report is None else {"complete": exp.report.complete},
    }))  # fmt: skip
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
