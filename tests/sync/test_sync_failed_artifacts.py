"""An artifact a backend failed to take during the live run (the tracker was down at that moment) is not lost:
run.json keeps its token, `tracelet runs` counts it behind, and `tracelet sync RUN` sends it into the same
backend run, once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

import tracelet
from tracelet import cli, store
from tracelet.core.engine import journal
from tracelet.exceptions import ConfigurationError
from tracelet.plugin import hookimpl
from tracelet_testplugin.backends import RecorderBackend, record_for
from tracelet_testsupport.mlflow import MlflowServer
from tracelet_testsupport.sync import expected, history, mlflow_runs

# run id -> uploads `flaky` failed, across its instances (the live run's and each sync's, in this process).
ARTIFACT_FAILURES: dict[str, int] = {}
_lock = threading.Lock()


class FlakyArtifacts(RecorderBackend):
    """Records everything; fails the first `artifact_fail_times` artifact uploads of a run (an outage)."""

    label = "flaky"

    @hookimpl
    def backend_log_artifact(self, artifact: Any, snapshot: dict[str, Any] | None) -> dict[str, Any]:
        run_id = self.rec["run"].run_id
        with _lock:
            failed = ARTIFACT_FAILURES.get(run_id, 0)
            fail = failed < int(self.rec["config"]["artifact_fail_times"])
            if fail:
                ARTIFACT_FAILURES[run_id] = failed + 1
        if fail:
            raise ConnectionError("flaky artifact store")
        return super().backend_log_artifact(artifact, snapshot)


class RefusingArtifacts(RecorderBackend):
    """Refuses every artifact for good (ConfigurationError), as a tracker that cannot take that kind would."""

    label = "refusing"

    @hookimpl
    def backend_log_artifact(self, artifact: Any, snapshot: dict[str, Any] | None) -> dict[str, Any]:
        self.rec["artifact_attempts"] = self.rec.get("artifact_attempts", 0) + 1
        raise ConfigurationError("this tracker takes no artifacts of this kind")


@pytest.fixture
def flaky() -> Iterator[None]:
    tracelet.register_plugin(FlakyArtifacts, "flaky", replace=True)  # the installed `flaky` fails metrics
    yield
    tracelet.unregister_plugin("flaky")


def _meta(run_dir: Path) -> dict:
    return json.loads((run_dir / journal.META_FILE).read_text())


def test_artifact_failed_live_is_delivered_by_sync_and_counted_behind_until_then(
    runs_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, flaky: None
) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 64)
    settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False)
    # `flaky` fails the first 3 uploads of this run (the live run's 3 attempts).
    exp = tracelet.Experiment(
        "flaky-art",
        backend=["local", "flaky"],
        project="fa-proj",
        settings=settings,
        options={"flaky_artifact_fail_times": 3},
    ).start()
    exp.log_metric("loss", 1.0, 0)
    result = exp.log_artifact(str(weights), wait=True)["flaky"]
    assert result.status == "failed" and "flaky artifact store" in (result.error or "")
    assert f"tracelet sync {exp.id}" in (result.error or "")  # says how it is delivered later
    exp.log_metric("loss", 2.0, 1)
    report = exp.stop()
    assert report is not None and report.backends["flaky"].undelivered == 0  # the worker moved past it
    assert ARTIFACT_FAILURES[exp.id] == 3
    (token,) = _meta(exp.run_dir)["delivery"]["flaky"]["failed_artifacts"]
    run = store.open_run(exp.id, runs_dir)
    assert run.behind() == {"flaky": 1}
    assert cli.main(["runs", "--dir", str(runs_dir)]) == 0
    assert "flaky: 1 behind" in capsys.readouterr().out

    res = tracelet.sync(exp.id, dir=runs_dir).backends["flaky"]
    assert res.complete and res.skipped is None and res.delivered == 0  # no event again, only the artifact
    rec = record_for(exp.id, "flaky")
    assert [a.name for a in rec["artifacts"]] == ["weights.bin"]
    assert rec["artifact_contents"] == [{"weights.bin": b"w" * 64}]
    assert rec["metrics"] == []  # the metrics reached the live run; none is sent twice
    assert token in _meta(exp.run_dir)["sync"]["flaky"]["artifacts"]
    assert store.open_run(exp.id, runs_dir).behind() == {}

    again = tracelet.sync(exp.id, dir=runs_dir)
    assert again.backends == {}  # nothing left over
    again = tracelet.sync(exp.id, to="flaky", dir=runs_dir)
    assert again.backends["flaky"].skipped == "up to date"
    assert len(record_for(exp.id, "flaky")["artifacts"]) == 1


def test_artifact_that_fails_again_on_sync_stays_pending_for_the_next(
    runs_dir: Path, tmp_path: Path, flaky: None
) -> None:
    weights = tmp_path / "w.txt"
    weights.write_text("w")
    settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False)
    # 6 failures: the live run's 3 attempts and the first sync's 3; the second sync's upload lands.
    exp = tracelet.Experiment(
        "flaky-twice",
        backend=["local", "flaky"],
        project="fa-proj",
        settings=settings,
        options={"flaky_artifact_fail_times": 6},
    ).start()
    exp.log_artifact(str(weights), wait=True)
    exp.stop()

    first = tracelet.sync(exp.id, dir=runs_dir).backends["flaky"]
    assert not first.complete and "failed again" in (first.error or "")
    assert ARTIFACT_FAILURES[exp.id] == 6
    assert store.open_run(exp.id, runs_dir).behind() == {"flaky": 1}

    second = tracelet.sync(exp.id, dir=runs_dir).backends["flaky"]
    assert second.complete and second.error is None
    assert [a.name for a in record_for(exp.id, "flaky")["artifacts"]] == ["w.txt"]
    assert store.open_run(exp.id, runs_dir).behind() == {}


def test_artifact_logged_while_the_mlflow_server_was_down_lands_in_the_same_run_on_sync(
    down_server: MlflowServer, runs_dir: Path, tmp_path: Path
) -> None:
    report_file = tmp_path / "report.txt"
    report_file.write_text("accuracy 0.93\n")
    down_server.start()
    settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False)
    exp = tracelet.Experiment(
        "art-outage",
        backend=["local", "mlflow"],
        project="art-proj",
        settings=settings,
        options={"mlflow_tracking_uri": down_server.uri, "mlflow_stop_timeout": 1},
    ).start()
    for i in range(100):
        exp.log_metric("loss", float(i), i)
    assert exp.flush(timeout=60)
    down_server.kill()
    result = exp.log_artifact(str(report_file), wait=120)["mlflow"]
    assert result.status == "failed" and f"tracelet sync {exp.id}" in (result.error or "")
    for i in range(100, 200):
        exp.log_metric("loss", float(i), i)
    report = exp.stop()
    mlflow_run = report.backends["mlflow"].details["run_id"]
    assert len(_meta(exp.run_dir)["delivery"]["mlflow"]["failed_artifacts"]) == 1

    down_server.start()
    res = tracelet.sync(exp.id, dir=runs_dir).backends["mlflow"]
    assert res.complete and res.run_id == mlflow_run
    (mlrun,) = mlflow_runs(down_server.uri, "art-proj", exp.id)
    assert mlrun.info.run_id == mlflow_run and mlrun.info.status == "FINISHED"
    client = MlflowClient(down_server.uri)
    paths = [a.path for a in client.list_artifacts(mlflow_run, "report.txt")] or [
        a.path for a in client.list_artifacts(mlflow_run)
    ]
    assert any(p.startswith("report.txt") for p in paths), paths
    assert history(down_server.uri, mlflow_run, "loss") == expected(exp.run_dir, "loss")  # each point once
    assert len(history(down_server.uri, mlflow_run, "loss")) == 200
    assert store.open_run(exp.id, runs_dir).behind() == {}

    assert tracelet.sync(exp.id, dir=runs_dir).backends == {}  # a second sync delivers nothing
    assert len(history(down_server.uri, mlflow_run, "loss")) == 200


def test_artifact_refused_for_good_is_not_kept_for_a_later_sync(runs_dir: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.txt"
    weights.write_text("w")
    tracelet.register_plugin(RefusingArtifacts, "refusing-art")
    try:
        settings = tracelet.TraceletSettings(dir=str(runs_dir), track_system=False)
        exp = tracelet.Experiment(
            "refused", backend=["local", "refusing-art"], project="fa-proj", settings=settings
        ).start()
        result = exp.log_artifact(str(weights), wait=True)["refusing-art"]
        assert result.status == "failed" and "tracelet sync" not in (result.error or "")  # resending cannot help
        exp.stop()
        assert record_for(exp.id, "refusing")["artifact_attempts"] == 1  # permanent: tried once
        assert "failed_artifacts" not in _meta(exp.run_dir)["delivery"]["refusing-art"]
        assert store.open_run(exp.id, runs_dir).behind() == {}
        assert tracelet.sync(exp.id, dir=runs_dir).backends == {}
    finally:
        tracelet.unregister_plugin("refusing-art")


class ArtDown(RecorderBackend):
    """What the dead run's `artdown` backend becomes for the sync: a tracker that is up again."""

    label = "artdown"


