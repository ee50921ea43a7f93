"""Several metric batches in flight per backend (`tracelet.core.engine.inflight`), with fakes registered as plugins.

What the window must keep: batches really overlap (up to `max_in_flight`, never more); params and tags are
never out beside anything (a later value wins); a failing batch is retried alone; a refused point is isolated
among good batches; the cursor (flush, progress checkpoints, the stop report) never passes a batch that is not
confirmed; a plugin that does not opt in keeps one batch at a time whatever the config asks. The stop
deadline of a batch retried on its sender thread is asserted in order on a `ManualClock` the test moves.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

import tracelet
from tracelet import ConfigurationError, hookimpl, register_plugin, unregister_plugin
from tracelet.core.contract.discovery import PluginSpec
from tracelet.core.contract.records import Metric, RunContext
from tracelet.core.engine import backoff, inflight
from tracelet.core.engine.clock import ManualClock
from tracelet.core.engine.wiring import bind_backends
from tracelet.core.orchestrator import Orchestrator, end_run_reserve
from tracelet.core.plugins import PluginType

SEEN: dict[str, Any] = {}


def _reset() -> None:
    SEEN.clear()
    SEEN.update(
        points=Counter(),
        sizes=[],
        calls=0,
        delivered_calls=0,
        active=0,
        most=0,
        params=[],
        tags=[],
        busy_at_params=[],
        lock=threading.Lock(),
    )


class Concurrent:
    """Opts in; each metric call takes a little while, so batches overlap when the window lets them."""

    concurrent_batches = True
    delay = 0.05

    def __init__(self) -> None:
        _reset()

    def _enter(self) -> None:
        with SEEN["lock"]:
            SEEN["calls"] += 1
            SEEN["active"] += 1
            SEEN["most"] = max(SEEN["most"], SEEN["active"])

    def _leave(self) -> None:
        with SEEN["lock"]:
            SEEN["active"] -= 1

    def deliver(self, metrics: list[Metric]) -> None:
        time.sleep(self.delay)

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        self._enter()
        SEEN["sizes"].append(len(metrics))
        try:
            self.deliver(metrics)
            with SEEN["lock"]:
                SEEN["points"].update((m.name, m.step) for m in metrics)
                SEEN["delivered_calls"] += 1
        finally:
            self._leave()

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        SEEN["busy_at_params"].append(SEEN["active"])
        SEEN["params"].append(dict(params))

    @hookimpl
    def backend_log_tags(self, tags: dict[str, str]) -> None:
        SEEN["busy_at_params"].append(SEEN["active"])
        SEEN["tags"].append(dict(tags))


class Sequential(Concurrent):
    """The same plugin without the capability."""

    concurrent_batches = False


class FlakyOne(Concurrent):
    """The batch holding step 0 fails three times (an outage for it alone); the others go through."""

    def __init__(self) -> None:
        super().__init__()
        SEEN["failures"] = 3

    def deliver(self, metrics: list[Metric]) -> None:
        time.sleep(self.delay)
        if any(m.step == 0 for m in metrics):
            with SEEN["lock"]:
                if SEEN["failures"]:
                    SEEN["failures"] -= 1
                    raise ConnectionError("this batch's request failed")


class Refusing(Concurrent):
    """Refuses for good any batch holding step 12,345."""

    def deliver(self, metrics: list[Metric]) -> None:
        time.sleep(0.01)
        if any(m.step == 12_345 for m in metrics):
            raise ConfigurationError("the tracker refuses this point")


GATE = threading.Event()


class HeldFirst(Concurrent):
    """The batch holding step 0 waits at a gate; later batches go through meanwhile."""

    def deliver(self, metrics: list[Metric]) -> None:
        if any(m.step == 0 for m in metrics):
            SEEN["held"] = len(metrics)
            GATE.wait(60)


class NeverFirst(Concurrent):
    """The batch holding step 0 fails every time (an outage for it alone); the later ones are delivered."""

    def deliver(self, metrics: list[Metric]) -> None:
        time.sleep(0.01)
        if any(m.step == 0 for m in metrics):
            SEEN["held"] = len(metrics)  # 1000, or fewer where the first batch was published in parts
            raise ConnectionError("still down")


PLUGINS = {
    "if_conc": Concurrent,
    "if_seq": Sequential,
    "if_flaky": FlakyOne,
    "if_refusing": Refusing,
    "if_held": HeldFirst,
    "if_never": NeverFirst,
}


@pytest.fixture(autouse=True)
def plugins() -> Iterator[None]:
    for name, cls in PLUGINS.items():
        register_plugin(cls, name)
    try:
        yield
    finally:
        for name in PLUGINS:
            unregister_plugin(name)


def _log(exp: tracelet.Experiment, start: int, count: int) -> None:
    for i in range(start, start + count):
        exp.log_metric("loss", float(i), i)


def _start(name: str, **config: Any) -> tracelet.Experiment:
    return tracelet.start_logging(name, backend=["local", name], config={f"{name}_{k}": v for k, v in config.items()})


def _batches(exp: tracelet.Experiment, count: int, size: int = 1000) -> None:
    """`count` metric batches of `size` points: each is published, then read by the worker (sent, or waiting
    for room in the window) before the next is logged, so each is one batch."""
    orch = exp.orchestrator
    assert orch is not None
    (worker,) = [w for name, w in orch.workers.items() if name != "local"]
    for b in range(count):
        start = orch.end
        _log(exp, b * size, size)
        orch._drain()
        deadline = time.monotonic() + 20
        while worker._read < start + size and time.monotonic() < deadline:
            time.sleep(0.001)


def test_batches_overlap_up_to_the_window_and_every_point_lands_once() -> None:
    exp = _start("if_conc", max_in_flight=3)
    _batches(exp, 12)
    report = exp.stop()
    assert report is not None and report.complete
    assert report.backends["if_conc"].delivered == 12_000
    assert SEEN["points"] == Counter(("loss", i) for i in range(12_000))
    assert 2 <= SEEN["most"] <= 3, SEEN["most"]


def test_the_default_window_applies_to_a_plugin_that_opts_in() -> None:
    exp = _start("if_conc")
    worker = exp.orchestrator.workers["if_conc"]  # type: ignore[union-attr]
    _batches(exp, 12)
    assert exp.stop() is not None
    assert worker._window is not None and worker._window.size == inflight.DEFAULT_IN_FLIGHT
    assert 2 <= SEEN["most"] <= inflight.DEFAULT_IN_FLIGHT


def test_one_in_flight_is_one_at_a_time() -> None:
    exp = _start("if_conc", max_in_flight="1")  # as the environment gives it: a string
    _batches(exp, 6)
    report = exp.stop()
    assert report is not None and report.complete and SEEN["most"] == 1
    assert SEEN["points"] == Counter(("loss", i) for i in range(6000))


def test_a_plugin_that_does_not_opt_in_stays_one_at_a_time_and_is_told(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        exp = _start("if_seq", max_in_flight=4)
        _batches(exp, 6)
        report = exp.stop()
    assert report is not None and report.complete and SEEN["most"] == 1
    assert "does not declare concurrent_batches, so max_in_flight=4 is not supported" in caplog.text


def test_one_large_batch_is_cut_into_pieces_that_fill_the_window() -> None:
    exp = _start("if_conc", max_in_flight=4)
    _batches(exp, 1, size=10_000)  # what a loop logging faster than the tracker takes makes
    report = exp.stop()
    assert report is not None and report.complete
    # 3000 + 3000 + 3000 + 1000, all out at once; the dispatcher may publish the loop's points in two parts
    # on a loaded machine, and each part is cut the same way: never a piece over 3000, the window filled.
    assert SEEN["most"] == 4 and max(SEEN["sizes"]) <= 3000 and len(SEEN["sizes"]) >= 4, SEEN["sizes"]
    assert SEEN["points"] == Counter(("loss", i) for i in range(10_000))
    assert [len(p) for p in inflight.pieces([("m",)] * 2500, 4)] == [1000, 1000, 500]


@pytest.mark.parametrize("bad", [0, -2, "many", 2.5, True])
def test_a_bad_window_fails_start_with_what_to_write(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_in_flight must be a whole number of batches, 1 or more"):
        _start("if_conc", max_in_flight=bad)


def test_params_and_tags_wait_for_the_batches_before_them_and_the_last_value_wins() -> None:
    exp = _start("if_conc", max_in_flight=4)
    orch = exp.orchestrator
    assert orch is not None
    for round_ in range(5):
        _batches(exp, 3)
        exp.log_params({"lr": round_})
        exp.set_tags({"phase": f"p{round_}"})
        orch._drain()
    report = exp.stop()
    assert report is not None and report.complete
    assert [p["lr"] for p in SEEN["params"]] == [0, 1, 2, 3, 4]  # every value, in order: the last one wins
    assert [t["phase"] for t in SEEN["tags"]] == ["p0", "p1", "p2", "p3", "p4"]
    assert set(SEEN["busy_at_params"]) == {0}, "a params/tags call overlapped a metric batch"
    assert SEEN["most"] >= 2


def test_a_failing_batch_is_retried_alone(caplog: pytest.LogCaptureFixture) -> None:
    exp = _start("if_flaky", max_in_flight=4)
    _batches(exp, 8)
    report = exp.stop()
    assert report is not None and report.complete
    assert report.backends["if_flaky"].errors == {"log_metrics: ConnectionError": 3}
    # Every point landed once, so no batch that went through was sent again; and every call beyond one per
    # delivered batch is one of the failing batch's 3 retries (however a loaded machine cut the loop into
    # batches: the dispatcher may publish part of a batch while it is being logged).
    assert SEEN["points"] == Counter(("loss", i) for i in range(8000))
    assert SEEN["calls"] == SEEN["delivered_calls"] + 3


def test_a_refused_point_among_good_batches_is_isolated_and_counted() -> None:
    exp = _start("if_refusing", max_in_flight=4)
    _batches(exp, 20)
    report = exp.stop()
    assert report is not None and not report.complete
    rep = report.backends["if_refusing"]
    assert rep.refused == 1 and rep.delivered == 19_999 and rep.undelivered == 0
    assert SEEN["points"] == Counter(("loss", i) for i in range(20_000) if i != 12_345)


def test_the_cursor_waits_for_a_held_batch_while_later_ones_are_delivered() -> None:
    GATE.clear()
    exp = _start("if_held", max_in_flight=4)
    worker = exp.orchestrator.workers["if_held"]  # type: ignore[union-attr]
    try:
        _batches(exp, 4)
        # The held batch is the first the worker read: 1000 points, or fewer where the dispatcher published the
        # first batch in parts while it was being logged. Everything behind it is delivered.
        deadline = time.monotonic() + 20
        while sum(SEEN["points"].values()) < 4000 - SEEN.get("held", 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        held = SEEN["held"]
        assert 0 < held <= 1000, SEEN["sizes"]
        assert sorted(step for _, step in SEEN["points"]) == list(range(held, 4000)), SEEN["sizes"]
        assert worker.cursor == 0 and worker.delivered == 0
        assert not exp.flush(timeout=0.2)
        # The progress checkpoint (what a dead run's sync resumes from) says the same.
        meta = exp.run_dir / "run.json"  # type: ignore[operator]
        deadline = time.monotonic() + 10
        progress: dict[str, int] = {}
        while time.monotonic() < deadline and not progress.get("local"):
            progress = json.loads(meta.read_text()).get("progress") or {}
            time.sleep(0.1)
        assert progress.get("local") == 4000 and progress.get("if_held") == 0, progress
    finally:
        GATE.set()
    assert exp.flush(timeout=20) and worker.cursor == 4000 and worker.delivered == 4000
    report = exp.stop()
    assert report is not None and report.complete


def test_at_the_stop_deadline_the_cursor_stays_before_the_batch_not_delivered() -> None:
    exp = _start("if_never", max_in_flight=4, stop_timeout=1.5)
    _batches(exp, 4)
    report = exp.stop()  # when the retried batch gives up: the next test, on a clock
    assert report is not None and not report.complete
    rep = report.backends["if_never"]
    # The later batches went through, yet only a contiguous prefix counts: nothing, since the first never did.
    assert sum(SEEN["points"].values()) == 4000 - SEEN["held"] and 0 < SEEN["held"] <= 1000
    assert rep.delivered == 0 and rep.undelivered == 4000
    assert json.loads((exp.run_dir / "run.json").read_text())["delivery"]["if_never"]["undelivered"] == 4000  # type: ignore[operator]


def test_a_batch_retried_on_its_sender_gives_up_at_the_stop_deadline_on_the_clock() -> None:
    """The sender thread's backoff is bound to the worker's deadline and clock: a wait begun before stop() ends
    when stop() sets the deadline, the next waits add up to the deadline exactly (never past it), the batch is
    given up there, and the worker ends the run before its stop limit."""
    clock = ManualClock()
    timeout = 1.5
    orch = Orchestrator(None, stop_timeout=timeout, clock=clock)
    spec = PluginSpec("if_never", PluginType.BACKEND, "tests:NeverFirst", "tests", "0", target=NeverFirst)
    context = RunContext(run_id="r", name="r", project="p", created_at=datetime.now(timezone.utc),
                         config={"max_in_flight": 4})  # fmt: skip
    (worker,) = bind_backends([spec], lambda name: context, orch, clock=orch.clock)
    orch.add_worker(worker)
    orch.start()
    for b in range(4):  # four batches, each read before the next is logged
        start = orch.end
        for i in range(b * 1000, (b + 1) * 1000):
            orch.route_metric(Metric("loss", float(i), i, 0.0))
        orch._drain()
        assert worker.started.wait(10)
        for _ in range(20_000):
            if worker._read >= start + 1000:
                break
            time.sleep(0.001)
    assert clock.wait_for_requests(1)  # the first batch failed; its sender waits (no deadline yet)
    sender = "tracelet-if_never-send"
    assert clock.requested == [backoff.BACKOFF_START] and clock.askers == [sender]
    stopping = threading.Thread(target=lambda: SEEN.update(report=orch.stop()), daemon=True)
    stopping.start()  # sets the deadline at 1.125 on the clock (1.5 less end_run's reserve), which is at 0
    deadline = timeout - end_run_reserve(timeout)
    asked = 1
    while stopping.is_alive():  # move the clock by each wait the sender asks for, one at a time
        if clock.wait_for_requests(asked + 1, timeout=0.05):
            asked += 1
            if clock.askers[asked - 1] == sender:  # not stop()'s own wait for the worker, which ends by itself
                clock.advance(clock.requested[asked - 1])
    report = SEEN["report"]
    waits = [w for w, who in zip(clock.requested[1:], clock.askers[1:]) if who == sender]
    assert waits == pytest.approx([0.1, 0.2, 0.4, deadline - 0.7])  # growing, the last cut to the deadline
    assert clock.monotonic() == pytest.approx(deadline)  # given up at the deadline, not a moment past it
    rep = report.backends["if_never"]
    assert rep.finished  # the worker ended the run before its stop limit (1.5 on the clock)
    assert sum(SEEN["points"].values()) == 4000 - SEEN["held"]  # the batches behind the failing one were delivered
    assert rep.delivered == 0 and rep.undelivered == 4000  # but the cursor stays before the one that was not
