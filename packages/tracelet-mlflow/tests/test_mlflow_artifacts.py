"""Tracelet artifacts through the MLflow backend: files, objects, references and torch models, round trip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

import tracelet
from tracelet import ArtifactType
from tracelet_testsupport.mlflow import MlflowServer, mlflow_run_id


def start(uri: str, name: str = "art") -> tracelet.Experiment:
    return tracelet.start_logging(name, project="art-proj", backend="mlflow", config={"mlflow_tracking_uri": uri})


def test_files_objects_references_versions_round_trip(sqlite_uri: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "train.csv").write_text("a,b\n1,2\n")
    (data / "sub" / "val.csv").write_text("a,b\n3,4\n")
    exp = start(sqlite_uri)
    first = (
        exp.create_artifact("dataset", ArtifactType.DATASET, "toy data")
        .add_file(str(data / "train.csv"))
        .add_file(str(data / "sub" / "val.csv"), "splits/val.csv")
        .add_object({"rows": 2, "cols": ["a", "b"]}, "stats")
        .add_reference("s3://bucket/full.parquet", size_bytes=123, description="the real thing")
    )
    r1 = exp.log_artifact(first, wait=True)["mlflow"]
    (data / "train.csv").write_text("a,b\n5,6\n")  # after logging: v1 must keep what it was
    r2 = exp.log_artifact(
        exp.create_artifact("dataset", ArtifactType.DATASET).add_file(str(data / "train.csv")), wait=True
    )["mlflow"]
    exp.log_artifact(exp.create_artifact("settings", ArtifactType.CONFIG).add_object({"lr": 0.1}, "cfg"), wait=True)
    assert r1.success and r2.success, (r1.error, r2.error)
    assert (r1.version, r2.version) == ("v1", "v2")
    assert r1.uri.endswith("/dataset/v1") and r1.metadata["references"] == ["s3://bucket/full.parquet"]

    latest = exp.get_artifact("dataset", backend="mlflow")
    assert latest is not None and latest.version == "v2"
    assert Path(latest.files[0].local_path).read_text() == "a,b\n5,6\n"
    v1 = exp.get_artifact("dataset", "v1", backend="mlflow")
    assert v1 is not None and v1.description == "toy data" and v1.type is ArtifactType.DATASET
    files = {f.artifact_path: Path(f.local_path).read_text() for f in v1.files}
    assert files == {"train.csv": "a,b\n1,2\n", "splits/val.csv": "a,b\n3,4\n"}
    assert all(Path(f.local_path).is_relative_to(Path(exp.run_dir).resolve()) for f in v1.files), "in the run's cache"
    assert [o.obj for o in v1.objects] == [{"rows": 2, "cols": ["a", "b"]}]
    assert [(r.uri, r.size_bytes, r.description) for r in v1.references] == [
        ("s3://bucket/full.parquet", 123, "the real thing")
    ]
    assert exp.get_artifact("dataset", "v3", backend="mlflow") is None
    assert exp.get_artifact("missing", backend="mlflow") is None

    listed = exp.list_artifacts(backend="mlflow")
    assert sorted((a.name, a.version) for a in listed) == [("dataset", "v1"), ("dataset", "v2"), ("settings", "v1")]
    assert [(a.name, a.version) for a in exp.list_artifacts(ArtifactType.CONFIG, backend="mlflow")] == [
        ("settings", "v1")
    ]
    exp.stop()

    # What MLflow itself holds: the layout, the manifest, the reference as a tag (not uploaded).
    client = MlflowClient(sqlite_uri)
    run_id = mlflow_run_id(exp)
    stored = {f.path for f in client.list_artifacts(run_id, "dataset/v1")}
    assert stored == {"dataset/v1/files", "dataset/v1/objects", "dataset/v1/manifest.json"}
    manifest = json.loads(
        Path(client.download_artifacts(run_id, "dataset/v1/manifest.json", str(tmp_path))).read_text()
    )
    assert manifest["version"] == "v1" and manifest["format"] == "tracelet-artifact"
    assert {f["local_path"] for f in manifest["files"]} == {"files/train.csv", "files/splits/val.csv"}
    tag = json.loads(client.get_run(run_id).data.tags["tracelet.artifact.dataset"])
    assert tag == {"version": "v2", "type": "dataset", "path": "dataset/v2"}
    assert not any("full.parquet" in f.path for f in client.list_artifacts(run_id, "dataset/v1/files"))


def test_a_name_mlflow_refuses_as_a_tag_key_is_stored_and_summarised(sqlite_uri: str, tmp_path: Path) -> None:
    ckpt = tmp_path / "epoch=0-step=4.ckpt"  # Lightning's ModelCheckpoint names its files this way
    ckpt.write_bytes(b"weights")
    exp = start(sqlite_uri)
    result = exp.log_file_artifact(str(ckpt), "checkpoints")["mlflow"]
    assert result.version == "v1" and result.uri.endswith("/epoch=0-step=4.ckpt/v1")
    got = exp.get_artifact("epoch=0-step=4.ckpt", backend="mlflow")
    assert got is not None and Path(got.files[0].local_path).read_bytes() == b"weights"
    exp.stop()
    assert result.success, result.error
    tags = MlflowClient(sqlite_uri).get_run(mlflow_run_id(exp)).data.tags
    summary = json.loads(tags["tracelet.artifact.epoch_0-step_4.ckpt"])
    assert summary == {"version": "v1", "type": "checkpoint", "path": "epoch=0-step=4.ckpt/v1", "name": ckpt.name}


def test_torch_model_is_logged_in_mlflow_pytorch_format_and_as_state_dict(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    logged_weights = {k: v.clone() for k, v in model.state_dict().items()}
    exp = start(sqlite_uri)
    result = exp.log_artifact(exp.create_artifact("net", ArtifactType.MODEL).add_model(model), wait=True)["mlflow"]
    with torch.no_grad():  # training goes on: the logged model must not change with it
        for p in model.parameters():
            p.add_(1.0)
    assert result.success, result.error
    run_id = result.metadata["run_id"]
    assert result.metadata["model_uri"] == f"runs:/{run_id}/net/v1/model"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_uri)  # for MLflow to resolve the runs:/ URI
    import mlflow.pytorch  # here, not at the top: it imports Lightning (seconds of CPU) in every worker that collects

    loaded = mlflow.pytorch.load_model(result.metadata["model_uri"])  # MLflow's own format, no input example
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in logged_weights.items())
    x = torch.randn(5, 4)
    reference = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    reference.load_state_dict(logged_weights)
    assert torch.allclose(loaded(x), reference(x))

    back = exp.get_artifact("net", backend="mlflow", load=True)
    assert back is not None and back.metadata["models"][0]["framework"] == "pytorch"
    state = next(o.obj for o in back.objects if o.name == "model")
    assert all(torch.equal(state[k], v) for k, v in logged_weights.items())
    exp.stop()


def test_artifact_round_trip_through_the_server(server: MlflowServer, tmp_path: Path) -> None:
    src = tmp_path / "report.md"
    src.write_text("# results\n")
    exp = tracelet.start_logging(
        "art-served", project="art-proj", backend="mlflow", config={"mlflow_tracking_uri": server.uri}
    )
    result = exp.log_artifact(exp.create_artifact("report", ArtifactType.REPORT).add_file(str(src)), wait=True)[
        "mlflow"
    ]
    assert result.success and result.version == "v1", result.error
    back = exp.get_artifact("report", backend="mlflow")
    assert back is not None and Path(back.files[0].local_path).read_text() == "# results\n"
    assert [(a.name, a.type) for a in exp.list_artifacts(backend="mlflow")] == [("report", ArtifactType.REPORT)]
    exp.stop()


def test_spec_basic_usage_example_direct_api(tmp_path: Path) -> None:
    # The spec's "Basic Usage" (MLflow's default store: ./mlflow.db). Its SummaryWriter lines need the
    # tracelet-torch integration, which is a separate distribution; everything else runs as written.
    torch.save(torch.nn.Linear(2, 2).state_dict(), "model.pth")
    import tracelet

    # Start experiment tracking
    experiment = tracelet.start_logging(exp_name="my_experiment", project="my_project", backend="mlflow")

    # Direct API usage
    experiment.log_params({"learning_rate": 0.01, "batch_size": 32})

    experiment.log_artifact("model.pth")

    # Stop tracking
    tracelet.stop_logging()

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(mlflow_run_id(experiment))
    assert run.info.run_name == "my_experiment" and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "my_project"
    assert run.data.params == {"learning_rate": "0.01", "batch_size": "32"}
    assert {f.path for f in client.list_artifacts(run.info.run_id, "model.pth/v1/files")} == {
        "model.pth/v1/files/model.pth"
    }


def test_logging_one_artifact_object_twice_stores_two_versions(sqlite_uri: str, tmp_path: Path) -> None:
    # One builder logged twice (e.g. re-logged after more training) is two log_artifact calls: MLflow must hold
    # v1 and v2 as the local store does, not have v2 overwrite v1 in place.
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"first")
    exp = start(sqlite_uri)
    art = exp.create_artifact("clf", ArtifactType.MODEL).add_file(str(weights)).add_reference("s3://b/k")
    first = exp.log_artifact(art, wait=True)["mlflow"]
    weights.write_bytes(b"second")
    art.files.clear()
    art.add_file(str(weights))
    second = exp.log_artifact(art, wait=True)["mlflow"]
    assert first.success and second.success, (first.error, second.error)
    assert (first.version, second.version) == ("v1", "v2")
    assert first.uri.endswith("/clf/v1") and second.uri.endswith("/clf/v2")
    assert sorted(a.version for a in exp.list_artifacts(backend="mlflow")) == ["v1", "v2"]
    v1 = exp.get_artifact("clf", "v1", backend="mlflow")
    assert v1 is not None and Path(v1.files[0].local_path).read_bytes() == b"first"
    exp.stop()

    client = MlflowClient(sqlite_uri)
    run_id = mlflow_run_id(exp)
    assert {f.path for f in client.list_artifacts(run_id, "clf")} == {"clf/v1", "clf/v2"}
    assert json.loads(client.get_run(run_id).data.tags["tracelet.artifact.clf"])["version"] == "v2"


def test_downloaded_artifact_paths_survive_a_change_of_directory(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TRACELET_DIR is relative by default ("./tracelet-runs"); the paths get_artifact hands out must stay valid
    # when the script changes directory afterwards, as the local store's do.
    (tmp_path / "notes.txt").write_text("hello")
    exp = start(sqlite_uri)
    exp.log_artifact(exp.create_artifact("notes", ArtifactType.REPORT).add_file(str(tmp_path / "notes.txt")), wait=True)
    back = exp.get_artifact("notes", backend="mlflow")
    exp.stop()
    assert back is not None and Path(back.files[0].local_path).is_absolute()
    monkeypatch.chdir(tmp_path / "store")
    assert Path(back.files[0].local_path).read_text() == "hello"


@pytest.mark.parametrize("mode", ["polling", "watchdog"])
def test_watching_the_folder_that_holds_the_mlflow_store_logs_the_users_files_only(
    sqlite_uri: str, tmp_path: Path, mode: str
) -> None:
    # The sqlite database and MLflow's artifact folder are under the watched folder: logging what MLflow writes
    # there would make MLflow write again (each manifest.json a new version), without end.
    if mode == "watchdog":
        pytest.importorskip("watchdog")
    config = {
        "mlflow_tracking_uri": sqlite_uri, "enable_artifacts": True, "automagic_artifacts": True,
        "artifact_watch_dirs": [str(tmp_path)], "artifact_watcher": mode,
        "artifact_watch_interval": 0.05, "artifact_watch_settle": 0.15,
    }  # fmt: skip
    exp = tracelet.start_logging("watch-store", project="art-proj", backend=["local", "mlflow"], config=config)
    assert exp._artifacts._watcher.mechanism == mode
    (tmp_path / "epoch1.pt").write_bytes(b"ck")
    for step in range(15):  # metrics make MLflow write to its database while the watcher runs
        exp.log_metric("loss", 1.0 / (step + 1), step)
        time.sleep(0.1)
    report = exp.stop()
    assert [(a.name, a.version) for a in exp.list_artifacts()] == [("epoch1.pt", "v1")]
    run_id = report.backends["mlflow"].details["run_id"]
    client = MlflowClient(sqlite_uri)
    assert [f.path for f in client.list_artifacts(run_id)] == ["epoch1.pt"]
    assert report.backends["mlflow"].details["artifact_uri"] == client.get_run(run_id).info.artifact_uri
