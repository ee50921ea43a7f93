"""Permanent versus transient delivery failures.

A hook that raises `ConfigurationError` says "the tracker refuses this data": retrying cannot help. The
worker splits the batch until the refused events stand alone, delivers everything else in order, counts the
refused ones in the stop report and run.json (they stay in the journal), and the report does not claim the
run complete. Any other exception is transient: the same batch is retried until it goes through.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import tracelet
from tracelet import ConfigurationError, hookimpl, register_plugin, unregister_plugin
from tracelet.core.contract.records import Metric, RunStatus
from tracelet.store import open_run

RECEIVED: dict[str, Any] = {}


class Picky:
    """Refuses any batch holding a point whose step is 1234 modulo 10,000 (one point in 10,000)."""

    def __init__(self) -> None:
        RECEIVED.clear()
        RECEIVED.update(points=[], calls=0, status=None)

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        RECEIVED["calls"] += 1
        if any(m.step % 10_000 == 1234 for m in metrics):
            raise ConfigurationError("the tracker refuses this point")
        RECEIVED["points"].extend(metrics)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        RECEIVED["status"] = status


class Outage:
    """Fails the first three deliveries with an outage, then takes everything."""

    def __init__(self) -> None:
        self.failures = 3
        self.lock = threading.Lock()
        RECEIVED.clear()
        RECEIVED.update(points=[], calls=0)

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        RECEIVED["calls"] += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("tracker unreachable")
        RECEIVED["points"].extend(metrics)


@pytest.fixture
def plugins() -> Iterator[None]:
    register_plugin(Picky, "picky")
    try:
        register_plugin(Outage, "outage")
        yield
    finally:
        unregister_plugin("picky")
        unregister_plugin("outage")


def test_one_refused_point_in_ten_thousand_is_isolated_counted_and_the_rest_delivered(plugins: None) -> None:
    n = 100_000
    exp = tracelet.start_logging("picky", backend=["local", "picky"])
    for i in range(n):
        exp.log_metric("loss", float(i), i)
    report = exp.stop()
    assert report is not None
    refused = [i for i in range(n) if i % 10_000 == 1234]
    assert len(refused) == 10
    assert [m.step for m in RECEIVED["points"]] == [i for i in range(n) if i % 10_000 != 1234]  # in order
    picky = report.backends["picky"]
    assert picky.refused == 10 and picky.undelivered == 0
    assert picky.delivered == n - 10  # the report does not claim the refused points delivered
    assert not report.complete
    assert picky.errors == {"log_metrics refused: ConfigurationError": 10}
    assert RECEIVED["status"] is RunStatus.FINISHED  # the run still ends, and on time
    assert RECEIVED["calls"] < 10 * 2 * 15 + 20  # halving, not one call per point
    run = open_run(exp.id)
    assert run.meta["delivery"]["picky"]["refused"] == 10
    assert len(run.metrics()["loss"]) == n  # refused points stay in the journal


def test_a_transient_failure_is_retried_and_nothing_is_lost(plugins: None) -> None:
    exp = tracelet.start_logging("outage", backend=["outage"], config={"local_store": False})
    for i in range(5000):
        exp.log_metric("loss", float(i), i)
    report = exp.stop()
    assert report is not None and report.complete
    assert [m.step for m in RECEIVED["points"]] == list(range(5000))
    assert report.backends["outage"].refused == 0
    assert report.backends["outage"].errors == {"log_metrics: ConnectionError": 3}
