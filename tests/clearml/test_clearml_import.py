"""`tracelet import --from clearml`: an offline session written by ClearML's own client (no Tracelet involved, in a
child process like a user's script) comes back point for point with hyperparameter sections, user properties,
tags and an artifact; the folder and the zip are the same run; a second import writes nothing; and
ClearML -> journal -> MLflow lands every point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tracelet
from tracelet import store
from tracelet.core.engine import journal
from tracelet_testsupport.clearml import OfflineSession

ITERATIONS = 100
SERIES = [("train", "loss"), ("train", "acc"), ("lr", "lr"), ("val", "acc/top1")]  # several titles and series

WRITER = f"""
import json, sys
from clearml import Task
from clearml.config import ConfigWrapper

ConfigWrapper.set_overrides({{"sdk": {{"development": {{"report_use_subprocess": False}}}}}})
Task.set_offline(True)
task = Task.init(project_name="cmproj", task_name="native", auto_connect_frameworks=False,
                 auto_resource_monitoring=False, auto_connect_streams=False, reuse_last_task_id=False)
task.connect({{"lr": 0.01, "layers": 3}}, name="General")
task.connect({{"depth": 4, "act": "relu"}}, name="Model")
task.connect({{"name": "cifar", "shuffle": True}}, name="Data")
task.set_user_properties(owner="ada", stage="pretrain")
task.add_tags(["baseline"])
logger = task.get_logger()
for i in range({ITERATIONS}):
    for k, (title, series) in enumerate({SERIES!r}):
        logger.report_scalar(title, series, (k + 1) / (i + 1), iteration=i * 10)
task.upload_artifact("notes", artifact_object=sys.argv[1], wait_on_upload=True)
task.close()
print(json.dumps({{"task_id": task.id}}))
"""


def _native_session(tmp_path: Path) -> OfflineSession:
    notes = tmp_path / "notes.txt"
    notes.write_text("from clearml\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "CLEARML_PROC"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run(
        [sys.executable, "-c", WRITER, str(notes)], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    task_id = json.loads(out.stdout.strip().splitlines()[-1])["task_id"]
    return OfflineSession(Path(os.environ["CLEARML_CACHE_DIR"]), task_id)


def test_import_a_clearml_offline_session_then_sync_it_to_mlflow(tmp_path: Path) -> None:
    session = _native_session(tmp_path)
    runs_dir = tmp_path / "runs"
    (result,) = tracelet.import_runs(session.folder, source="clearml", dir=runs_dir)
    assert result.error is None
    run = store.LocalRun(result.path)
    expected: dict[str, list[tuple[int, float, int]]] = {}
    for ev in session.scalar_events():
        name = ev["metric"] if ev["variant"] == ev["metric"] else f"{ev['metric']}/{ev['variant']}"
        expected.setdefault(name, []).append((ev["iter"], ev["value"], ev["timestamp"]))
    got = {
        name: [(p.step, p.value, round(p.timestamp * 1000)) for p in points] for name, points in run.metrics().items()
    }
    assert got == expected  # point for point: iteration, value, ClearML's millisecond time
    assert set(got) == {"train/loss", "train/acc", "lr", "val/acc/top1"}
    assert all(len(points) == ITERATIONS for points in got.values())
    # Hyperparameter sections: General at the top, the others nested; values typed back.
    assert run.params() == {
        "lr": 0.01,
        "layers": 3,
        "Model": {"depth": 4, "act": "relu"},
        "Data": {"name": "cifar", "shuffle": True},
    }
    assert run.tags() == {"owner": "ada", "stage": "pretrain"}
    meta = run.meta
    assert meta["name"] == "native" and meta["project"] == "cmproj" and meta["tags"] == ["baseline"]
    assert meta["status"] == "FINISHED" and meta["import"]["run_id"] == session.task_id
    (artifact,) = run.artifacts()
    assert artifact.name == "notes" and Path(artifact.files[0].local_path).read_text() == "from clearml\n"

    # The session's zip, or the folder of sessions: the same run, nothing written again.
    before = (result.path / journal.EVENTS_FILE).stat().st_mtime_ns
    for source in (session.zip, session.folder.parent):
        (again,) = tracelet.import_runs(source, source="clearml", dir=runs_dir)
        assert again.run_id == result.run_id and again.existing and again.events == 0
    assert (result.path / journal.EVENTS_FILE).stat().st_mtime_ns == before

    # ClearML -> journal -> MLflow: every point with its step and ClearML's time.
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = tracelet.sync(run, to="mlflow", config={"tracking_uri": uri})
    res = report.backends["mlflow"]
    assert res.complete and res.delivered == res.events, res
    client = MlflowClient(uri)
    for name, points in expected.items():
        history = client.get_metric_history(res.run_id, name)
        assert sorted((m.step, m.value, m.timestamp) for m in history) == sorted(points), name
    params = client.get_run(res.run_id).data.params
    assert params["lr"] == "0.01" and json.loads(params["Model"]) == {"depth": 4, "act": "relu"}  # nested: JSON
