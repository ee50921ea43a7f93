"""`tracelet sync` to the other trackers in their offline modes, read back from the files they wrote.

Each test needs its tracker's Tracelet plugin installed; without it the test is skipped and says which one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tracelet
from tracelet import store
from tracelet.core.contract import discovery
from tracelet.core.plugins import PluginType
from tracelet.exceptions import ConfigurationError


def _require(name: str) -> None:
    try:
        discovery.find(PluginType.BACKEND, name).load()
    except (ConfigurationError, ImportError) as exc:
        pytest.skip(f"the {name} backend plugin is not installed in this environment: {exc}")


def _local_run(runs_dir: Path, points: int = 200) -> store.LocalRun:
    exp = tracelet.Experiment(
        "later",
        backend=["local"],
        project="other-proj",
        settings=tracelet.TraceletSettings(dir=str(runs_dir), track_system=False),
    )
    exp.start()
    exp.log_params({"lr": 0.01})
    for i in range(points):
        exp.log_metric("train/loss", 1.0 / (i + 1), i)
    exp.stop(status="FAILED")
    return store.open_run(exp.id, runs_dir)


@pytest.fixture
def clearml_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith(("CLEARML_", "TRAINS_")):
            monkeypatch.delenv(key)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml-cache"))
    return tmp_path / "clearml-cache"


def test_sync_to_clearml_offline(runs_dir: Path, clearml_cache: Path) -> None:
    _require("clearml")
    from tracelet_testsupport.clearml import OfflineSession

    run = _local_run(runs_dir)
    report = tracelet.sync(run, to="clearml", config={"offline": True})
    res = report.backends["clearml"]
    assert res.complete and res.status == "FAILED" and res.delivered == res.events
    details = run.path / "run.json"
    task_id = store.LocalRun(run.path).meta["sync"]["clearml"]["details"]["task_id"]
    session = OfflineSession(clearml_cache, task_id)
    events = session.scalar_events()
    expected = [(e[3], e[2], int(e[4] * 1000)) for e in run.events() if e[0] == "m"]
    assert [(e["iter"], e["value"], e["timestamp"]) for e in events] == expected  # original steps and times
    assert session.task["status"] == "failed" and session.hyperparams()["General"] == {"lr": "0.01"}
    again = tracelet.sync(run, to="clearml", config={"offline": True})
    assert again.backends["clearml"].skipped == "up to date" and details.exists()
    assert len(OfflineSession(clearml_cache, task_id).scalar_events()) == len(expected)


def test_sync_to_wandb_offline(runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _require("wandb")
    from tracelet_testsupport.wandb import read_run

    for key in list(os.environ):
        if key.startswith("WANDB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for key in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        (tmp_path / key.lower()).mkdir()
        monkeypatch.setenv(key, str(tmp_path / key.lower()))
    run = _local_run(runs_dir)
    report = tracelet.sync(run, to="wandb", config={"mode": "offline"})
    res = report.backends["wandb"]
    assert res.complete and res.status == "FAILED" and res.delivered == res.events, res
    # The run's sync state names the W&B run's transaction log (W&B keeps the WANDB_DIR of its first run in a
    # process, so an earlier test's folder is where a later one writes).
    details = store.open_run(run.id, runs_dir).meta["sync"]["wandb"]["details"]
    wandb_run = read_run(details["transaction_log"])
    assert wandb_run.points("train/loss") == [(e[3], e[2]) for e in run.events() if e[0] == "m"]
    assert wandb_run.user_config()["lr"] == 0.01 and wandb_run.exit is not None
    assert tracelet.sync(run, to="wandb", config={"mode": "offline"}).backends["wandb"].skipped == "up to date"
