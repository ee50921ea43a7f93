"""Fixtures of every test folder (the root `tests/` and each `packages/tracelet-*/tests/`): every test runs in its
own folder with a clean TRACELET_* environment.

`hatch test` runs the suite in parallel (pytest-xdist, `--dist loadgroup`). Session fixtures are then one per
worker, so a test that kills the session's `mlflow server` only ever pulls it from under the tests of its own
worker, which run one after another. `pytest_collection_modifyitems` below keeps the tests of one module that
use that server on one worker (one server start per module at most, not one per worker it was spread over), the
same for the PostgreSQL tests (tests/distributed) and the browser tests (one Chromium per module).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import tracelet
from tracelet.core.contract import discovery

# fixture -> xdist group of the tests that use it (directly or through another fixture); "{module}" is the
# test's module, so each module's tests go to one worker and different modules may run side by side.
XDIST_GROUPS = {
    "postgres": "postgres:{module}",  # tests/distributed: the worker's PostgreSQL and `mlflow server` on it
    "mlflow_server": "mlflow-server:{module}",  # the worker's `mlflow server` (tests kill and restart it)
    "browser": "browser:{module}",  # one headless Chromium per module (the UI tests' module-scoped fixture)
}


# Fixtures that start a server or a browser: a test using one is `slow` (`-m "not slow"` leaves it out), marked
# here so that no test module has to remember it.
SERVER_FIXTURES = ("mlflow_server", "postgres", "browser")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = getattr(item, "fixturenames", ())
        for fixture, group in XDIST_GROUPS.items():
            if fixture in used:
                item.add_marker(pytest.mark.xdist_group(group.format(module=item.nodeid.split("::")[0])))
                break
        if any(fixture in used for fixture in SERVER_FIXTURES):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("TRACELET_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACELET_TRACK_SYSTEM", "false")
    monkeypatch.setenv(
        "TRACELET_ENV_PACKAGES", "false"
    )  # no packages artifact in every run (the collector tests test it)
    discovery.refresh()
    yield tmp_path
    tracelet.stop_logging()
    discovery.refresh()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, mlflow_sqlite_template: Path) -> Iterator[Any]:
    """One real `mlflow server` on 127.0.0.1 per session, shared by the MLflow tests and the multi-tracker ones."""
    from tracelet_testsupport.mlflow import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), template=mlflow_sqlite_template)
    server.start()
    yield server
    server.kill()


def _session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tracelet_testsupport.shared import session_root

    return session_root(tmp_path_factory.getbasetemp(), os.environ.get("PYTEST_XDIST_WORKER"))


@pytest.fixture(scope="session")
def mlflow_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow sqlite store made once per run (shared by the xdist workers): `sqlite_uri` fixtures copy it."""
    from tracelet_testsupport.mlflow import shared_empty_sqlite_store

    return shared_empty_sqlite_store(_session_root(tmp_path_factory))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every distribution of the repository built into a wheel once per run (`<folder name>/<wheel>`), shared by
    the xdist workers: the packaging and template tests install or inspect these."""
    from tracelet_testsupport.packaging import wheelhouse

    return wheelhouse(Path(__file__).parent, _session_root(tmp_path_factory))


@pytest.fixture
def python_env() -> dict[str, str]:
    """Environment for child Python processes that must import the same packages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _launch_ranks(script: str, job: str, ranks: list[int], world: int, env: dict[str, str], cwd: Path) -> list[Any]:
    """Run `ranks` of one job side by side under `distributed=per_rank`, each with the variables torchrun sets
    (job id `job`, one node); what each printed last, as JSON, by rank."""
    procs = []
    for rank in ranks:
        rank_env = {
            **env, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world), "GROUP_RANK": "0", "TORCHELASTIC_RUN_ID": job,
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "TRACELET_DISTRIBUTED": "per_rank",
        }  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-c", script], cwd=cwd, env=rank_env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))  # fmt: skip
    printed = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
        printed.append(json.loads(out.strip().splitlines()[-1]))
    return printed


@pytest.fixture
def launch_ranks() -> Callable[..., list[Any]]:
    """`launch_ranks(script, job, ranks, world, env, cwd)`: ranks of a launcher's job as real processes."""
    return _launch_ranks
