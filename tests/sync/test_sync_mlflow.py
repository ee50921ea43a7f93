"""`tracelet sync` into real MLflow stores: a run made while the server was down, twice, killed halfway, dead runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow_helpers import MlflowServer, journal_metrics

import tracelet
from tracelet import cli, store
from tracelet.core import journal


def _mlflow_runs(uri: str, project: str, run_id: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(project)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], filter_string=f"tags.`tracelet.run_id` = '{run_id}'")


def _history(uri: str, mlflow_run: str, name: str) -> list[tuple[float, int, int]]:
    points = MlflowClient(uri).get_metric_history(mlflow_run, name)
    return sorted(((m.value, m.step, m.timestamp) for m in points), key=lambda t: (t[1], t[2]))


def _expected(run_dir: Path, name: str) -> list[tuple[float, int, int]]:
    return sorted(((v, s, int(ts * 1000)) for _, n, v, s, ts in journal_metrics(run_dir) if n == name),
                  key=lambda t: (t[1], t[2]))


def _local_run(runs_dir: Path, name: str, points: int, project: str = "sync-proj") -> store.LocalRun:
    exp = tracelet.Experiment(name, backend=["local"], project=project,
                              settings=tracelet.TraceletSettings(dir=str(runs_dir), track_system=False))
    exp.start()
    exp.log_params({"lr": 0.01, "layers": 3})
    exp.set_tags({"team": "vision"})
    for i in range(points):
        exp.log_metric("loss", 1.0 / (i + 1), i)
        if i % 10 == 0:
            exp.log_metric("val/acc", i / points, i * 100)  # a second step scale
    exp.stop()
    return store.open_run(exp.id, runs_dir)


def test_run_logged_while_the_server_was_down_is_finished_in_place_once_it_is_up(
    down_server: MlflowServer, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False, start_timeout=0.5)
    exp = tracelet.Experiment("outage", backend=["local", "mlflow"], project="down-proj", settings=settings,
                              options={"mlflow_tracking_uri": down_server.uri, "mlflow_stop_timeout": 1})
    exp.start()
    exp.log_params({"lr": 0.1})
    exp.set_tags({"phase": "pretrain"})
    for i in range(3000):
        exp.log_metric("loss", 1.0 / (i + 1), i)
    report = exp.stop()
    assert report is not None and report.backends["mlflow"].undelivered == report.events > 3000

    assert cli.main(["runs", "--dir", str(runs_dir)]) == 0
    assert f"mlflow: {report.events:,} behind" in capsys.readouterr().out
    assert store.open_run(exp.id, runs_dir).behind() == {"mlflow": report.events}

    down_server.start()
    assert cli.main(["sync", exp.id, "--dir", str(runs_dir)]) == 0  # no --to: the run's own backend
    (mlrun,) = _mlflow_runs(down_server.uri, "down-proj", exp.id)
    assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == "outage"
    assert _history(down_server.uri, mlrun.info.run_id, "loss") == _expected(exp.run_dir, "loss")
    assert mlrun.data.params["lr"] == "0.1" and mlrun.data.tags["phase"] == "pretrain"
    assert store.open_run(exp.id, runs_dir).behind() == {}
    capsys.readouterr()
    assert cli.main(["runs", "--dir", str(runs_dir)]) == 0
    assert "behind" not in capsys.readouterr().out.split("\n", 1)[1]

    # Once more: up to date, nothing delivered twice.
    again = tracelet.sync(exp.id, dir=runs_dir)
    assert again.backends == {}
    again = tracelet.sync(exp.id, to="mlflow", dir=runs_dir)
    assert again.backends["mlflow"].skipped == "up to date" and again.backends["mlflow"].delivered == 0
    assert len(_mlflow_runs(down_server.uri, "down-proj", exp.id)) == 1
    assert len(_history(down_server.uri, mlrun.info.run_id, "loss")) == 3000


def test_sync_to_a_new_store_twice_delivers_everything_once(runs_dir: Path, sqlite_uri: str, tmp_path: Path) -> None:
    exp = tracelet.Experiment("arts", backend=["local"], project="art-proj",
                              settings=tracelet.TraceletSettings(dir=str(runs_dir), track_system=False))
    exp.start()
    for i in range(500):
        exp.log_metric("loss", float(i), i)
    weights = tmp_path / "weights.txt"
    weights.write_text("w1")
    exp.log_artifact(str(weights))
    weights.write_text("changed after logging")  # the stored snapshot is what syncs
    exp.stop()

    first = tracelet.sync(exp.id, to=["mlflow"], config={"tracking_uri": sqlite_uri}, dir=runs_dir)
    res = first.backends["mlflow"]
    assert res.complete and res.delivered == res.events and res.status == "FINISHED"
    second = tracelet.sync(exp.id, to="mlflow", config={"tracking_uri": sqlite_uri}, dir=runs_dir)
    assert second.backends["mlflow"].skipped == "up to date"

    (mlrun,) = _mlflow_runs(sqlite_uri, "art-proj", exp.id)
    assert mlrun.info.run_id == res.run_id
    assert _history(sqlite_uri, res.run_id, "loss") == _expected(exp.run_dir, "loss")
    client = MlflowClient(sqlite_uri)
    top = [f.path for f in client.list_artifacts(res.run_id)]
    assert "weights.txt" in top, top
    versions = [f.path for f in client.list_artifacts(res.run_id, "weights.txt")]
    assert versions == ["weights.txt/v1"]  # not stored again by the second sync
    got = client.download_artifacts(res.run_id, "weights.txt/v1/files/weights.txt", str(tmp_path / "dl"))
    assert Path(got).read_text() == "w1"
    entry = json.loads((exp.run_dir / "run.json").read_text())["sync"]["mlflow"]
    assert entry["run_id"] == res.run_id and entry["cursor"] == res.events and entry["ended"] is True
    assert entry["config"] == {"tracking_uri": sqlite_uri}


SYNC_CHILD = "from tracelet.cli import main; import sys; sys.exit(main(sys.argv[1:]))"


def test_a_sync_killed_halfway_resumes_and_delivers_each_point_once(
    runs_dir: Path, sqlite_uri: str, python_env: dict[str, str]
) -> None:
    run = _local_run(runs_dir, "big", 60_000)
    meta_path = run.path / journal.META_FILE
    args = [sys.executable, "-c", SYNC_CHILD, "sync", run.id, "--dir", str(runs_dir), "--to", "mlflow",
            "--config", f"tracking_uri={sqlite_uri}"]
    proc = subprocess.Popen(args, env=python_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cursor, deadline = 0, time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        entry = (json.loads(meta_path.read_text()).get("sync") or {}).get("mlflow") or {}
        cursor = int(entry.get("cursor") or 0)
        if cursor > 0 and entry.get("run_id"):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the sync ended before it could be killed: {proc.stderr.read()!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    entry = json.loads(meta_path.read_text())["sync"]["mlflow"]
    total = state_total = entry["events"]
    assert 0 < entry["cursor"] < total and entry["ended"] is False
    assert store.open_run(run.id, runs_dir).behind() == {"mlflow": total - entry["cursor"]}

    resumed = tracelet.sync(run.id, to="mlflow", config={"tracking_uri": sqlite_uri}, dir=runs_dir)
    res = resumed.backends["mlflow"]
    assert res.complete and res.run_id == entry["run_id"]
    assert res.delivered == state_total - entry["cursor"]  # from the recorded cursor, not from the start
    (mlrun,) = _mlflow_runs(sqlite_uri, "sync-proj", run.id)
    assert mlrun.info.status == "FINISHED"
    assert _history(sqlite_uri, res.run_id, "loss") == _expected(run.path, "loss")
    assert _history(sqlite_uri, res.run_id, "val/acc") == _expected(run.path, "val/acc")
    assert mlrun.data.params == {"lr": "0.01", "layers": "3"}


CHILD = textwrap.dedent(
    """
    import sys, time, tracelet
    exp = tracelet.start_logging("doomed", project="dead-proj", backend=sys.argv[2:],
                                 config={"track_system": False, "mlflow_tracking_uri": sys.argv[1]})
    exp.log_params({"seed": 7})
    for i in range(4000):
        exp.log_metric("x", float(i), i)
    exp.flush(timeout=60)
    print("logged", flush=True)
    time.sleep(120)
    """
)


@pytest.mark.parametrize("live_backends", [["local"], ["local", "mlflow"]], ids=["local-only", "with-mlflow"])
def test_a_child_killed_mid_run_is_shown_dead_then_synced_killed(
    tmp_path: Path, sqlite_uri: str, python_env: dict[str, str], capsys: pytest.CaptureFixture[str],
    live_backends: list[str],
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), sqlite_uri, *live_backends], cwd=tmp_path, env=python_env,
                            stdout=subprocess.PIPE, text=True)
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
    if live_mlflow:
        before = run.meta["backend_runs"]["mlflow"]["run_id"]
        assert run.behind() == {"mlflow": len(list(run.events()))}  # how far it got live is unknown
        report = tracelet.sync(run, dir=runs_dir)  # finishes its own MLflow run, in place
    else:
        assert run.behind() == {}
        report = tracelet.sync(run, to="mlflow", config={"tracking_uri": sqlite_uri})
    res = report.backends["mlflow"]
    assert report.status == "KILLED" and res.complete and res.status == "KILLED"
    (mlrun,) = _mlflow_runs(sqlite_uri, "dead-proj", run.id)
    if live_mlflow:
        assert mlrun.info.run_id == before
    assert mlrun.info.status == "KILLED"
    assert _history(sqlite_uri, mlrun.info.run_id, "x") == _expected(run.path, "x")
    assert len(_expected(run.path, "x")) == 4000
    assert mlrun.data.params["seed"] == "7"


def test_dry_run_says_what_would_go_where_and_delivers_nothing(
    runs_dir: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _local_run(runs_dir, "dry", 50)
    code = cli.main(["sync", "--all", "--dir", str(runs_dir), "--to", "mlflow", "--config",
                     f"tracking_uri={sqlite_uri}", "--dry-run"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"{run.id} (dry, FINISHED): mlflow <- " in out and "from #0 into a new run" in out
    assert "sync" not in json.loads((run.path / "run.json").read_text())
    assert not os.path.exists(sqlite_uri.removeprefix("sqlite:///")) or not _mlflow_runs(sqlite_uri, "sync-proj", run.id)


def test_selection_and_clear_errors(runs_dir: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    a = _local_run(runs_dir, "a", 10, project="p1")
    _local_run(runs_dir, "b", 10, project="p2")
    assert cli.main(["sync", "--project", "p1", "--dir", str(runs_dir), "--to", "mlflow", "--config",
                     f"tracking_uri={sqlite_uri}"]) == 0
    assert len(_mlflow_runs(sqlite_uri, "p1", a.id)) == 1
    assert MlflowClient(sqlite_uri).get_experiment_by_name("p2") is None
    assert cli.main(["sync", "--dir", str(runs_dir), "--to", "mlflow"]) == 1
    assert "--all, --project or --since" in capsys.readouterr().err
    assert cli.main(["sync", a.id, "--dir", str(runs_dir), "--to", "local"]) == 1
    assert "synced from" in capsys.readouterr().err
    assert cli.main(["sync", a.id, "--dir", str(runs_dir), "--to", "nosuchtracker"]) == 1
    assert "unknown backend 'nosuchtracker'" in capsys.readouterr().err
    assert cli.main(["sync", "--since", "yesterday-ish", "--dir", str(runs_dir), "--to", "mlflow"]) == 1
    assert "--since" in capsys.readouterr().err
    assert cli.main(["sync", "--since", "1h", "--project", "p2", "--dir", str(runs_dir), "--to", "mlflow",
                     "--config", f"tracking_uri={sqlite_uri}", "--dry-run"]) == 0
    assert "(b, FINISHED)" in capsys.readouterr().out
