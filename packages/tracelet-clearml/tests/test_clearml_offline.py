"""The ClearML backend against a real ClearML offline session, read back from the files ClearML wrote."""

from __future__ import annotations

import logging
import math
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tracelet.core.experiment import Experiment
from tracelet.exceptions import ConfigurationError
from tracelet.settings import TraceletSettings
from tracelet_testsupport.clearml import OfflineSession

OFFLINE = {"clearml": {"offline": True}}


def start(name: str = "run", project: str = "proj", config: dict[str, Any] | None = None, **kw: Any) -> Experiment:
    settings = TraceletSettings(project=project, track_system=False)
    options = config if config is not None else OFFLINE
    exp = Experiment(name, backend=["clearml"], project=project, settings=settings, options=options, **kw)
    return exp.start()


def git_repo(path: Path) -> str:
    """A one-commit git repository at `path`; returns the commit."""
    path.mkdir()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "start"], cwd=path, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=path, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_scalars_params_tags_and_report(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit = git_repo(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")  # Tracelet records the git facts of the working directory
    exp = start("mapping-run", "mapping-proj", tags=["baseline", "team=vision"])
    for i in range(300):
        exp.log_metric("train/loss", 1.0 / (i + 1), i)
        exp.log_metric("loss", 2.0 * i, i)
        if i % 10 == 0:
            exp.log_metric("val/acc/top1", i / 300, i)
    exp.log_params({"lr": 0.01, "epochs": 3, "optimizer": {"name": "adam", "betas": {"b1": 0.9}}, "train/bs": 32})
    exp.set_tags({"stage": "dev", "seed": 7})
    report = exp.stop()
    assert report is not None and report.complete
    details = report.backends["clearml"].details
    session = OfflineSession.of(cache_dir, report)

    # Every scalar with its iteration, under the title/series rule.
    scalars = session.scalars()
    assert scalars[("train", "loss")] == [(i, 1.0 / (i + 1)) for i in range(300)]
    assert scalars[("loss", "loss")] == [(i, 2.0 * i) for i in range(300)]
    assert scalars[("val", "acc/top1")] == [(i, i / 300) for i in range(0, 300, 10)]
    assert set(scalars) == {("train", "loss"), ("loss", "loss"), ("val", "acc/top1")}

    task = session.task
    assert task["name"] == "mapping-run" and task["project_name"] == "mapping-proj"
    assert task["type"] == "training"
    assert sorted(task["tags"]) == ["baseline", "team=vision"]
    hp = session.hyperparams()
    assert hp["General"] == {"lr": "0.01", "epochs": "3", "train/bs": "32"}
    assert hp["optimizer"] == {"name": "adam", "betas/b1": "0.9"}
    props = hp["properties"]
    assert props["stage"] == "dev" and props["seed"] == "7"
    assert props["tracelet.run_id"] == exp.id and props["tracelet.project"] == "mapping-proj"
    assert task["status"] == "completed"
    # The repository facts Tracelet recorded (ClearML ran no git of its own).
    assert task["script"]["version_num"] == commit and task["script"]["branch"] == "main"

    # close() wrote the zip; the report names it and the exact command that uploads it.
    assert details["offline"] is True and details["task_id"] == task["id"]
    assert details["offline_session"] == str(session.zip) and session.zip.exists()
    assert {"task.json", "metrics.jsonl"} <= session.zip_names()
    assert session.zip_task()["status"] == "completed"
    command = shlex.split(details["import_command"])
    assert command[:2] == [sys.executable, "-c"]
    assert command[2] == f"from clearml import Task; Task.import_offline_session({str(session.zip)!r})"
    # The command is valid Python that calls ClearML's importer (compiled, not run: it would need a server).
    compile(command[2], "<import_command>", "exec")


def test_logging_times_are_kept(cache_dir: Path) -> None:
    exp = start()
    exp.log_metric_at("loss", 0.5, 3, 1_700_000_000.123)
    exp.log_metric("loss", 0.25, 4)
    report = exp.stop()
    events = OfflineSession.of(cache_dir, report).scalar_events()
    assert [(e["iter"], e["value"]) for e in events] == [(3, 0.5), (4, 0.25)]
    assert events[0]["timestamp"] == 1_700_000_000_123


def test_status_mirrors_the_end_of_the_run(cache_dir: Path) -> None:
    failed = start("crash")
    with pytest.raises(RuntimeError), failed:
        failed.log_metric("x", 1.0, 0)
        raise RuntimeError("training crashed")
    killed = start("killed")
    killed.log_metric("x", 1.0, 0)
    killed.stop(status="KILLED")
    statuses = {
        exp.name: (OfflineSession.of(cache_dir, exp.report).task, OfflineSession.of(cache_dir, exp.report).zip_task())
        for exp in (failed, killed)
    }
    assert statuses["crash"][0]["status"] == statuses["crash"][1]["status"] == "failed"
    assert statuses["killed"][0]["status"] == statuses["killed"][1]["status"] == "stopped"
    assert OfflineSession.of(cache_dir, failed.report).scalars() == {("x", "x"): [(0, 1.0)]}


def test_offline_from_clearml_environment_variable(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    exp = start(config={})
    exp.log_metric("a/b", 1.0, 0)
    report = exp.stop()
    session = OfflineSession.of(cache_dir, report)
    assert report.backends["clearml"].details["offline"] is True
    assert session.scalars() == {("a", "b"): [(0, 1.0)]} and session.zip.exists()


def test_config_block_keys(cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = {
        "clearml": {"offline": True, "project_name": "cm-proj", "task_name": "cm-task", "task_type": "testing"},
        "clearml_bogus_key": 1,
    }
    with caplog.at_level(logging.WARNING, logger="tracelet.clearml"):
        exp = start("tracelet-name", "tracelet-proj", config=config)
    exp.log_metric("m", 1.0, 0)
    report = exp.stop()
    task = OfflineSession.of(cache_dir, report).task
    assert (task["name"], task["project_name"], task["type"]) == ("cm-task", "cm-proj", "testing")
    assert "'bogus_key' is not supported" in caplog.text


def test_a_new_task_per_run_by_default(cache_dir: Path) -> None:
    ids = []
    for _ in range(2):
        exp = start("same-name", "same-proj")
        exp.log_metric("m", 1.0, 0)
        ids.append(exp.stop().backends["clearml"].details["task_id"])
    assert ids[0] != ids[1]
    assert all((cache_dir / "offline" / f"{i}.zip").exists() for i in ids)


def test_bad_task_type_fails_start_with_the_choices() -> None:
    exp = Experiment("r", backend=["clearml"], options={"clearml": {"offline": True, "task_type": "nonsense"}})
    with pytest.raises(ConfigurationError, match="not a ClearML task type.*training"):
        exp.start()


def test_online_without_configuration_says_what_to_do(tmp_path: Path) -> None:
    # A fresh process (ClearML keeps one API session per process): no clearml.conf in the temporary HOME, no
    # credentials. Online mode cannot start, says how to fix it, and contacts nothing on the way.
    code = (
        "import sys\n"
        "net = []\n"
        "sys.addaudithook(lambda ev, args: net.append(ev) if ev in ('socket.connect', 'socket.getaddrinfo') else None)\n"
        "from tracelet.core.experiment import Experiment\n"
        "from tracelet.settings import TraceletSettings\n"
        "exp = Experiment('r', backend=['clearml'], settings=TraceletSettings(track_system=False), options={})\n"
        "try:\n"
        "    exp.start()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "print('network:', net)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "ConfigurationError" in out.stdout and "clearml-init" in out.stdout and "offline" in out.stdout
    assert "network: []" in out.stdout


def test_values_clearml_cannot_hold_never_crash_and_never_read_as_zero(cache_dir: Path) -> None:
    np = pytest.importorskip("numpy")
    exp = start()
    for i, v in enumerate([1.0, math.nan, math.inf, -math.inf, np.float32(2.5), np.int64(3)]):
        exp.log_metric("edge", v, i)
    exp.log_params({"arr": np.float64(0.5), "obj": object, "none": None, "list": [1, 2]})
    report = exp.stop()
    session = OfflineSession.of(cache_dir, report)
    big = sys.float_info.max
    assert session.scalars()[("edge", "edge")] == [(0, 1.0), (2, big), (3, -big), (4, 2.5), (5, 3.0)]
    hp = session.hyperparams()["General"]
    assert hp["arr"] == "0.5" and hp["obj"] == str(object) and hp["list"] == "[1, 2]"


def test_import_does_not_import_clearml() -> None:
    code = (
        "import sys, argparse\n"
        "before = argparse.ArgumentParser.parse_args\n"
        "import tracelet, tracelet_clearml, tracelet_clearml.backend\n"
        "assert 'clearml' not in sys.modules, sorted(m for m in sys.modules if m.startswith('clearml'))\n"
        "assert argparse.ArgumentParser.parse_args is before\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_plugin_is_registered_through_its_entry_point() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="tracelet.backends") if e.name == "clearml"]
    assert ep.value == "tracelet_clearml.backend:ClearMLBackend"


def test_odd_names_never_crash_a_run(cache_dir: Path) -> None:
    exp = start()
    long_name = "x" * 300
    exp.log_params({"a b": 1, "ü": "ö", long_name: 2, "a.b": 3, 7: "int key", "nested": {"": 1, "k/j": 2}})
    exp.set_tags({"k/v": 1, "sp ace": "y", "ü": "ö", long_name: "long"})
    exp.log_metric("héllo wörld/σ", 1.0, 0)
    exp.log_metric(long_name, 2.0, 0)
    report = exp.stop()
    assert report is not None and report.complete and not report.backends["clearml"].errors
    session = OfflineSession.of(cache_dir, report)
    assert session.scalars() == {("héllo wörld", "σ"): [(0, 1.0)], (long_name, long_name): [(0, 2.0)]}
    hp = session.hyperparams()
    assert hp["General"]["a b"] == "1" and hp["General"]["ü"] == "ö" and hp["General"][long_name] == "2"
    assert hp["General"]["7"] == "int key" and hp["General"]["a.b"] == "3"
    props = hp["properties"]
    assert props["sp ace"] == "y" and props["ü"] == "ö" and props[long_name] == "long"


def test_tag_and_param_names_clashing_with_clearmls_arguments_are_delivered(cache_dir: Path) -> None:
    # Such names once made ClearML raise a TypeError on every retry: nothing of the run arrived and stop()
    # waited out its timeout.
    np = pytest.importorskip("numpy")
    settings = TraceletSettings(project="proj", track_system=False, stop_timeout=20)
    exp = Experiment("clash", backend=["clearml"], project="proj", settings=settings, options=OFFLINE).start()
    exp.set_tags({"self": "s", "name": "n", "value": "v", "description": "d"})
    exp.log_params({"self": 1, "opt": {"self": 2}, "lr": np.float64(0.5)})
    exp.log_metric("loss", 1.0, 0)
    report = exp.stop()
    assert report is not None and report.complete and not report.backends["clearml"].errors
    session = OfflineSession.of(cache_dir, report)
    assert session.scalars() == {("loss", "loss"): [(0, 1.0)]}
    hp = session.hyperparams()
    props = hp["properties"]
    assert (props["_self"], props["name"], props["value"], props["description"]) == ("s", "n", "v", "d")
    assert hp["General"]["_self"] == "1" and hp["opt"]["_self"] == "2"
    # A numpy float is recorded as a float, not as "float64".
    assert session.task["hyperparams"]["General"]["lr"]["type"] == "float"


def test_tags_in_the_config_block_join_the_run_tags(cache_dir: Path) -> None:
    exp = start("tagged", config={"clearml": {"offline": "true", "tags": ["from-block"]}}, tags=["baseline"])
    exp.log_metric("m", 1.0, 0)
    report = exp.stop()
    assert sorted(OfflineSession.of(cache_dir, report).task["tags"]) == ["baseline", "from-block"]


def test_summary_values_are_clearml_single_values(cache_dir: Path) -> None:
    exp = start()
    exp.log_metric("loss", 0.5, 3)
    exp.log_summary({"train_runtime": 12.5, "total_flos": 3e9})
    report = exp.stop()
    assert report is not None and report.complete
    scalars = OfflineSession.of(cache_dir, report).scalars()
    # What Logger.report_single_value writes: title "Summary", ClearML's single-value iteration.
    assert scalars[("Summary", "train_runtime")] == [(-(2**31), 12.5)]
    assert scalars[("Summary", "total_flos")] == [(-(2**31), 3e9)]
    assert scalars[("loss", "loss")] == [(3, 0.5)]
