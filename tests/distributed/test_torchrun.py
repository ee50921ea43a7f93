"""Real `torchrun` jobs (gloo on CPU, a tiny DDP model) tracked into a real MLflow server on PostgreSQL."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tracelet_testsupport.distributed import MlflowPgServer, free_port

JOB = Path(__file__).parent / "ddp_job.py"
JOB_TIMEOUT = 240


def torchrun(env: dict[str, str], out: Path, uri: str, *, nproc: int = 2, nnodes: int = 1, node_rank: int = 0,
             port: int | None = None, background: bool = False) -> Any:  # fmt: skip
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--nnodes", str(nnodes),
        "--node-rank", str(node_rank), "--master-addr", "127.0.0.1", "--master-port", str(port or free_port()),
        str(JOB), uri, str(out),
    ]  # fmt: skip
    if background:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def sent(out: Path, rank: int) -> dict[str, Any]:
    return json.loads((out / f"rank{rank}.json").read_text())


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def runs_of(client: MlflowClient, project: str) -> list[Any]:
    experiment = client.get_experiment_by_name(project)
    assert experiment is not None, f"no MLflow experiment {project!r}"
    return client.search_runs([experiment.experiment_id], max_results=100)


def check_reduced(client: MlflowClient, run_id: str, out: Path, steps: int) -> None:
    """Reduced metrics in rank 0's run: means (and the max) of what each rank sent, one point per step."""
    r0, r1 = sent(out, 0)["sent"], sent(out, 1)["sent"]
    mean_value = [(s, (a + b) / 2) for (s, a), (_, b) in zip(r0["rank_value"], r1["rank_value"])]
    assert history(client, run_id, "reduced/rank_value") == mean_value
    assert [v for _, v in mean_value] == [1.5 * (s + 1) for s in range(steps)]
    mean_loss = [(s, (a + b) / 2) for (s, a), (_, b) in zip(r0["loss"], r1["loss"])]
    got = history(client, run_id, "reduced/loss")
    assert [s for s, _ in got] == [s for s, _ in mean_loss]
    assert all(math.isclose(g, w, rel_tol=1e-6) for (_, g), (_, w) in zip(got, mean_loss))
    assert history(client, run_id, "reduced/max_rank") == [(s, 0.5) for s in range(steps)]
    assert history(client, run_id, "reduced/max_rank_op") == [(s, 1.0) for s in range(steps)]


@pytest.fixture
def job(tmp_path: Path, job_env: dict[str, str]) -> tuple[Path, dict[str, str], str]:
    out = tmp_path / "out"
    out.mkdir()
    project = f"dist-{uuid.uuid4().hex[:8]}"
    env = {**job_env, "JOB_PROJECT": project, "TRACELET_TRACK_SYSTEM": "true", "TRACELET_METRICS_INTERVAL": "0.2",
           "TRACELET_DIR": str(tmp_path / "runs")}  # fmt: skip
    return out, env, project


def test_rank0_one_run_with_rank0_points_reduced_means_and_labelled_system_metrics(
    pg_server: MlflowPgServer, job: tuple[Path, dict[str, str], str]
) -> None:
    out, env, project = job
    torchrun({**env, "TRACELET_DISTRIBUTED": "rank0"}, out, pg_server.uri)
    client = MlflowClient(pg_server.uri)
    runs = runs_of(client, project)
    assert len(runs) == 1, [r.info.run_name for r in runs]
    run = runs[0]
    assert run.info.run_name == "ddp-job" and run.info.status == "FINISHED"
    assert run.data.tags["tracelet.rank"] == "0" and run.data.tags["tracelet.world_size"] == "2"
    assert run.data.tags["tracelet.launcher"] == "torchrun"
    rank0 = sent(out, 0)
    assert history(client, run.info.run_id, "loss") == [tuple(p) for p in rank0["sent"]["loss"]]
    assert history(client, run.info.run_id, "rank_value") == [(s, float(s + 1)) for s in range(5)]
    check_reduced(client, run.info.run_id, out, 5)
    # Rank 1 opened nothing: its stop() returned None, and it wrote no local store.
    rank1 = sent(out, 1)
    assert rank1["report"] is None and rank1["name"] == "ddp-job"
    assert sorted(p.name for p in (out.parent / "runs" / project).iterdir()) == [rank0["id"]]
    host = socket.gethostname()
    keys = set(run.data.metrics)
    assert any(k.startswith(f"system/{host}/") for k in keys), keys
    assert not any(k.startswith("system/") and not k.startswith(f"system/{host}/") for k in keys), keys


def test_per_rank_one_parent_two_children_with_each_ranks_points(
    pg_server: MlflowPgServer, job: tuple[Path, dict[str, str], str]
) -> None:
    out, env, project = job
    torchrun({**env, "TRACELET_DISTRIBUTED": "per_rank"}, out, pg_server.uri)
    client = MlflowClient(pg_server.uri)
    runs = {r.info.run_name: r for r in runs_of(client, project)}
    assert sorted(runs) == ["ddp-job", "ddp-job/rank0", "ddp-job/rank1"]
    parent = runs["ddp-job"]
    assert parent.data.tags["tracelet.group.role"] == "parent" and parent.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in parent.data.tags and not parent.data.metrics
    for rank in (0, 1):
        child = runs[f"ddp-job/rank{rank}"]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["tracelet.group"] == parent.data.tags["tracelet.group"]
        assert child.data.tags["tracelet.rank"] == str(rank) and child.info.status == "FINISHED"
        mine = sent(out, rank)
        assert mine["name"] == f"ddp-job/rank{rank}" and mine["report"]["complete"]
        assert history(client, child.info.run_id, "loss") == [tuple(p) for p in mine["sent"]["loss"]]
        assert history(client, child.info.run_id, "rank_value") == [(s, float((rank + 1) * (s + 1))) for s in range(5)]
    check_reduced(client, runs["ddp-job/rank0"].info.run_id, out, 5)
    assert "reduced/loss" not in runs["ddp-job/rank1"].data.metrics  # only rank 0 logs the reduced point


def test_two_nodes_write_their_system_metrics_into_rank0s_run(
    pg_server: MlflowPgServer, job: tuple[Path, dict[str, str], str]
) -> None:
    """Two torchrun agents (one process each) as two nodes on this machine, told apart by TRACELET_NODE_NAME."""
    out, env, project = job
    port = free_port()
    env = {**env, "TRACELET_DISTRIBUTED": "rank0", "JOB_STEP_SLEEP": "0.3"}
    agents = [
        torchrun(
            {**env, "TRACELET_NODE_NAME": f"node-{n}"},
            out,
            pg_server.uri,
            nproc=1,
            nnodes=2,
            node_rank=n,
            port=port,
            background=True,
        )  # fmt: skip
        for n in (0, 1)
    ]
    for agent in agents:
        output, _ = agent.communicate(timeout=JOB_TIMEOUT)
        assert agent.returncode == 0, output[-4000:]
    client = MlflowClient(pg_server.uri)
    runs = runs_of(client, project)
    assert len(runs) == 1, [r.info.run_name for r in runs]
    run = runs[0]
    keys = set(run.data.metrics)
    assert any(k.startswith("system/node-0/") for k in keys), keys
    assert any(k.startswith("system/node-1/") for k in keys), keys
    assert history(client, run.info.run_id, "loss") == [tuple(p) for p in sent(out, 0)["sent"]["loss"]]
    check_reduced(client, run.info.run_id, out, 5)
    assert run.info.status == "FINISHED"
