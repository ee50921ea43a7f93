"""The fan-out: isolation between backends, ordering under many threads, bounded memory, stop semantics."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

import tracelet
from tracelet.core.contract.records import Metric, RunStatus
from tracelet.plugin import hookimpl
from tracelet.store import open_run
from tracelet_testplugin.backends import record_for


class Held:
    """Takes its first batch only once the test opens `gate` (a tracker that stalls for as long as it likes)."""

    def __init__(self) -> None:
        self.gate = HELD["gate"]

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        HELD["entered"].set()
        self.gate.wait(60)
        HELD["points"] += len(metrics)


HELD: dict[str, Any] = {}


def test_raising_and_sleeping_backends_do_not_hold_back_the_others_or_the_caller() -> None:
    HELD.update(gate=threading.Event(), entered=threading.Event(), points=0)
    tracelet.register_plugin(Held, name="held")
    try:
        exp = tracelet.start_logging(
            "isolation", backend=["recorder", "failing", "slow", "held"],
            config={"failing_stop_timeout": 0.5, "slow_stop_timeout": 0.5},
        )  # fmt: skip
        n = 50_000
        for i in range(n):
            exp.log_metric("loss", i * 0.5, i)
        # An order, not a duration: the loop ended while a backend was still held in its first call. A design
        # that waited on a backend would not end the loop before the gate opened.
        assert HELD["entered"].wait(30) and HELD["points"] == 0
    finally:
        HELD["gate"].set()
        tracelet.unregister_plugin("held")
    assert exp.flush(timeout=2) is False  # failing never takes its batches
    rec = record_for(exp.id, "recorder")
    assert [m.value for m in rec["metrics"]] == [i * 0.5 for i in range(n)]
    report = exp.stop()
    assert report is not None
    assert report.backends["recorder"].undelivered == 0 and report.backends["recorder"].delivered == n
    assert report.backends["failing"].undelivered == n
    assert report.backends["failing"].errors["log_metrics: ConnectionError"] >= 2
    assert record_for(exp.id, "failing")["status"] is RunStatus.FINISHED  # ended after its timeout
    tracelet.stop_logging()


def test_recorder_gets_every_point_even_beside_a_slow_backend() -> None:
    exp = tracelet.start_logging("slow-side", backend=["slow", "recorder"], config={"slow_stop_timeout": 0.2})
    t0 = time.monotonic()
    for i in range(20_000):
        exp.log_metric("m", i, i)
    deadline = t0 + 10.0
    while len(record_for(exp.id, "recorder")["metrics"]) < 20_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    took = time.monotonic() - t0
    slow_got = len(record_for(exp.id, "slow").get("metrics", []))
    assert len(record_for(exp.id, "recorder")["metrics"]) == 20_000
    # The slow backend needs a second per batch of 10,000: while it was still short of everything, the recorder
    # had it all (not held back to the slow one's pace, which would take at least 2 s).
    assert slow_got < 20_000 or took >= 2.0, (slow_got, took)
    tracelet.stop_logging()


def test_eight_threads_of_100k_points_lose_and_reorder_nothing() -> None:
    exp = tracelet.start_logging("threads", backend=["recorder", "local"])
    per_thread = 100_000

    def work(k: int) -> None:
        name = f"t{k}"
        for i in range(per_thread):
            exp.log_metric(name, float(i), i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = exp.stop()
    assert report is not None and report.complete
    by_name: dict[str, list[float]] = {}
    for m in record_for(exp.id, "recorder")["metrics"]:
        by_name.setdefault(m.name, []).append(m.value)
    expected = [float(i) for i in range(per_thread)]
    assert sorted(by_name) == [f"t{k}" for k in range(8)]
    for name, values in by_name.items():
        assert values == expected, name
    journal = open_run(exp.id).metrics()
    assert all([p.value for p in journal[f"t{k}"]] == expected for k in range(8))
    tracelet.stop_logging()


def test_stop_delivers_everything_logged_just_before() -> None:
    exp = tracelet.start_logging("stop-delivery", backend=["recorder"])
    for i in range(200_000):
        exp.log_metric("x", i, i)
    exp.log_params({"after": "metrics"})
    tracelet.stop_logging()
    rec = record_for(exp.id, "recorder")
    assert len(rec["metrics"]) == 200_000 and rec["metrics"][-1].value == 199_999.0
    assert rec["params"] == {"after": "metrics"}
    assert rec["status"] is RunStatus.FINISHED


def test_failing_batches_are_retried_and_reported_once_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tracelet")
    exp = tracelet.start_logging("flaky", backend=["flaky"], config={"flaky": {"fail_times": 4}})
    for i in range(10):
        exp.log_metric("x", i, i)
    report = exp.stop()
    rec = record_for(exp.id, "flaky")
    assert [m.value for m in rec["metrics"]] == [float(i) for i in range(10)]
    assert report is not None and report.backends["flaky"].errors == {"log_metrics: ConnectionError": 4}
    warnings = [r for r in caplog.records if "flaky tracker" in r.getMessage()]
    assert len(warnings) == 1
    tracelet.stop_logging()


def test_stop_timeout_bounds_the_wait_and_the_rest_stays_in_the_journal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tracelet")
    exp = tracelet.start_logging("timeout", backend=["failing"], config={"stop_timeout": 0.5})
    for i in range(1000):
        exp.log_metric("x", i, i)
    t0 = time.monotonic()
    report = exp.stop()
    assert time.monotonic() - t0 < 5
    assert report is not None and report.backends["failing"].undelivered == 1000 and not report.complete
    assert any("did not receive 1000 events" in r.getMessage() for r in caplog.records)
    run = open_run(exp.id)
    assert len(run.metrics()["x"]) == 1000
    assert run.meta["delivery"]["failing"]["undelivered"] == 1000
    tracelet.stop_logging()


def test_a_lagging_backend_catches_up_from_the_journal_with_bounded_memory() -> None:
    exp = tracelet.start_logging(
        "lagging", backend=["flaky", "local"], config={"max_buffered": 1000, "flaky": {"fail_times": 3}}
    )
    n = 30_000
    for i in range(n):
        exp.log_metric("x", i, i)
        if i % 5000 == 0:
            time.sleep(0.03)  # several dispatcher chunks
    orch = exp.orchestrator
    assert orch is not None
    time.sleep(0.1)
    with orch._lock:
        assert orch._buffered <= 1000 + 5000 * 2  # the window, plus at most the newest chunk
    report = exp.stop()
    assert report is not None and report.complete
    assert [m.value for m in record_for(exp.id, "flaky")["metrics"]] == [float(i) for i in range(n)]
    tracelet.stop_logging()


def test_without_local_store_overflow_drops_oldest_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tracelet")
    exp = tracelet.start_logging(
        "no-store",
        backend=["slow"],
        config={"local_store": False, "max_buffered": 100, "slow_stop_timeout": 3},
    )
    assert exp.run_dir is None
    for i in range(1000):
        exp.log_metric("x", i, i)
        if i % 100 == 99:
            time.sleep(0.03)
    report = exp.stop()
    assert report is not None
    slow = report.backends["slow"]
    received = len(record_for(exp.id, "slow")["metrics"])
    assert slow.dropped > 0
    assert received + slow.dropped + slow.undelivered == 1000
    assert any("dropped past the memory bound" in r.getMessage() for r in caplog.records)
    tracelet.stop_logging()


def test_local_backend_needs_the_local_store() -> None:
    with pytest.raises(tracelet.ConfigurationError, match="local store is off"):
        tracelet.start_logging("x", backend="local", config={"local_store": False})


def test_orchestrator_add_and_remove_backend_and_route_metric() -> None:
    from tracelet.core.contract.records import Metric, RunContext
    from tracelet.core.engine.backend import Backend
    from tracelet.core.orchestrator import Orchestrator
    from tracelet_testplugin.backends import RecorderBackend

    def backend(name: str) -> Backend:
        run = RunContext(run_id=f"orch-{name}", name="o", project="p", created_at=None)  # type: ignore[arg-type]
        plugin = RecorderBackend()
        plugin.label = name
        return Backend(name, plugin, run)

    orch = Orchestrator()
    first = backend("first")
    orch.add_backend(first)
    orch.start()
    orch.route_metric(Metric("a", 1.0, 0, 1.0))
    report = orch.remove_backend("first")
    assert report.delivered == 1
    orch.add_backend(backend("second"), replay=False)
    orch.route_metric(Metric("a", 2.0, 1, 2.0))
    final = orch.stop()
    assert [m.value for m in record_for("orch-first", "first")["metrics"]] == [1.0]
    assert [m.value for m in record_for("orch-second", "second")["metrics"]] == [2.0]
    assert final.backends["second"].delivered == 1 and orch.stop() is final
