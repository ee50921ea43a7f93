"""`Experiment.log_summary`: a run's single values, carried as journal events of kind "s".

The local store keeps them in the journal (read back with `LocalRun.summary()`, shown by `tracelet show`); a
backend with `backend_log_summary` receives them merged, with the step they belong to; a backend with only
`backend_log_metrics` receives them as points at that step; a backend with neither reports them as no_hook.
Backends' own implementations are tested with the real trackers (packages/tracelet-mlflow|-wandb|-clearml/tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

import tracelet
from tracelet import cli, hookimpl, register_plugin, unregister_plugin
from tracelet.core.contract.records import Metric
from tracelet.store import open_run

GOT: dict[str, list[Any]] = {}


class WithSummary:
    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        GOT.setdefault("with_summary_metrics", []).extend(metrics)

    @hookimpl
    def backend_log_summary(self, summary: dict[str, float], step: int) -> None:
        GOT.setdefault("with_summary", []).append((dict(summary), step))


class MetricsOnly:
    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        GOT.setdefault("metrics_only", []).extend(metrics)


class ParamsOnly:
    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        GOT.setdefault("params_only", []).append(params)


@pytest.fixture
def backends() -> Iterator[None]:
    GOT.clear()
    names = {"with-summary": WithSummary, "metrics-only": MetricsOnly, "params-only": ParamsOnly}
    for name, cls in names.items():
        register_plugin(cls, name)
    try:
        yield
    finally:
        for name in names:
            unregister_plugin(name)


def test_summary_reaches_every_kind_of_backend_at_the_last_step(backends: None) -> None:
    exp = tracelet.start_logging("s", backend=["local", "with-summary", "metrics-only", "params-only"])
    exp.log_metric("loss", 1.0, 5)
    exp.log_metric("loss", 0.5, 40)
    exp.log_metric("loss", 0.7, 20)  # out of order: the highest step counts, not the last one
    exp.log_summary({"train_runtime": 12.5, "total_flos": 3})
    exp.log_summary({"train_runtime": 13.0})  # merged with the call before: the later value wins
    exp.log_summary({"best": 0.25}, iteration=7)
    report = exp.stop()
    assert report is not None

    assert GOT["with_summary"] == [({"train_runtime": 13.0, "total_flos": 3.0}, 40), ({"best": 0.25}, 7)]
    assert [m.name for m in GOT["with_summary_metrics"]] == ["loss"] * 3  # not also as points
    points = [(m.name, m.value, m.step) for m in GOT["metrics_only"] if m.name != "loss"]
    assert points == [("train_runtime", 13.0, 40), ("total_flos", 3.0, 40), ("best", 0.25, 7)]
    assert report.backends["params-only"].no_hook == {"metrics": 3, "summary": 3}
    assert report.backends["metrics-only"].delivered == 6 and report.backends["metrics-only"].no_hook == {}
    assert report.backends["local"].no_hook == {} and report.complete

    run = open_run(exp.id)
    assert run.summary() == {"train_runtime": 13.0, "total_flos": 3.0, "best": 0.25}
    assert "train_runtime" not in run.metrics()  # a single value, not a series


def test_summary_without_metrics_is_at_step_zero(backends: None) -> None:
    exp = tracelet.start_logging("s", backend=["with-summary"], config={"local_store": False})
    exp.log_summary({"accuracy": math.inf})
    exp.stop()
    assert GOT["with_summary"] == [({"accuracy": math.inf}, 0)]


def test_bad_values_raise_naming_the_entry_and_nothing_is_logged() -> None:
    exp = tracelet.start_logging("s", backend=["local"])
    with pytest.raises(TypeError, match="'model_name'.*real number"):
        exp.log_summary({"ok": 1.0, "model_name": "bert"})
    with pytest.raises(TypeError, match="mapping"):
        exp.log_summary([("a", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="iteration"):
        exp.log_summary({"a": 1.0}, iteration="last")  # type: ignore[arg-type]
    exp.stop()
    assert open_run(exp.id).summary() == {}


def test_show_prints_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    exp = tracelet.start_logging("s", backend=["local"])
    exp.log_summary({"train_runtime": 12.5})
    exp.stop()
    assert cli.main(["show", exp.id]) == 0
    out = capsys.readouterr().out
    assert "summary\n  train_runtime = 12.5" in out


def test_sync_replays_the_summary(backends: None, tmp_path: Any) -> None:
    settings = tracelet.TraceletSettings(dir=str(tmp_path / "runs"), track_system=False)
    exp = tracelet.Experiment("s", backend=["local"], project="p", settings=settings)
    exp.start()
    exp.log_metric("loss", 0.5, 9)
    exp.log_summary({"train_runtime": 2.0})
    exp.stop()
    result = tracelet.sync(exp.id, to=["with-summary"], dir=tmp_path / "runs")
    assert result.backends["with-summary"].complete
    assert GOT["with_summary"] == [({"train_runtime": 2.0}, 9)]
