"""The MLflow backend against a real `mlflow server` on 127.0.0.1: round trip, outage, bounded stop."""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

import tracelet
from tracelet_mlflow.params import MAX_PARAM_VALUE_LENGTH
from tracelet_testsupport.mlflow import MlflowServer, journal_metrics, mlflow_run_id


def start(server: MlflowServer, name: str, **extra: object) -> tracelet.Experiment:
    config = {"mlflow_tracking_uri": server.uri, **extra}
    return tracelet.start_logging(name, project="server-proj", backend="mlflow", config=config)


def test_round_trip_through_the_server(server: MlflowServer) -> None:
    long_value = "v" * 6500
    exp = start(server, "served")
    for i in range(1500):
        exp.log_metric("loss", 1.0 / (i + 1), i)
    exp.log_metric("bad:name", math.nan, 0)
    exp.log_params({"lr": 0.01, "long": long_value})
    exp.set_tags({"env": "test"})
    report = exp.stop()
    assert report is not None and report.complete and report.backends["mlflow"].errors == {}

    client = MlflowClient(server.uri)
    run_id = mlflow_run_id(exp)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "served"
    expected = [(v, s, int(ts * 1000)) for _, n, v, s, ts in journal_metrics(exp.run_dir) if n == "loss"]
    got = sorted(
        ((m.value, m.step, m.timestamp) for m in client.get_metric_history(run_id, "loss")), key=lambda t: t[1]
    )
    assert got == expected and len(got) == 1500
    assert math.isnan(client.get_metric_history(run_id, "bad_name")[0].value)
    assert run.data.tags["tracelet.renamed.metric.bad_name"] == "bad:name"
    assert run.data.params["lr"] == "0.01" and len(run.data.params["long"]) == MAX_PARAM_VALUE_LENGTH
    assert run.data.tags["env"] == "test" and run.data.tags["mlflow.source.type"] == "LOCAL"
    assert "mlflow.user" in run.data.tags and run.data.tags["tracelet.run_id"] == exp.id
    saved = client.download_artifacts(run_id, "long-params/v1/files/long.txt", str(Path.cwd()))
    assert Path(saved).read_text() == long_value


def test_failed_status_through_the_server(server: MlflowServer) -> None:
    with pytest.raises(ValueError):
        with start(server, "crashes") as exp:
            raise ValueError("bad batch")
    assert MlflowClient(server.uri).get_run(mlflow_run_id(exp)).info.status == "FAILED"


def _timed_logging(exp: tracelet.Experiment, name: str, start: int, count: int, pause: float) -> list[float]:
    """Log `count` points, pausing between calls like a training loop; return each call's duration."""
    durations = []
    for i in range(start, start + count):
        t0 = time.perf_counter()
        exp.log_metric(name, float(i), i)
        durations.append(time.perf_counter() - t0)
        if pause:
            time.sleep(pause)
    return durations


def test_outage_mid_run_everything_lands_in_order_and_logging_never_waits(server: MlflowServer) -> None:
    exp = start(server, "outage", mlflow_stop_timeout=120)
    before = _timed_logging(exp, "loss", 0, 2000, 0.0005)
    assert exp.flush(timeout=60), "delivery while the server is up"

    server.kill()
    during = _timed_logging(exp, "loss", 2000, 2000, 0.0005)  # the worker fails and backs off meanwhile
    assert not exp.flush(timeout=0.5), "the server is down: nothing more can be delivered"
    deadline = time.monotonic() + 5
    while len(journal_metrics(exp.run_dir)) < 4000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(journal_metrics(exp.run_dir)) == 4000, "the journal keeps taking data during the outage"

    # Restart on the same store and port while the loop keeps logging.
    restarter = threading.Thread(target=server.start)
    restarter.start()
    while_restarting = _timed_logging(exp, "loss", 4000, 1000, 0.002)
    restarter.join()
    after = _timed_logging(exp, "loss", 5000, 1000, 0.0005)

    report = exp.stop()
    assert report is not None and report.complete
    errors = report.backends["mlflow"].errors
    assert any(key.startswith("log_metrics") for key in errors), errors  # the outage was real

    history = MlflowClient(server.uri).get_metric_history(mlflow_run_id(exp), "loss")
    assert len(history) == 6000
    assert sorted((m.step, m.value) for m in history) == [(i, float(i)) for i in range(6000)]
    by_step = sorted(history, key=lambda m: m.step)
    assert all(a.timestamp <= b.timestamp for a, b in zip(by_step, by_step[1:])), "delivered in logging order"

    # The training loop never waited on the tracker: per-call cost stayed in the microseconds. (p99, not max:
    # a rare call can absorb a full garbage-collection pass of this big process, outage or not.)
    up = statistics.median(before + after)
    down = statistics.median(during + while_restarting)
    assert down < 3 * up + 20e-6, (up, down)
    p99 = statistics.quantiles(during + while_restarting, n=100)[98]
    assert p99 < 0.005, p99


def test_stop_during_outage_is_bounded_and_reports_what_is_left(
    server: MlflowServer, caplog: pytest.LogCaptureFixture
) -> None:
    exp = start(server, "left-behind", mlflow_stop_timeout=2)
    exp.log_metric("kept", 0.0, 0)
    assert exp.flush(timeout=60)
    server.kill()
    for i in range(1, 501):
        exp.log_metric("kept", float(i), i)
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        t0 = time.monotonic()
        report = exp.stop()
        elapsed = time.monotonic() - t0
    assert elapsed < 2 + 3, elapsed  # the whole stop (delivery, then end_run) fits in stop_timeout; 3 s of slack
    assert report is not None and not report.complete
    assert report.backends["mlflow"].undelivered == 500
    assert "did not receive 500 events" in caplog.text
    kept = [e for e in journal_metrics(exp.run_dir) if e[3] >= 1]
    assert [(e[2], e[3]) for e in kept] == [(float(i), i) for i in range(1, 501)], "what is left stays in the journal"


def test_server_down_at_start_the_run_is_created_once_when_it_returns(server: MlflowServer) -> None:
    server.kill()
    t0 = time.monotonic()
    exp = start(server, "late-start", mlflow_stop_timeout=120)
    assert time.monotonic() - t0 < 10, "start() does not wait out an outage"
    for i in range(300):
        exp.log_metric("early", float(i), i)
    server.start()
    report = exp.stop()
    assert report is not None and report.complete
    assert any(key.startswith("start_run") for key in report.backends["mlflow"].errors)

    client = MlflowClient(server.uri)
    experiment = client.get_experiment_by_name("server-proj")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`tracelet.run_id` = '{exp.id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = client.get_metric_history(runs[0].info.run_id, "early")
    assert sorted((m.step, m.value) for m in history) == [(i, float(i)) for i in range(300)]
