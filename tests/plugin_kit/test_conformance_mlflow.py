"""The MLflow plugin passes the conformance kit against a real sqlite tracking store and a real `mlflow server`.

The run is read back with a fresh `MlflowClient` (not the plugin's own client). Over HTTP the plugin declares
`concurrent_batches`, so the server class also runs the kit's batches-in-flight check. The transport fault makes
the plugin's second store request in a batch fail once: MLflow takes 1000 points per request, so a 2000-point
batch is cut in the middle and the plugin must resume where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracelet.plugin import Metric
from tracelet.testing import BackendConformance, RunUnderTest, TrackedRun
from tracelet_mlflow.backend import MLflowBackend

SHARED: dict[str, Any] = {}


@pytest.fixture(autouse=True, scope="module")
def _one_store_per_module(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Creating an MLflow sqlite store runs its migrations (seconds): the tests share one, a run each.
    SHARED["store"] = tmp_path_factory.mktemp("mlflow") / "mlflow.db"


class TestMLflowSqlite(BackendConformance):
    backend = MLflowBackend
    relogged_params = "first"  # MLflow forbids changing a param: the first value stays (the latest is a tag)

    def backend_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"tracking_uri": f"sqlite:///{SHARED['store']}", "telemetry": False}

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        from mlflow import MlflowClient

        client = MlflowClient(run.config["tracking_uri"])
        run_id = run.details["run_id"]
        data = client.get_run(run_id)
        metrics = {
            key: [Metric(key, m.value, m.step, m.timestamp / 1000) for m in client.get_metric_history(run_id, key)]
            for key in data.data.metrics
        }
        return TrackedRun(
            metrics=metrics,
            params=dict(data.data.params),
            tags=dict(data.data.tags),
            status=data.info.status,
            artifacts=[f.path for f in client.list_artifacts(run_id)],
        )

    def import_source(self, run: RunUnderTest) -> tuple[str, dict[str, Any]]:
        return run.config["tracking_uri"], {"run_ids": [run.details["run_id"]]}

    def inject_fault(self, plugin: Any) -> None:
        send = plugin._log_batch
        calls = {"n": 0}

        def flaky(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                raise ConnectionError("injected: the second request of the batch fails")
            return send(*args, **kwargs)

        plugin._log_batch = flaky


@pytest.mark.slow
class TestMLflowServer(TestMLflowSqlite):
    """The same checks through the session's real `mlflow server`: over HTTP the plugin declares
    `concurrent_batches`, so `test_batches_in_flight` runs (it is skipped for the sqlite store above)."""

    @pytest.fixture(autouse=True)
    def _server(self, mlflow_server: Any) -> None:
        if mlflow_server.proc is None or not mlflow_server.healthy():  # an earlier test left it down
            mlflow_server.kill()
            mlflow_server.start()
        SHARED["uri"] = mlflow_server.uri

    def backend_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"tracking_uri": str(SHARED["uri"]), "telemetry": False}
