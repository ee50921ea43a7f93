"""`log_artifact` results: the call returns at once, and reading a result's uri/version/metadata gives the answer."""

from __future__ import annotations

import time
from pathlib import Path

from mlflow import MlflowClient

import tracelet
from tracelet.core.artifacts import PENDING
from tracelet_testsupport.mlflow import MlflowServer


def _exp(tmp_path: Path, uri: str, **settings: object) -> tracelet.Experiment:
    return tracelet.Experiment(
        "arts",
        backend=["local", "mlflow"],
        project="res-proj",
        settings=tracelet.TraceletSettings(dir=str(tmp_path / "runs"), track_system=False, **settings),
        options={"mlflow_tracking_uri": uri},
    ).start()


def test_uri_and_version_read_right_after_log_artifact_are_the_real_ones(tmp_path: Path, sqlite_uri: str) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00" * 128)
    exp = _exp(tmp_path, sqlite_uri)
    results = exp.log_artifact(str(weights))
    local, ml = results["local"], results["mlflow"]
    # Filled by the core before returning: no waiting for the local store's worker.
    assert local.version == "v1" and ml.version == "v1"
    local_uri = local.uri
    assert local_uri.startswith("file://") and local_uri.endswith("/artifacts/weights.bin/v1")
    assert local.metadata["size_bytes"] == 128
    mlflow_uri = ml.uri  # waits for the MLflow worker's answer
    assert ml.status != PENDING and ml.success
    second = exp.log_artifact(str(weights))
    assert second["local"].version == "v2" and second["mlflow"].version == "v2"
    exp.stop()

    mlrun_id = exp.report.backends["mlflow"].details["run_id"]
    artifact_root = MlflowClient(sqlite_uri).get_run(mlrun_id).info.artifact_uri
    assert mlflow_uri == f"{artifact_root}/weights.bin/v1"
    assert local_uri == local.to_dict()["uri"] and Path(local.metadata["path"], "manifest.json").exists()
    assert [a.version for a in exp.list_artifacts()] == ["v1", "v2"]


def test_reading_a_result_waits_no_longer_than_the_stop_timeout(tmp_path: Path, down_server: MlflowServer) -> None:
    weights = tmp_path / "w.txt"
    weights.write_text("w")
    exp = _exp(tmp_path, down_server.uri, stop_timeout=1.5, start_timeout=0.2)
    result = exp.log_artifact(str(weights))["mlflow"]
    assert "PENDING" in repr(result).upper()  # repr never waits
    t0 = time.monotonic()
    assert result.uri == ""  # the server is down: no answer within the bound
    waited = time.monotonic() - t0
    assert 1.0 <= waited < 10 and result.status == PENDING
    assert result.version == "v1"  # the core's, at once
    exp.stop(status="KILLED")
