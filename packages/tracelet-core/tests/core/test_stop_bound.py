"""stop() returns within the stop timeout (README: "each backend within `TRACELET_STOP_TIMEOUT`").

Backends finish side by side against one absolute limit each, so hung backends do not add their waits up;
and a backend that still takes batches when its delivery deadline passes stops being fed there, so its
`backend_end_run` is called before stop() returns (its tracker's run is not left RUNNING) and the report
agrees with what the tracker got.

The engine's deadlines are asserted in order on a `ManualClock` the test moves (given to the orchestrator at
construction, as the composition root gives the real one): what stop() waited for and when, which batches were
begun before the delivery deadline. One end-to-end test keeps a bound in seconds, generous, on the whole of
`Experiment.stop()` against hung backends: the promise a user reads in the README.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

import tracelet
from tracelet.core.contract.discovery import PluginSpec
from tracelet.core.contract.records import RunContext
from tracelet.core.engine.clock import ManualClock
from tracelet.core.engine.wiring import bind_backends
from tracelet.core.orchestrator import Orchestrator, end_run_reserve
from tracelet.core.plugins import PluginType
from tracelet.plugin import Metric, RunStatus, hookimpl
from tracelet.store import open_run

RELEASE = threading.Event()  # lets the hung workers go at the end of a test (daemon threads otherwise linger)
GOT: dict[str, Any] = {}
# Collectors off: on a loaded machine their last readings at stop could blur the timing asserted here.
QUIET = {"track_system": False, "track_env": False, "track_git": False}


class Hung:
    """Never returns from a delivery."""

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        RELEASE.wait(120)


class HungAtEnd:
    """Takes every batch, then never returns from end_run."""

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        pass

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        RELEASE.wait(120)


@pytest.fixture
def plugins() -> Iterator[None]:
    names = {"hung1": Hung, "hung2": Hung, "hung3": Hung, "hung_end": HungAtEnd}
    RELEASE.clear()
    GOT.clear()
    for name, cls in names.items():
        tracelet.register_plugin(cls, name=name)
    try:
        yield
    finally:
        RELEASE.set()
        for name in names:
            tracelet.unregister_plugin(name)


def test_hung_backends_do_not_add_up_and_the_others_complete(plugins: None) -> None:
    timeout = 2.0
    exp = tracelet.start_logging(
        "hung",
        backend=["local", "hung1", "hung2", "hung3", "hung_end"],
        config={"stop_timeout": timeout, **QUIET},
    )
    for i in range(1000):
        exp.log_metric("x", float(i), i)
    t0 = time.monotonic()
    report = exp.stop()
    elapsed = time.monotonic() - t0
    # A failure bound, not a timing: four hung backends waited one after another would take 4 x 2 s; side by
    # side they take the one 2 s limit (asserted exactly, on a clock, below). The slack absorbs a loaded machine.
    assert elapsed < 2 * timeout + 2.0, f"stop() took {elapsed:.2f} s with a stop timeout of {timeout} s"
    assert report is not None and not report.complete
    for name in ("hung1", "hung2", "hung3"):
        assert report.backends[name].undelivered == report.events and not report.backends[name].finished
    assert report.backends["hung_end"].undelivered == 0 and not report.backends["hung_end"].finished
    assert report.backends["local"].undelivered == 0 and report.backends["local"].finished
    run = open_run(exp.id)
    assert run.status == "FINISHED"
    assert [p.value for p in run.metrics()["x"]] == [float(i) for i in range(1000)]


def _context(name: str) -> RunContext:
    return RunContext(run_id=f"run-{name}", name="r", project="p", created_at=datetime.now(timezone.utc))


def _orchestrator(clock: ManualClock, stop_timeout: float, plugins: dict[str, type]) -> Orchestrator:
    """A run's orchestrator on `clock`, its backends bound by the composition root, as a live run's are."""
    orch = Orchestrator(None, stop_timeout=stop_timeout, clock=clock)
    specs = [PluginSpec(name, PluginType.BACKEND, f"tests:{cls.__name__}", "tests", "0", target=cls)
             for name, cls in plugins.items()]  # fmt: skip
    for worker in bind_backends(specs, _context, orch, clock=orch.clock):
        assert worker.clock is clock
        orch.add_worker(worker)
    return orch


def _stop_on_thread(orch: Orchestrator) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(report=orch.stop()), daemon=True)
    thread.start()
    return thread, out


class Taking:
    """Takes every batch at once."""

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        pass


def test_hung_backends_share_one_limit_on_the_clock_and_stop_returns_when_it_passes(plugins: None) -> None:
    clock = ManualClock()
    hung = ["hung1", "hung2", "hung3"]
    orch = _orchestrator(clock, 2.0, {**dict.fromkeys(hung, Hung), "hung_end": HungAtEnd, "taking": Taking})
    orch.start()
    for i in range(1000):
        orch.route_metric(Metric("x", float(i), i, 0.0))
    stopping, out = _stop_on_thread(orch)
    assert clock.wait_for_requests(1)  # stop() waits for the first hung backend until its limit, on the clock
    assert clock.requested == [2.0]
    assert orch.workers["taking"].done.wait(30)  # the backend that takes everything is done before the limit
    stopping.join(0.2)
    assert stopping.is_alive(), "stop() returned before the clock reached the backends' limit"
    clock.advance(2.0)
    stopping.join(30)
    assert not stopping.is_alive(), "stop() did not return once the clock passed the limit"
    # One absolute limit: once it passed, the other hung backends were given no time of their own.
    assert clock.requested == [2.0, 0, 0, 0, 0]
    report = out["report"]
    assert not report.complete and report.events == 1000
    for name in hung:
        assert report.backends[name].undelivered == 1000 and not report.backends[name].finished
    assert report.backends["hung_end"].undelivered == 0 and not report.backends["hung_end"].finished
    assert report.backends["taking"].undelivered == 0 and report.backends["taking"].finished


class PloddingOnClock:
    """Takes every batch, each call lasting 0.3 s of the test's clock (it moves the clock on itself). Its first
    call waits until stop() has set the deadline, so all that was logged is still to deliver then."""

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        worker = GOT["worker"]
        while worker.deadline is None:
            time.sleep(0.001)
        clock = worker.clock
        began = clock.monotonic()
        clock.advance(0.3)
        GOT["calls"].append((began, clock.monotonic(), worker.deadline))
        GOT["points"] += len(metrics)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        GOT["ended"] = (status, GOT["points"], GOT["worker"].clock.monotonic())


def test_a_slow_backend_is_ended_before_stop_returns_and_the_report_matches_what_it_got(plugins: None) -> None:
    clock = ManualClock()
    timeout = 4.0
    orch = _orchestrator(clock, timeout, {"plodding": PloddingOnClock})
    GOT.update(worker=orch.workers["plodding"], calls=[], points=0)
    orch.start()
    for i in range(200_000):  # 20 batches of 10,000: 6 s of deliveries at 0.3 s each, twice the 3 s window
        orch.route_metric(Metric("x", float(i), i, 0.0))
    stopping, out = _stop_on_thread(orch)
    stopping.join(60)
    assert not stopping.is_alive()
    limit = timeout  # stop() began at 0 on the clock
    deadline = limit - end_run_reserve(timeout)
    calls = GOT["calls"]
    assert calls and all(d == deadline for _, _, d in calls)
    # No batch was begun that would end past the delivery deadline (the worker judges by the last call) ...
    assert all(end <= deadline + 1e-9 for _, end, _ in calls), calls
    # ... and delivery went on until the next one would have: it stopped for the deadline, not before.
    assert calls[-1][1] + 0.3 > deadline - 1e-9, calls
    assert "ended" in GOT, "backend_end_run was not called before stop() returned"
    status, points_at_end, ended_at = GOT["ended"]
    assert status is RunStatus.FINISHED
    assert calls[-1][1] <= ended_at <= limit  # ended after the last delivery, within the stop limit
    report = out["report"]
    plodding = report.backends["plodding"]
    assert plodding.finished
    assert 0 < points_at_end < 200_000
    assert plodding.delivered == points_at_end == GOT["points"]  # nothing delivered behind the report's back
    assert plodding.undelivered == 200_000 - points_at_end
