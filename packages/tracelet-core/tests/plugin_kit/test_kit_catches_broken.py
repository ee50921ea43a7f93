"""The conformance kit fails broken backends, and says what is wrong with them.

Two deliberately broken backends store points in memory (read back by their kit subclasses): one drops the
last point of every batch; one sends point by point and, when its transport fails in the middle of a batch,
raises without remembering how far it got, so the worker's retry stores the first half twice. A correct twin
of the second (it remembers its progress) passes the same check, so the check is what tells them apart.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest

from tracelet.plugin import Metric, RunContext, RunStatus, hookimpl
from tracelet.testing import BackendConformance, ConformanceError, RunUnderTest, TrackedRun

STORE: dict[str, dict[str, Any]] = {}


class MemoryBackend:
    """Stores points one request at a time, as a tracker client would."""

    def __init__(self) -> None:
        self.run_id = ""
        self.fail_at: int | None = None  # the request number that fails once (set by inject_fault)
        self.requests = 0

    def send(self, metric: Metric) -> None:
        self.requests += 1
        if self.fail_at is not None and self.requests == self.fail_at:
            self.fail_at = None
            raise ConnectionError("connection reset in the middle of a batch")
        STORE[self.run_id]["metrics"].setdefault(metric.name, []).append(metric)

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        self.run_id = run.run_id
        STORE[run.run_id] = {"metrics": {}, "params": {}, "tags": {}, "status": None}
        return {"id": run.run_id}

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        for m in metrics:
            self.send(m)

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        STORE[self.run_id]["params"].update(params)

    @hookimpl
    def backend_log_tags(self, tags: dict[str, str]) -> None:
        STORE[self.run_id]["tags"].update(tags)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        STORE[self.run_id]["status"] = status.value


class DropsOnePerBatch(MemoryBackend):
    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        for m in metrics[:-1]:
            self.send(m)


class ResumesAfterFault(MemoryBackend):
    """The correct way: remember how many points of this batch went out, resume there on retry."""

    def __init__(self) -> None:
        super().__init__()
        self.progress: tuple[int, Metric, int] | None = None

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        key = (len(metrics), metrics[0])
        done = self.progress[2] if self.progress is not None and self.progress[:2] == key else 0
        for m in metrics[done:]:
            self.send(m)
            done += 1
            self.progress = (*key, done)
        self.progress = None


class MemoryKit(BackendConformance):
    def read_run(self, run: RunUnderTest) -> TrackedRun:
        stored = STORE[run.details["id"]]
        return TrackedRun(
            metrics=stored["metrics"], params=stored["params"], tags=stored["tags"], status=stored["status"]
        )

    def inject_fault(self, plugin: Any) -> None:
        plugin.fail_at = plugin.requests + 700  # inside the first batch of 1500+ points


class TestMemoryBackendPasses(MemoryKit):
    """The kit itself, run against the correct backends: every check passes."""

    backend = ResumesAfterFault


def _kit(cls: type, tmp_path: Path) -> BackendConformance:
    kit = type("Kit", (MemoryKit,), {"backend": cls})()
    kit.setup_kit(tmp_path)
    return kit


def test_a_backend_that_drops_a_point_per_batch_fails_with_lost_points(tmp_path: Path) -> None:
    kit = _kit(DropsOnePerBatch, tmp_path)
    try:
        with pytest.raises(ConformanceError, match=r"lost points: metric '[a-z/]+' has \d+ of \d+ points"):
            kit.test_metrics_in_order_with_steps_and_timestamps()
    finally:
        kit.teardown_kit()


def test_a_backend_that_duplicates_on_retry_fails_with_duplicate_delivery(tmp_path: Path) -> None:
    kit = _kit(MemoryBackend, tmp_path)
    try:
        with pytest.raises(ConformanceError) as err:
            kit.test_transport_fault_mid_batch()
    finally:
        kit.teardown_kit()
    msg = str(err.value)
    assert "duplicate delivery: metric '" in msg
    assert "writes part of a batch and then raises" in msg


def test_the_same_fault_passes_when_the_backend_resumes(tmp_path: Path) -> None:
    kit = _kit(ResumesAfterFault, tmp_path)
    try:
        kit.test_transport_fault_mid_batch()
    finally:
        kit.teardown_kit()


class SecondsAndFloat32(MemoryBackend):
    """Stores timestamps truncated to whole seconds and values as float32, as some trackers do."""

    def send(self, metric: Metric) -> None:
        import struct

        value = struct.unpack("f", struct.pack("f", metric.value))[0] if math.isfinite(metric.value) else metric.value
        super().send(metric._replace(value=value, timestamp=float(int(metric.timestamp))))


def test_timestamp_and_value_tolerances_are_the_authors_to_declare(tmp_path: Path) -> None:
    kit = _kit(SecondsAndFloat32, tmp_path)
    try:
        with pytest.raises(ConformanceError, match=r"timestamp .* s, logged at .* s \(off by"):
            kit.test_metrics_in_order_with_steps_and_timestamps()
        type(kit).timestamp_tolerance = 1.0  # whole seconds declared
        with pytest.raises(ConformanceError, match=r"metric '[a-z/]+' step \d+: tracker has .*, logged"):
            kit.test_metrics_in_order_with_steps_and_timestamps()
        type(kit).value_rel_tol = 1e-6  # float32 precision declared
        kit.test_metrics_in_order_with_steps_and_timestamps()
        type(kit).timestamp_tolerance = None  # "the tracker keeps no timestamps" also passes
        kit.test_metrics_in_order_with_steps_and_timestamps()
    finally:
        kit.teardown_kit()


def test_relogged_params_rule_is_checked_and_validated(tmp_path: Path) -> None:
    kit = _kit(ResumesAfterFault, tmp_path)  # keeps the latest value of a re-logged param
    try:
        kit.test_params_nested_and_relogged()
        type(kit).relogged_params = "first"
        with pytest.raises(ConformanceError, match=r"param 'lr': tracker has 0.01, logged 0.001 \(re-logged"):
            kit.test_params_nested_and_relogged()
        type(kit).relogged_params = "last"
        with pytest.raises(ConformanceError, match="relogged_params must be 'latest' or 'first'"):
            kit.setup_kit(tmp_path)
    finally:
        kit.teardown_kit()


# -- batches in flight (`concurrent_batches`) --------------------------------------------------------------------
class ConcurrentInArrivalOrder(ResumesAfterFault):
    """Opts in to batches in flight, yet stores points in arrival order and keeps one shared `progress`: its
    batches interleave in the tracker, so they read back out of logging order."""

    concurrent_batches = True


class ConcurrentOrderedByStep(MemoryBackend):
    """Opts in correctly: the tracker orders each metric's points by step (as MLflow does), and a batch's retry
    state belongs to the thread sending it."""

    concurrent_batches = True

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def send(self, metric: Metric) -> None:
        with self.lock:
            super().send(metric)
            series = STORE[self.run_id]["metrics"][metric.name]
            series.sort(key=lambda m: (m.step, m.timestamp))


def test_a_backend_that_opts_in_but_orders_by_arrival_fails_the_in_flight_check(tmp_path: Path) -> None:
    kit = _kit(ConcurrentInArrivalOrder, tmp_path)
    try:
        with pytest.raises(ConformanceError, match=r"metric '[a-z/]+' out of order at position \d+"):
            kit.test_batches_in_flight()
    finally:
        kit.teardown_kit()


def test_a_backend_that_opts_in_and_orders_by_step_passes_the_in_flight_check(tmp_path: Path) -> None:
    kit = _kit(ConcurrentOrderedByStep, tmp_path)
    try:
        kit.test_batches_in_flight()
    finally:
        kit.teardown_kit()


def test_the_in_flight_check_is_skipped_for_a_backend_that_does_not_opt_in(tmp_path: Path) -> None:
    kit = _kit(ResumesAfterFault, tmp_path)
    try:
        with pytest.raises(pytest.skip.Exception, match="does not declare concurrent_batches"):
            kit.test_batches_in_flight()
    finally:
        kit.teardown_kit()
