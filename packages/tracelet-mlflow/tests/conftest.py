"""Fixtures for the MLflow backend: a real sqlite store per test; the session's real `mlflow server`
(`mlflow_server`, in the root conftest.py) restarted when a test left it down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelet_testsupport.mlflow import MlflowServer, copy_sqlite_store


@pytest.fixture
def server(mlflow_server: MlflowServer) -> MlflowServer:
    """The session's server, restarted if an earlier test left it down."""
    if mlflow_server.proc is None or not mlflow_server.healthy():
        mlflow_server.kill()
        mlflow_server.start()
    return mlflow_server


@pytest.fixture(autouse=True)
def no_ambient_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their tracking URI explicitly; nothing from the developer's shell leaks in."""
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)
    # Telemetry is decided per run by the plugin: start each test from "nobody decided" and restore after.
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)


@pytest.fixture
def sqlite_uri(tmp_path: Path, mlflow_sqlite_template: Path) -> str:
    """A fresh, empty MLflow sqlite store of the test's own (a copy of the session's empty one)."""
    return copy_sqlite_store(mlflow_sqlite_template, tmp_path / "store" / "mlflow.db")


@pytest.fixture(autouse=True)
def _store_dir(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir(exist_ok=True)
