"""Artifacts as ClearML task artifacts (upload_artifact) and output models, read back from the offline session."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import tracelet
from tracelet import ArtifactType
from tracelet_testsupport.clearml import OfflineSession

CONFIG = {"track_system": False, "track_git": False, "track_env": False, "clearml": {"offline": True}}


def zip_members(path: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_artifacts_versions_models_and_reading_back(tmp_path: Path, cache_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text('{"lr": 0.1}')
    (src / "ckpt.bin").write_bytes(b"\x00weights\x01" * 100)
    exp = tracelet.start_logging("art-run", project="art-proj", backend="clearml", config=CONFIG)

    first = exp.create_artifact("cfg", ArtifactType.CONFIG, "the config").add_file(str(src / "config.json"))
    first.add_reference("s3://bucket/data.csv", size_bytes=10)
    r1 = exp.log_artifact(first, wait=60)["clearml"]
    (src / "config.json").write_text('{"lr": 0.2}')
    r2 = exp.log_artifact(exp.create_artifact("cfg", ArtifactType.CONFIG).add_file(str(src / "config.json")), wait=60)
    model = torch.nn.Linear(3, 2)
    rm = exp.log_artifact(exp.create_artifact("net", ArtifactType.MODEL).add_model(model), wait=60)["clearml"]
    ckpt = exp.create_artifact("ckpt", ArtifactType.CHECKPOINT).add_file(str(src / "ckpt.bin"), "epoch1.bin")
    rc = exp.log_artifact(ckpt, wait=60)["clearml"]

    assert r1.success and r1.version == "v1" and r2["clearml"].version == "v2", (r1, r2)
    assert rm.success and rm.metadata["model_id"].startswith("offline-") and rc.success

    # Reading back through the backend, while the run is live.
    latest = exp.get_artifact("cfg", backend="clearml")
    assert latest is not None and [Path(f.local_path).read_text() for f in latest.files] == ['{"lr": 0.2}']
    v1 = exp.get_artifact("cfg", "v1", backend="clearml")
    assert v1 is not None and Path(v1.files[0].local_path).read_text() == '{"lr": 0.1}'
    assert [r.uri for r in v1.references] == ["s3://bucket/data.csv"]
    assert exp.get_artifact("cfg", "v9", backend="clearml") is None
    assert exp.get_artifact("nothing", backend="clearml") is None
    listed = exp.list_artifacts(backend="clearml")
    assert sorted((a.name, a.type) for a in listed) == [
        ("cfg", ArtifactType.CONFIG), ("cfg", ArtifactType.CONFIG),
        ("ckpt", ArtifactType.CHECKPOINT), ("net", ArtifactType.MODEL),
    ]  # fmt: skip
    assert [a.name for a in exp.list_artifacts(type_filter=ArtifactType.MODEL, backend="clearml")] == ["net"]
    net = exp.get_artifact("net", backend="clearml")
    assert net is not None
    state = torch.load(net.objects[0].path, weights_only=True)
    assert torch.equal(state["weight"], model.weight.detach())

    report = exp.stop()
    session = OfflineSession.of(cache_dir, report)

    # task.json: execution.artifacts, one per version, each an archive in the session's data/ folder.
    artifacts = session.artifacts()
    assert set(artifacts) == {"cfg/v1", "cfg/v2", "net/v1", "ckpt/v1"}
    data = session.folder / "data"
    for key, entry in artifacts.items():
        assert entry["type"] == "archive" and Path(entry["uri"]).is_relative_to(data), entry
        manifest = json.loads(dict(entry["display_data"])["tracelet_manifest"])
        assert manifest["name"] == key.split("/")[0] and manifest["version"] == key.split("/")[1]
    members = zip_members(artifacts["cfg/v1"]["uri"])
    assert members["files/config.json"] == b'{"lr": 0.1}'
    assert json.loads(members["manifest.json"])["references"][0]["uri"] == "s3://bucket/data.csv"
    assert zip_members(artifacts["cfg/v2"]["uri"])["files/config.json"] == b'{"lr": 0.2}'

    # Output models for model and checkpoint types, with their weights in the session's models/ folder.
    models = {m["init"]["name"]: m for m in session.task["offline_output_models"]}
    assert set(models) == {"net", "ckpt"}
    assert models["net"]["init"]["framework"] == "PyTorch" and models["net"]["id"] == rm.metadata["model_id"]
    assert set(models["ckpt"]["init"]["tags"]) >= {"tracelet", "checkpoint", "v1"}
    ckpt_file = Path(models["ckpt"]["weights"]["weights_filename"])
    assert ckpt_file.parent == session.folder / "models" and ckpt_file.read_bytes() == (src / "ckpt.bin").read_bytes()
    net_file = Path(models["net"]["weights"]["weights_filename"])
    assert torch.equal(torch.load(net_file, weights_only=True)["bias"], model.bias.detach())
    # The zip of the session carries the artifacts and models too.
    names = session.zip_names()
    assert any(n.startswith("data/") and n.endswith(".zip") for n in names)
    assert {f"models/{ckpt_file.name}", f"models/{net_file.name}"} <= names
