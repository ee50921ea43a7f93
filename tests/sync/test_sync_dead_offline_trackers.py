"""A run logging to W&B and ClearML offline whose process is SIGKILLed, then `tracelet sync RUN`: each tracker's
run named in run.json holds every point and ends KILLED.

Neither tracker can reopen an offline run (its folder belongs to the dead process), so `tracelet sync` must give
the run it opens instead the whole journal, not just the events after the live run's last progress checkpoint
(which would leave that run without the params and the first points). Read back from the files the trackers
wrote, no mocks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tracelet
from tracelet import store
from tracelet.core.contract import discovery
from tracelet.core.plugins import PluginType
from tracelet.exceptions import ConfigurationError

STEPS = 3000

CHILD = textwrap.dedent(
    f"""
    import os, signal, sys, time, tracelet
    from tracelet import store
    exp = tracelet.start_logging("doomed", project="dead-offline", backend=["wandb", "clearml"],
                                 config={{"track_system": False, "wandb": {{"mode": "offline"}},
                                          "clearml": {{"offline": True}}}})
    exp.log_params({{"lr": 0.01}})
    for i in range({STEPS}):
        exp.log_metric("loss", 1.0 / (i + 1), i)
    # Long enough for the backends to take everything and for a progress checkpoint (every 2 s) to record it.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = store.open_run(exp.id).meta.get("progress") or {{}}
        if min(progress.get("wandb", 0), progress.get("clearml", 0)) >= {STEPS} + 1:
            break
        time.sleep(0.2)
    print(exp.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _require(*names: str) -> None:
    for name in names:
        try:
            discovery.find(PluginType.BACKEND, name).load()
        except (ConfigurationError, ImportError) as exc:
            pytest.skip(f"the {name} backend plugin is not installed in this environment: {exc}")


@pytest.fixture
def offline_env(tmp_path: Path, python_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """W&B and ClearML offline with every folder they write to inside the test's folder, for the child and here."""
    env = {k: v for k, v in python_env.items() if not k.startswith(("WANDB_", "CLEARML_", "TRAINS_"))}
    (tmp_path / "home").mkdir()
    env.update(
        HOME=str(tmp_path / "home"),
        CLEARML_CACHE_DIR=str(tmp_path / "clearml-cache"),
        TRACELET_DIR=str(tmp_path / "runs"),
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        NETRC=str(tmp_path / "no-netrc"),
    )
    for key in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        (tmp_path / key.lower()).mkdir()
        env[key] = str(tmp_path / key.lower())
    for key in list(os.environ):
        if key.startswith(("WANDB_", "CLEARML_", "TRAINS_", "TRACELET_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(("WANDB_", "CLEARML_", "TRACELET_")) or key in ("HOME", "NETRC"):
            monkeypatch.setenv(key, value)
    return env


def test_a_dead_run_is_synced_whole_into_trackers_that_cannot_reopen_it(
    tmp_path: Path, offline_env: dict[str, str]
) -> None:
    _require("wandb", "clearml")
    from tracelet_testsupport.clearml import OfflineSession
    from tracelet_testsupport.wandb import read_run

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=offline_env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    run = store.open_run(proc.stdout.strip().splitlines()[-1], tmp_path / "runs")  # ClearML prints too
    assert run.dead and run.status == "KILLED"
    checkpoint = run.meta["progress"]
    assert min(checkpoint["wandb"], checkpoint["clearml"]) > 0  # the live runs got somewhere before the kill
    live_wandb = run.meta["backend_runs"]["wandb"]["run_id"]

    report = tracelet.sync(run)  # no --to: the run's own backends are finished
    assert report.status == "KILLED"
    total = len(list(run.events()))
    for name in ("wandb", "clearml"):
        res = report.backends[name]
        assert res.complete and res.status == "KILLED", res
        assert res.delivered == total  # the new run got the whole journal, not the tail after the checkpoint
    expected = [(e[3], e[2]) for e in run.events() if e[0] == "m"]
    assert len(expected) == STEPS

    synced = store.open_run(run.id, tmp_path / "runs").meta["sync"]
    wandb_run = read_run(synced["wandb"]["details"]["transaction_log"])
    assert wandb_run.run.run_id != live_wandb  # offline, W&B cannot reopen the dead run's folder
    assert wandb_run.points("loss") == expected
    assert wandb_run.user_config()["lr"] == 0.01 and wandb_run.exit_code == 255  # KILLED

    session = OfflineSession(Path(offline_env["CLEARML_CACHE_DIR"]), synced["clearml"]["details"]["task_id"])
    assert session.scalars()[("loss", "loss")] == expected
    assert session.hyperparams()["General"] == {"lr": "0.01"}
    assert session.task["status"] == "stopped" and session.zip.exists()  # KILLED, and importable

    again = tracelet.sync(run)  # nothing twice
    assert again.backends == {} or all(b.skipped == "up to date" for b in again.backends.values())
    assert len(OfflineSession(session.folder.parent.parent, session.task_id).scalars()[("loss", "loss")]) == STEPS
