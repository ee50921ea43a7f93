"""The public API matches the spec, as checked by the shared checker and by direct use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tracelet
from tracelet.core.contract.records import RunStatus
from tracelet.core.experiment import Experiment
from tracelet.store import open_run

# The spec's API checker is not part of this repository: `.ci/run` points TRACELET_API_CHECKER at it when the
# shared folder is next to the clone. Read at import, before the fixtures clear TRACELET_* variables.
CHECKER = Path(os.environ.get("TRACELET_API_CHECKER", "")) if os.environ.get("TRACELET_API_CHECKER") else None


@pytest.mark.skipif(CHECKER is None, reason="TRACELET_API_CHECKER is not set (.ci/run sets it when ../shared exists)")
def test_check_api_reports_no_mismatch() -> None:
    assert CHECKER is not None and CHECKER.is_file(), f"TRACELET_API_CHECKER={CHECKER} is not a file"
    out = subprocess.run([sys.executable, str(CHECKER)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 API mismatches" in out.stdout


def test_start_logging_returns_active_experiment_and_stop_clears_it() -> None:
    exp = tracelet.start_logging("api-exp", project="proj", backend="local")
    assert isinstance(exp, Experiment)
    assert tracelet.get_active_experiment() is exp
    assert exp.name == "api-exp" and exp.project == "proj"
    assert exp.experiment_id == exp.id
    assert [b.name for b in exp.backends] == ["local"]
    tracelet.stop_logging()
    assert tracelet.get_active_experiment() is None
    assert open_run(exp.id).status == "FINISHED"


def test_stopping_the_experiment_itself_clears_the_active_slot(caplog: pytest.LogCaptureFixture) -> None:
    exp = tracelet.start_logging("stopped-directly", backend="local")
    exp.stop()
    assert tracelet.get_active_experiment() is None
    with caplog.at_level("WARNING", logger="tracelet"):
        nxt = tracelet.start_logging("next", backend="local")
    assert not [r for r in caplog.records if "stops the active experiment" in r.getMessage()]  # nothing to stop
    assert tracelet.get_active_experiment() is nxt
    tracelet.stop_logging()


def test_context_manager_finishes_and_deactivates() -> None:
    with tracelet.start_logging("ctx", backend="local") as exp:
        exp.log_metric("loss", 0.5, 0)
    assert tracelet.get_active_experiment() is None
    run = open_run(exp.id)
    assert run.status == "FINISHED"
    assert [p.value for p in run.metrics()["loss"]] == [0.5]


def test_exception_inside_with_marks_failure_and_delivers_everything() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with tracelet.start_logging("fails", backend=["local", "recorder"]) as exp:
            for i in range(1000):
                exp.log_metric("loss", float(i), i)
            raise RuntimeError("boom")
    from tracelet_testplugin.backends import record_for

    rec = record_for(exp.id, "recorder")
    assert rec["status"] is RunStatus.FAILED
    assert len(rec["metrics"]) == 1000
    run = open_run(exp.id)
    assert run.status == "FAILED"
    assert len(run.metrics()["loss"]) == 1000


def test_experiment_class_directly_as_context_manager() -> None:
    with Experiment("direct", backend=["local"], tags=["a", "b"]) as exp:
        exp.set_iteration(7)
        exp.log_metric("acc", 0.9)
        assert exp.iteration == 7
    run = open_run(exp.id)
    assert run.meta["tags"] == ["a", "b"]
    assert run.metrics()["acc"][0].step == 7


def test_stop_is_idempotent_and_end_is_an_alias() -> None:
    exp = tracelet.start_logging("twice", backend="local")
    exp.log_metric("x", 1, 0)
    first = exp.end()
    assert exp.stop() is first
    tracelet.stop_logging()
    assert first is not None and first.events == 1


def test_log_hyperparameter_and_params() -> None:
    with tracelet.start_logging("params", backend="local") as exp:
        exp.log_params({"lr": 0.01, "batch_size": 32, "layers": [1, 2], "opt": {"name": "adam"}})
        exp.log_hyperparameter("dropout", 0.1)
    assert open_run(exp.id).params() == {
        "lr": 0.01,
        "batch_size": 32,
        "layers": [1, 2],
        "opt": {"name": "adam"},
        "dropout": 0.1,
    }


def test_capture_hyperparams_model_and_dataset() -> None:
    with tracelet.start_logging("capture", backend="local") as exp:
        learning_rate = 0.3
        epochs = 4
        name = "resnet"
        _private = 1
        captured = exp.capture_hyperparams()
        assert captured["learning_rate"] == learning_rate and captured["epochs"] == epochs
        assert captured["name"] == name and "_private" not in captured and "exp" not in captured
        # The test framework plugin describes its own models; anything else gets the generic description.
        assert exp.capture_model({"kind": "test-model", "layers": [1, 2, 3]}) == {"layers": 3}
        assert exp.capture_dataset([1, 2, 3, 4]) == {"class": "builtins.list", "size": 4}
    params = open_run(exp.id).params()
    assert params["model/layers"] == 3 and params["dataset/size"] == 4 and params["epochs"] == 4


def test_framework_plugins_are_instrumented_and_uninstrumented() -> None:
    from tracelet_testplugin.framework import EVENTS

    with tracelet.start_logging("fw", backend="local") as exp:
        assert ("instrument", exp.id) in EVENTS
        assert ("uninstrument", exp.id) not in EVENTS
    assert ("uninstrument", exp.id) in EVENTS


def test_start_logging_replaces_an_active_experiment() -> None:
    first = tracelet.start_logging("one", backend="local")
    second = tracelet.start_logging("two", backend="local")
    assert tracelet.get_active_experiment() is second
    assert first.status == RunStatus.FINISHED
    tracelet.stop_logging()


def test_logging_before_start_is_a_clear_error() -> None:
    exp = Experiment("not-started", backend=["local"])
    with pytest.raises(tracelet.TraceletException, match="start"):
        exp.log_metric("x", 1.0)


def test_keyboard_interrupt_inside_with_marks_the_run_killed() -> None:
    with pytest.raises(KeyboardInterrupt):
        with tracelet.start_logging("ctrl-c", backend="local") as exp:
            exp.log_metric("x", 1.0, 0)
            raise KeyboardInterrupt
    run = open_run(exp.id)
    assert run.status == "KILLED" and len(run.metrics()["x"]) == 1