DYING = """
import json, os, signal, sys, time
import tracelet
from tracelet.plugin import hookimpl


class Down:
    @hookimpl
    def backend_log_metrics(self, metrics):
        pass

    @hookimpl
    def backend_log_artifact(self, artifact, snapshot):
        raise ConnectionError("artifact store down")


tracelet.register_plugin(Down, name="artdown")
settings = tracelet.TraceletSettings(dir=sys.argv[1], track_system=False, track_env=False)
exp = tracelet.Experiment("dead-art", backend=["local", "artdown"], settings=settings).start()
exp.log_metric("loss", 1.0, 0)
exp.log_artifact(sys.argv[2], wait=True)
exp.log_metric("loss", 2.0, 1)
meta = exp.run_dir / "run.json"
deadline = time.monotonic() + 20
while time.monotonic() < deadline:  # the next progress checkpoint carries the failed artifact
    if "artdown" in (json.loads(meta.read_text()).get("failed_artifacts") or {}):
        break
    time.sleep(0.1)
print(exp.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_artifact_failed_before_the_process_died_is_delivered_by_sync(
    runs_dir: Path, tmp_path: Path, python_env: dict[str, str]
) -> None:
    import subprocess
    import sys

    payload = tmp_path / "notes.txt"
    payload.write_text("kept\n")
    out = subprocess.run(
        [sys.executable, "-c", DYING, str(runs_dir), str(payload)],
        capture_output=True,
        text=True,
        env=python_env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == -9, out.stderr
    run_id = out.stdout.split()[-1]
    run = store.open_run(run_id, runs_dir)
    assert run.dead and run.behind().get("artdown", 0) >= 1  # the artifact counts behind, though the process died

    tracelet.register_plugin(ArtDown, "artdown", replace=True)
    try:
        res = tracelet.sync(run_id, dir=runs_dir).backends["artdown"]
    finally:
        tracelet.unregister_plugin("artdown")
    assert res.complete and res.status == "KILLED", res
    rec = record_for(run_id, "artdown")
    assert [a.name for a in rec["artifacts"]] == ["notes.txt"]
    assert rec["artifact_contents"] == [{"notes.txt": b"kept\n"}]
    assert store.open_run(run_id, runs_dir).behind() == {}
