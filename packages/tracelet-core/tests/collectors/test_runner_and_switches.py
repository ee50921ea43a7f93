"""The collector runner's guarantees (threads, failures reported once) and every switch turned off."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import tracelet
from tracelet import hookimpl
from tracelet_testsupport.collectors import ALL_OFF, make_experiment, run_json, stored

CALLS: list[tuple[str, str]] = []


class ProbeCollector:
    """Records which thread runs each hook."""

    config_switch = "track_system_metrics"

    def _seen(self, hook: str) -> None:
        CALLS.append((hook, threading.current_thread().name))

    @hookimpl
    def collector_metadata(self) -> dict:
        self._seen("metadata")
        return {"probe": {"api_key": "k", "max_tokens": 3}}

    @hookimpl
    def collector_start(self) -> None:
        self._seen("start")

    @hookimpl
    def collector_begin(self) -> None:
        self._seen("begin")

    @hookimpl
    def collector_sample(self) -> dict:
        self._seen("sample")
        return {"probe/value": 1.0}

    @hookimpl
    def collector_stop(self) -> None:
        self._seen("stop")


class BrokenCollector:
    config_switch = "track_system_metrics"

    @hookimpl
    def collector_sample(self) -> dict:
        raise RuntimeError("sensor unplugged")

    @hookimpl
    def collector_stop(self) -> None:
        raise OSError("cannot release")


@pytest.fixture
def probes():
    CALLS.clear()
    tracelet.register_plugin(ProbeCollector, "probe", "collector")
    tracelet.register_plugin(BrokenCollector, "broken-probe", "collector")
    yield
    tracelet.unregister_plugin("probe", "collector")
    tracelet.unregister_plugin("broken-probe", "collector")


def test_hooks_run_on_the_documented_threads_and_failures_are_reported_once(
    probes, experiment_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tracelet")
    exp = experiment_factory(track_system_metrics=True, settings={"metrics_interval": 0.1})
    exp.start()
    for i in range(50):  # the training loop: never sees the broken collector
        exp.log_metric("loss", 1.0 / (i + 1), iteration=i)
    time.sleep(0.6)
    exp.stop()
    main = threading.current_thread().name
    assert ("metadata", main) in CALLS and ("start", main) in CALLS and ("stop", main) in CALLS
    assert ("begin", "tracelet-collectors") in CALLS
    sample_threads = {t for hook, t in CALLS if hook == "sample"}
    assert sample_threads == {"tracelet-collectors"}
    order = [hook for hook, _ in CALLS]
    assert order[:3] == ["metadata", "start", "sample"] and order.index("begin") > order.index("sample")
    assert order[-1] == "stop" and order[-2] == "sample"
    assert len(stored(exp).metrics()["probe/value"]) >= 4
    assert len(stored(exp).metrics()["loss"]) == 50
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "broken-probe" in w and "collector_sample" in w]) == 1
    assert len([w for w in warnings if "broken-probe" in w and "collector_stop" in w]) == 1
    assert run_json(exp)["metadata"]["probe"] == {"api_key": "***", "max_tokens": 3}  # redacted by the core


ALL = {switch: True for switch in ALL_OFF if switch != "track_metrics"}  # every collector switch on


@pytest.mark.parametrize(
    "off", ["track_environment", "track_args", "track_stdout", "track_system_metrics", "track_git"]
)
def test_each_switch_off_means_nothing_from_that_part(
    off: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "c"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True)
    (repo / "new.txt").write_text("x")
    subprocess.run(["git", "add", "new.txt"], cwd=repo, check=True)  # dirty: a diff to log
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", ["train.py", "--lr", "1"])
    original_parse = argparse.ArgumentParser.parse_known_args
    original_out = sys.stdout
    exp = make_experiment(**{**ALL, off: False})
    exp.start()
    if off == "track_args":
        assert argparse.ArgumentParser.parse_known_args is original_parse
    if off == "track_stdout":
        assert sys.stdout is original_out
    p = argparse.ArgumentParser()
    p.add_argument("--lr")
    p.parse_args(["--lr", "2"])
    print("some output")
    time.sleep(0.3)
    exp.stop()
    meta = run_json(exp)["metadata"]
    run = stored(exp)
    artifacts = {a.name for a in run.artifacts()}
    metrics = set(run.metrics())
    params = run.params()
    part = {
        "track_environment": ("environment" in meta, "environment" in artifacts),
        "track_args": ("argv" in meta, "source" in meta, any(k.startswith("args/") for k in params)),
        "track_stdout": ("console" in artifacts, (Path(exp.run_dir) / "output.log").exists()),
        "track_system_metrics": (any(m.startswith("system/") for m in metrics),),
        "track_git": ("git" in meta, "git-diff" in artifacts),
    }
    for switch, present in part.items():
        if switch == off:
            assert not any(present), (switch, present)
        else:
            assert all(present), (switch, present)


def test_track_metrics_off_makes_log_metric_a_no_op(experiment_factory) -> None:
    exp = experiment_factory(track_metrics=False, track_system_metrics=True).start()
    exp.log_metric("loss", 0.5)
    exp.log_metric("loss", "not even a number")  # values are not even checked in a dry run
    assert "log_metric" not in vars(exp)  # a no-op of the dry run's class, not a method replaced on the instance
    exp.log_params({"lr": 0.1})
    time.sleep(0.3)
    exp.stop()
    run = stored(exp)
    assert run.metrics() == {}  # system metrics included
    assert run.params() == {"lr": 0.1}  # parameters are still recorded


def test_a_metrics_only_runner_samples_system_collectors_alone() -> None:
    """The form a distributed job's node-metrics thread uses: a bare log_metric, no run to hook into."""
    from tracelet.core.engine.collectors import CollectorRunner

    readings: list[tuple[str, float]] = []
    original_out = sys.stdout
    runner = CollectorRunner(lambda name, value: readings.append((name, value)), interval=0.1)
    assert {"system", "gpu"} <= set(runner.names)
    assert not {"git", "environment", "args", "stdout"} & set(runner.names)
    runner.start()
    assert sys.stdout is original_out
    time.sleep(0.5)
    runner.stop()
    assert not _threads_named("tracelet-collectors")
    names = {name for name, _ in readings}
    assert "system/cpu_percent" in names and all(n.startswith("system/") for n in names)
    assert sum(name == "system/cpu_percent" for name, _ in readings) >= 3


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]
