"""Contiguous params events reach a backend merged only while no key changes value: a backend must see a
re-logged param as a second call, to apply its tracker's rule (MLflow keeps the first value)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import tracelet
from tracelet.plugin import Metric, hookimpl

_calls: list[dict[str, Any]] = []
_release = threading.Event()


class GatedRecorder:
    """Holds its worker in the first metrics batch until released, so the events after it queue up and are
    fetched as one batch."""

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        _release.wait(30)

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        _calls.append(dict(params))


@pytest.fixture
def gated() -> Iterator[None]:
    _calls.clear()
    _release.clear()
    tracelet.register_plugin(GatedRecorder, name="gated-recorder")
    yield
    _release.set()
    tracelet.unregister_plugin("gated-recorder")


def test_a_changed_param_splits_the_batch_and_unchanged_ones_merge(gated: None) -> None:
    exp = tracelet.start_logging("params-batching", backend="gated-recorder", config={"track_system": False})
    exp.log_metric("hold", 1.0, 0)  # the worker waits in this batch while the params below queue up
    assert exp.flush(timeout=0.5) is False, "the worker should be held in the metrics batch"
    exp.log_params({"lr": 0.1, "bs": 32})
    exp.log_params({"bs": 32, "opt": "adam"})  # same value again: merges with the first call
    exp.log_params({"lr": 0.2})  # a change: must arrive as its own call, after the first value
    _release.set()
    report = exp.stop()
    assert report is not None and report.complete
    relevant = [c for c in _calls if set(c) & {"lr", "bs", "opt"}]
    assert relevant == [{"lr": 0.1, "bs": 32, "opt": "adam"}, {"lr": 0.2}]
