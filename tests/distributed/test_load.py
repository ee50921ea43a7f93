"""Load: 8 processes at once, each its own run of 50,000 points, into one MLflow server on PostgreSQL.

The server is killed (SIGKILL, as a crash) and restarted once while the points are on their way; every point
must land exactly once. What landed is read from PostgreSQL itself. Throughput against raw
`MlflowClient.log_batch` is measured in benchmarks/distributed.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest

from tracelet_testsupport.distributed import MlflowPgServer, Postgres

WORKER = Path(__file__).parent / "load_worker.py"
PROCESSES = 8
POINTS = 50_000
TIMEOUT = 600


def landed(pg: Postgres, project: str) -> dict[str, tuple[int, int, float]]:
    """run name -> (points, distinct (key, step) pairs, sum of values), straight from the database."""
    with psycopg2.connect(pg.uri.replace("postgresql+psycopg2://", "postgresql://")) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT r.name, count(*), count(DISTINCT (m.key, m.step)), sum(m.value) FROM metrics m "
            "JOIN runs r ON r.run_uuid = m.run_uuid JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE e.name = %s GROUP BY r.name",
            (project,),
        )
        return {name: (count, distinct, float(total)) for name, count, distinct, total in cur.fetchall()}


def total_points(pg: Postgres, project: str) -> int:
    return sum(count for count, _, _ in landed(pg, project).values())


@pytest.mark.slow
def test_eight_processes_all_points_land_across_a_server_restart(
    pg_server: MlflowPgServer, postgres: Postgres, tmp_path: Path, job_env: dict[str, str]
) -> None:
    project = f"load-{uuid.uuid4().hex[:8]}"
    env = {**job_env, "TRACELET_TRACK_SYSTEM": "false", "TRACELET_STOP_TIMEOUT": str(TIMEOUT),
           "TRACELET_DIR": str(tmp_path / "runs")}  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "tracelet", pg_server.uri, project, str(i), str(POINTS), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i in range(PROCESSES)
    ]
    # Mid-run: every process has made all its calls and some points are in the database, not all of them.
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        done = sum((tmp_path / f"{i}.logged").exists() for i in range(PROCESSES))
        if done == PROCESSES and total_points(postgres, project) > 0:
            break
        assert all(p.poll() in (None, 0) for p in procs), [p.communicate()[0][-3000:] for p in procs if p.poll()]
        time.sleep(0.2)
    pg_server.kill()
    before_restart = total_points(postgres, project)
    assert 0 < before_restart < PROCESSES * POINTS, "the restart must happen while points are on their way"
    time.sleep(1.0)
    pg_server.start()

    for p in procs:
        output, _ = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, output[-4000:]
    results = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(PROCESSES)]
    # Each report: nothing undelivered or dropped (its own params/tags events count too, hence >=).
    assert all(r["complete"] and r["delivered"] >= POINTS for r in results), results
    assert any(r["errors"] for r in results), "the outage should have been seen (and retried) by some process"

    stored = landed(postgres, project)
    assert sorted(stored) == sorted(f"load-{i}" for i in range(PROCESSES))
    for i in range(PROCESSES):
        expected_sum = float(POINTS * i * 1_000_000 + POINTS * (POINTS - 1) // 2)
        assert stored[f"load-{i}"] == (POINTS, POINTS, expected_sum), (i, stored[f"load-{i}"])
