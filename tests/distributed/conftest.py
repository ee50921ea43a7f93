"""Fixtures for multi-process tests: one PostgreSQL 15 server and one `mlflow server` on it per session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracelet_testsupport.distributed import MlflowPgServer, Postgres

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def pg_server_session(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowPgServer]:
    server = MlflowPgServer(postgres, tmp_path_factory.mktemp("mlflow-pg"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def pg_server(pg_server_session: MlflowPgServer) -> MlflowPgServer:
    """The session's server, restarted if an earlier test left it down."""
    if pg_server_session.proc is None or not pg_server_session.healthy():
        pg_server_session.kill()
        pg_server_session.start()
    return pg_server_session


@pytest.fixture(autouse=True)
def no_ambient_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their ranks and tracking URI explicitly; nothing from the developer's shell leaks in."""
    for key in list(os.environ):
        if key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                   "MASTER_PORT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME") or key.startswith(
            ("SLURM_", "OMPI_", "PMI_", "PMIX_", "TORCHELASTIC_", "MPI_LOCAL")
        ):  # fmt: skip
            monkeypatch.delenv(key)


@pytest.fixture
def job_env() -> dict[str, str]:
    """Environment for `torchrun` jobs: this interpreter's packages, no TRACELET_* from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["OMP_NUM_THREADS"] = "1"  # two cores shared by every process of the job
    return env
