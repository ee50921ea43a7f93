"""MLflow over HTTP with several metric batches in flight (`max_in_flight`), against a real `mlflow server`.

Every point lands exactly once through a server killed and restarted mid-run; a batch refused for good among
good ones is isolated; params and tags changed back to back keep the last value; a process SIGKILLed with
batches in flight is finished by `tracelet sync` from its checkpoint without loss. A sqlite store stays one
batch at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

import tracelet
from tracelet import ConfigurationError, hookimpl, register_plugin, store, unregister_plugin
from tracelet.core.contract.records import Metric
from tracelet.core.engine import inflight, journal
from tracelet_mlflow.backend import MLflowBackend
from tracelet_mlflow.params import CHANGED_TAG_PREFIX
from tracelet_testsupport.mlflow import MlflowServer, mlflow_run_id

pytestmark = pytest.mark.slow
NAMES = ["loss", "acc", "lr", "grad_norm", "tokens"]


def _log(exp: tracelet.Experiment, start: int, stop: int, steps_per_batch: int = 200) -> None:
    """Five metrics per step; a short pause every `steps_per_batch` steps, so the worker reads them as a batch
    of their own and several are out at once (a tight loop would make a few batches of 10,000)."""
    for step in range(start, stop):
        for k, name in enumerate(NAMES):
            exp.log_metric(name, step + k / 10, step)
        if step % steps_per_batch == steps_per_batch - 1:
            time.sleep(0.03)


def _landed(uri: str, run_id: str) -> Counter[tuple[str, int, float]]:
    client = MlflowClient(uri)
    return Counter((name, m.step, m.value) for name in NAMES for m in client.get_metric_history(run_id, name))


def _want(start: int, stop: int) -> Counter[tuple[str, int, float]]:
    return Counter((name, step, step + k / 10) for step in range(start, stop) for k, name in enumerate(NAMES))


def test_every_point_lands_once_through_a_server_killed_and_restarted_with_batches_in_flight(
    server: MlflowServer,
) -> None:
    exp = tracelet.start_logging("in-flight", project="in-flight", backend="mlflow",
                                 config={"mlflow_tracking_uri": server.uri, "mlflow_max_in_flight": 4,
                                         "mlflow_stop_timeout": 300})  # fmt: skip
    worker = exp.orchestrator.workers["mlflow"]  # type: ignore[union-attr]
    assert worker._window is not None and worker._window.size == 4  # HTTP: the plugin opted in
    _log(exp, 0, 1200)  # 6,000 points in batches of 1,000, several out at once
    server.kill()  # mid-delivery: the batches in flight fail, and each is retried alone
    _log(exp, 1200, 1800)
    time.sleep(0.5)
    server.start()
    _log(exp, 1800, 2400)
    report = exp.stop()
    assert report is not None and report.complete, report
    rep = report.backends["mlflow"]
    assert rep.delivered == 12_000 and any(k.startswith("log_metrics") for k in rep.errors), rep.errors
    assert _landed(server.uri, mlflow_run_id(exp)) == _want(0, 2400)  # each point exactly once


class RefusingMLflow(MLflowBackend):
    """The real plugin, except that the tracker "refuses for good" the point loss@777."""

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        if any(m.name == "loss" and m.step == 777 for m in metrics):
            raise ConfigurationError("the tracker refuses loss@777")
        super().backend_log_metrics(metrics)


def test_a_batch_refused_for_good_among_good_ones(server: MlflowServer) -> None:
    register_plugin(RefusingMLflow, "mlrefuse")
    try:
        exp = tracelet.start_logging(
            "refused",
            project="in-flight",
            backend="mlrefuse",
            config={"mlrefuse_tracking_uri": server.uri, "mlrefuse_stop_timeout": 300},
        )
        worker = exp.orchestrator.workers["mlrefuse"]  # type: ignore[union-attr]
        assert worker._window is not None and worker._window.size == inflight.DEFAULT_IN_FLIGHT
        _log(exp, 0, 1600)
        report = exp.stop()
    finally:
        unregister_plugin("mlrefuse")
    assert report is not None and not report.complete
    rep = report.backends["mlrefuse"]
    assert rep.refused == 1 and rep.delivered == 7999 and rep.undelivered == 0
    run_id = rep.details["run_id"]
    assert _landed(server.uri, run_id) == _want(0, 1600) - Counter({("loss", 777, 777.0): 1})


def test_params_and_tags_changed_back_to_back_keep_the_last_value(server: MlflowServer) -> None:
    exp = tracelet.start_logging("relogged", project="in-flight", backend="mlflow",
                                 config={"mlflow_tracking_uri": server.uri, "mlflow_max_in_flight": 8,
                                         "mlflow_stop_timeout": 300})  # fmt: skip
    for round_ in range(6):
        _log(exp, round_ * 400, round_ * 400 + 400)
        exp.log_params({"lr": round_ / 10})
        exp.set_tags({"phase": f"phase-{round_}"})
    for value in ("a", "b", "c"):  # back to back, nothing between them
        exp.log_params({"opt": value})
        exp.set_tags({"stage": value})
    report = exp.stop()
    assert report is not None and report.complete
    run = MlflowClient(server.uri).get_run(mlflow_run_id(exp))
    # MLflow keeps a param's first value; the latest is in the changed tag, and it is the last one logged.
    assert run.data.params["lr"] == "0.0" and run.data.tags[CHANGED_TAG_PREFIX + "lr"] == "0.5"
    assert run.data.params["opt"] == "a" and run.data.tags[CHANGED_TAG_PREFIX + "opt"] == "c"
    assert run.data.tags["phase"] == "phase-5" and run.data.tags["stage"] == "c"
    assert _landed(server.uri, run.info.run_id) == _want(0, 2400)


def test_a_sqlite_store_stays_one_batch_at_a_time(sqlite_uri: str) -> None:
    exp = tracelet.start_logging("local-file", backend="mlflow",
                                 config={"mlflow_tracking_uri": sqlite_uri, "mlflow_max_in_flight": 4})  # fmt: skip
    assert exp.orchestrator.workers["mlflow"]._window is None  # type: ignore[union-attr]
    _log(exp, 0, 200)
    report = exp.stop()
    assert report is not None and report.complete
    assert _landed(sqlite_uri, mlflow_run_id(exp)) == _want(0, 200)


CHILD = textwrap.dedent(
    """
    import sys, time, tracelet
    from tracelet import hookimpl, register_plugin
    from tracelet_mlflow.backend import MLflowBackend

    class Stuck(MLflowBackend):
        # The batch holding step 300 hangs (a request that never returns); the batches after it go through.
        @hookimpl
        def backend_log_metrics(self, metrics):
            if any(m.step == 300 for m in metrics):
                time.sleep(600)
            super().backend_log_metrics(metrics)

    register_plugin(Stuck, "mlflow", replace=True)
    exp = tracelet.start_logging("doomed", project="in-flight-dead", backend="mlflow",
                                 config={"track_system": False, "mlflow_tracking_uri": sys.argv[1],
                                         "mlflow_max_in_flight": 4})
    exp.log_params({"seed": 7})
    exp.flush(timeout=120)  # the MLflow run exists: the points below go out as they are logged
    names = sys.argv[2].split(",")
    for step in range(1000):
        for k, name in enumerate(names):
            exp.log_metric(name, step + k / 10, step)
        if step % 200 == 199:
            time.sleep(0.5)  # the worker takes each 200 steps as batches of their own, however loaded the machine
    print("logged", flush=True)
    time.sleep(600)
    """
)


def test_a_process_killed_with_batches_in_flight_is_synced_from_its_checkpoint_without_loss(
    server: MlflowServer, tmp_path: Path, python_env: dict[str, str]
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), server.uri, ",".join(NAMES)], cwd=tmp_path, env=python_env,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "logged"
        (meta_path,) = (tmp_path / "tracelet-runs").glob("*/*/run.json")
        client = MlflowClient(server.uri)
        checkpoint, later, deadline = 0, 0, time.monotonic() + 180
        while time.monotonic() < deadline and not (checkpoint and later == 400):
            meta: dict[str, Any] = json.loads(meta_path.read_text())
            checkpoint = int((meta.get("progress") or {}).get("mlflow") or 0)
            run_id = ((meta.get("backend_runs") or {}).get("mlflow") or {}).get("run_id")
            if run_id:  # the batches after the stuck one (steps 600-999 among them) land while it hangs
                later = sum(1 for m in client.get_metric_history(run_id, "loss") if m.step >= 600)
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert later == 400, "the batches behind the stuck one were delivered meanwhile"
    (run,) = store.list_runs(tmp_path / "tracelet-runs")
    events = [e for _, e in journal.read_events(run.path / journal.EVENTS_FILE)]
    total = len(events)
    held = next(i for i, e in enumerate(events) if e[0] == "m" and e[3] == 300)
    # The checkpoint stops before the stuck batch (at the latest, the first point of step 300), however much
    # landed after it. The run may have written a later one between the last look above and the kill (it
    # checkpoints every couple of seconds): what it left is at least what was seen, and still before that batch.
    seen, checkpoint = checkpoint, run.meta["progress"]["mlflow"]
    assert run.dead and 1 <= seen <= checkpoint <= held
    before = run.meta["backend_runs"]["mlflow"]["run_id"]

    report = tracelet.sync(run, dir=tmp_path / "tracelet-runs")  # into its own MLflow run, from the checkpoint
    res = report.backends["mlflow"]
    assert res.complete and res.run_id == before and res.delivered == total - checkpoint
    assert _landed(server.uri, before) == _want(0, 1000)  # sent again after the stuck one: folded, once each
    assert MlflowClient(server.uri).get_run(before).data.params["seed"] == "7"
