"""Fixtures for sync and import tests: real local stores, real MLflow stores (sqlite and a real server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tracelet_testsupport.mlflow import MlflowServer, copy_sqlite_store


@pytest.fixture(autouse=True)
def no_ambient_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their tracking URI explicitly; nothing from the developer's shell leaks in."""
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory: pytest.TempPathFactory, mlflow_sqlite_template: Path) -> str:
    """One MLflow sqlite store per test module (a copy of the session's empty one); tests use their own projects."""
    folder = tmp_path_factory.mktemp("mlstore")
    return copy_sqlite_store(mlflow_sqlite_template, folder / "mlflow.db", cwd=folder)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "tracelet-runs"


@pytest.fixture
def down_server(tmp_path: Path, mlflow_sqlite_template: Path) -> Iterator[MlflowServer]:
    """An `mlflow server` that is not started yet (its port is chosen): the test brings it up when it wants."""
    server = MlflowServer(tmp_path / "mlflow-server", template=mlflow_sqlite_template)
    server.root.mkdir()
    yield server
    server.kill()
