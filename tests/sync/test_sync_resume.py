"""`tracelet sync` after deaths: a sync SIGKILLed halfway resumes exactly once; a run whose process died is synced KILLED."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tracelet
from tracelet import cli, store
from tracelet.core.engine import journal
from tracelet_testsupport.sync import expected, history, local_run, mlflow_runs, to_mlflow

# The sync in a child whose MLflow store takes 1.5 s per metrics batch (a slow tracker): the signal below lands
# while batches remain however long a loaded machine keeps the test from seeing the first checkpoint (with the
# store at full speed the child could finish all 4 batches before the signal, and exit 0 instead of 130).
SYNC_CHILD = textwrap.dedent(
    """
    import sys, time
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    original = SqlAlchemyStore.log_batch

    def slow_log_batch(self, run_id, metrics, params, tags):
        if metrics:
            time.sleep(1.5)
        return original(self, run_id, metrics, params, tags)

    SqlAlchemyStore.log_batch = slow_log_batch
    from tracelet.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_a_sync_killed_halfway_resumes_and_delivers_each_point_once(
    runs_dir: Path, sqlite_uri: str, python_env: dict[str, str], sig: signal.Signals
) -> None:
    run = local_run(runs_dir, "big", 40_000)  # 4 batches of the worker: killed after the first (a wide window)
    meta_path = run.path / journal.META_FILE
    args = [sys.executable, "-c", SYNC_CHILD, "sync", run.id, *to_mlflow(runs_dir, sqlite_uri)]
    proc = subprocess.Popen(args, env=python_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cursor, deadline = 0, time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        entry = (json.loads(meta_path.read_text()).get("sync") or {}).get("mlflow") or {}
        cursor = int(entry.get("cursor") or 0)
        if cursor > 0 and entry.get("run_id"):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the sync ended before it could be killed: {proc.stderr.read()!r}"
    assert cursor > 0, "the sync recorded no delivered batch within 120 s"
    proc.send_signal(sig)
    code = proc.wait(timeout=30)
    if sig == signal.SIGINT:  # Ctrl-C: the command stops delivering, keeps its place and says so
        assert code == 130 and b"run it again to resume" in proc.stderr.read()
    entry = json.loads(meta_path.read_text())["sync"]["mlflow"]
    total = state_total = entry["events"]
    assert 0 < entry["cursor"] < total and entry["ended"] is False
    assert store.open_run(run.id, runs_dir).behind() == {"mlflow": total - entry["cursor"]}

    resumed = tracelet.sync(run.id, to="mlflow", config={"tracking_uri": sqlite_uri}, dir=runs_dir)
    res = resumed.backends["mlflow"]
    assert res.complete and res.run_id == entry["run_id"]
    assert res.delivered == state_total - entry["cursor"]  # from the recorded cursor, not from the start
    (mlrun,) = mlflow_runs(sqlite_uri, "sync-proj", run.id)
    assert mlrun.info.status == "FINISHED"
    assert history(sqlite_uri, res.run_id, "loss") == expected(run.path, "loss")
    assert history(sqlite_uri, res.run_id, "val/acc") == expected(run.path, "val/acc")
    assert mlrun.data.params == {"lr": "0.01", "layers": "3"}


def test_a_cursor_is_proven_before_it_is_written_so_a_ctrl_c_between_keeps_it(tmp_path: Path) -> None:
    """Ctrl-C is handled on the main thread while a worker thread records a confirmed cursor: whatever the
    interrupted sync then records (`confirmed_at`) must be at least what run.json already says."""
    from tracelet.transfer.sync import JournalSource, SyncState

    written: list[tuple[int, int]] = []  # (cursor written to run.json, what a cancel would record right then)

    class Recording(SyncState):
        def update(self, name: str, **fields: object) -> None:
            if "cursor" in fields:
                written.append((int(fields["cursor"]), source.confirmed_at))  # type: ignore[call-overload]
            super().update(name, **fields)

    source = JournalSource(tmp_path, "run", 100, "mlflow", Recording(tmp_path, {}))
    source.confirmed(40)
    source.confirmed(100)
    assert written == [(40, 40), (100, 100)]
    assert json.loads((tmp_path / journal.META_FILE).read_text())["sync"]["mlflow"]["cursor"] == 100


CHILD = textwrap.dedent(
    """
    import json, sys, time, tracelet
    exp = tracelet.start_logging("doomed", project="dead-proj", backend=sys.argv[2:],
                                 config={"track_system": False, "mlflow_tracking_uri": sys.argv[1]})
    exp.log_params({"seed": 7})
    for i in range(4000):
        exp.log_metric("x", float(i), i)
    exp.flush(timeout=60)
    deadline = time.monotonic() + 30  # the run records how far each backend got every couple of seconds
    while time.monotonic() < deadline:
        progress = json.loads((exp.run_dir / "run.json").read_text()).get("progress") or {}
        if progress and min(progress.values()) >= 4001:
            break
        time.sleep(0.1)
    print("logged", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("live_backends", [["local"], ["local", "mlflow"]], ids=["local-only", "with-mlflow"])
def test_a_child_killed_mid_run_is_shown_dead_then_synced_killed(
    tmp_path: Path,
    sqlite_uri: str,
    python_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    live_backends: list[str],
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), sqlite_uri, *live_backends],
        cwd=tmp_path,
        env=python_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "logged"
    runs_dir = tmp_path / "tracelet-runs"
    (alive,) = store.list_runs(runs_dir)
    assert alive.status == "RUNNING" and not alive.dead
    with pytest.raises(tracelet.TraceletException, match="still running"):
        tracelet.sync(alive, to="mlflow", config={"tracking_uri": sqlite_uri})
    proc.kill()
    proc.wait(timeout=10)

    (run,) = store.list_runs(runs_dir)
    assert run.meta["status"] == "RUNNING"  # nobody could record the end...
    assert run.status == "KILLED" and run.dead  # ...but its owner is gone, and readers say so
    assert cli.main(["show", run.id, "--dir", str(runs_dir)]) == 0
    assert "KILLED (process died)" in capsys.readouterr().out
    live_mlflow = "mlflow" in live_backends
    total = len(list(run.events()))
    assert cli.main(["runs", "--dir", str(runs_dir)]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert str(total) in row.split("(process died)")[1].split()  # EVENTS counted from the journal
    if live_mlflow:
        before = run.meta["backend_runs"]["mlflow"]["run_id"]
        checkpoint = run.meta["progress"]["mlflow"]
        assert 4001 <= checkpoint <= total  # how far the live run got, as of its last checkpoint
        assert run.behind() == {"mlflow": total - checkpoint}
        report = tracelet.sync(run, dir=runs_dir)  # finishes its own MLflow run, in place
        assert report.backends["mlflow"].delivered == total - checkpoint  # from the checkpoint, not from 0
    else:
        assert run.behind() == {}
        report = tracelet.sync(run, to="mlflow", config={"tracking_uri": sqlite_uri})
    res = report.backends["mlflow"]
    assert report.status == "KILLED" and res.complete and res.status == "KILLED"
    (mlrun,) = mlflow_runs(sqlite_uri, "dead-proj", run.id)
    if live_mlflow:
        assert mlrun.info.run_id == before
    assert mlrun.info.status == "KILLED"
    assert history(sqlite_uri, mlrun.info.run_id, "x") == expected(run.path, "x")
    assert len(expected(run.path, "x")) == 4000
    assert mlrun.data.params["seed"] == "7"
