"""Artifacts as W&B artifacts: type, contents (files, objects, references, models), versions as aliases; read
back offline from the backend's local copy."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
import torch

import tracelet
from tracelet.plugin import ArtifactType
from tracelet_testsupport.wandb import run_of


def contents(record: object) -> dict[str, object]:
    return {c.path: c for c in record.manifest.contents}  # type: ignore[attr-defined]


def test_files_objects_references_models_and_versions(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    exp = tracelet.start_logging("arts", project="p", backend="wandb", config={"track_system": False})
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01" * 500)
    first = (
        exp.create_artifact("my model", ArtifactType.MODEL, "first try")
        .add_file(str(weights), "ckpt/weights.bin")
        .add_object({"lr": 0.1}, "hparams", serializer="json")
        .add_reference("https://example.com/data.tar", size_bytes=10)
        .add_reference("s3://bucket/data.tar")  # W&B needs boto3 for s3:// (not installed): manifest only
    )
    r1 = exp.log_artifact(first, wait=60)["wandb"]
    weights.write_bytes(b"\x02" * 100)  # later writes do not change what was logged
    second = exp.create_artifact("my model", ArtifactType.MODEL).add_file(str(weights), "ckpt/weights.bin")
    r2 = exp.log_artifact(second, wait=60)["wandb"]
    net = torch.nn.Linear(3, 2)
    model = exp.create_artifact("net", ArtifactType.CHECKPOINT).add_model(net, framework="pytorch")
    r3 = exp.log_artifact(model, wait=60)["wandb"]
    assert (r1.success, r2.success, r3.success) == (True, True, True), (r1.error, r2.error, r3.error)
    assert (r1.version, r2.version, r3.version) == ("v1", "v2", "v1")
    mapped = "my_model-" + hashlib.sha1(b"my model").hexdigest()[:8]  # "my model" is no W&B name: mapped
    assert r1.uri == f"wandb-artifact://p/{mapped}:tracelet-v1" and r1.metadata["name"] == mapped
    assert r1.metadata["references"] == [
        "https://example.com/data.tar",
        "s3://bucket/data.tar",
    ]

    caplog.set_level(logging.WARNING, logger="tracelet.wandb")
    got = exp.get_artifact("my model", "v1", backend="wandb")
    latest = exp.get_artifact("my model", backend="wandb")
    listed = exp.list_artifacts(ArtifactType.MODEL, backend="wandb")
    assert exp.get_artifact("nope", backend="wandb") is None
    notes = [r for r in caplog.records if "local copy" in r.getMessage()]
    assert len(notes) == 1 and "offline" in notes[0].getMessage()  # said once
    assert got is not None and got.description == "first try"
    assert Path(got.files[0].local_path).read_bytes() == b"\x00\x01" * 500
    assert got.objects[0].name == "hparams" and got.objects[0].obj == {"lr": 0.1}
    assert [r.uri for r in got.references] == ["https://example.com/data.tar", "s3://bucket/data.tar"]
    assert latest is not None and Path(latest.files[0].local_path).read_bytes() == b"\x02" * 100
    assert [(a.name, a.type) for a in listed] == [("my model", ArtifactType.MODEL)] * 2

    run = run_of(exp.stop())
    records = [a for a in run.artifacts if a.name != "environment"]
    assert [(a.name, a.type, sorted(a.aliases)) for a in records] == [  # W&B keeps aliases as a set
        (mapped, "model", ["latest", "tracelet-v1"]),
        (mapped, "model", ["latest", "tracelet-v2"]),
        ("net", "checkpoint", ["latest", "tracelet-v1"]),
    ]
    v1, v2, ckpt = (contents(a) for a in records)
    assert set(v1) == {"manifest.json", "files/ckpt/weights.bin", "objects/hparams.json", "references/0"}
    assert v1["files/ckpt/weights.bin"].size == 1000 and v2["files/ckpt/weights.bin"].size == 100
    assert v1["references/0"].ref == "https://example.com/data.tar"
    assert records[0].description == "first try"
    assert json.loads(records[0].metadata) == {
        "tracelet_name": "my model",
        "tracelet_version": "v1",
        "tracelet_references_in_manifest_only": ["s3://bucket/data.tar"],
    }
    manifest = json.loads(Path(v1["manifest.json"].local_path).read_text())
    assert manifest["name"] == "my model" and manifest["type"] == "model" and manifest["version"] == "v1"
    model_files = [p for p in ckpt if p.startswith("objects/")]
    assert len(model_files) == 1
    state = torch.load(Path(r3.metadata["local_copy"]) / model_files[0], weights_only=True)
    assert torch.equal(state["weight"], net.state_dict()["weight"])


def test_logging_the_same_artifact_object_twice_is_two_versions(tmp_path: Path) -> None:
    # Tracelet's own store numbers a second log of one object v2; the W&B aliases must say the same.
    exp = tracelet.start_logging("twice", project="p", backend=["local", "wandb"], config={"track_system": False})
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x01" * 10)
    ckpt = exp.create_artifact("ckpt", ArtifactType.CHECKPOINT).add_file(str(weights))
    first = exp.log_artifact(ckpt, wait=60)
    weights.write_bytes(b"\x02" * 20)
    second = exp.log_artifact(ckpt, wait=60)
    assert (first["local"].version, second["local"].version) == ("v1", "v2")
    assert (first["wandb"].version, second["wandb"].version) == ("v1", "v2")
    latest = exp.get_artifact("ckpt", backend="wandb")
    assert latest is not None and Path(latest.files[0].local_path).read_bytes() == b"\x02" * 20
    run = run_of(exp.stop())
    records = [a for a in run.artifacts if a.name == "ckpt"]
    assert [sorted(a.aliases) for a in records] == [["latest", "tracelet-v1"], ["latest", "tracelet-v2"]]
    assert [contents(a)["files/weights.bin"].size for a in records] == [10, 20]


def test_names_w_and_b_refuses_stay_distinct_artifacts_after_mapping(tmp_path: Path) -> None:
    # Mapped character by character, both names would be `__`: one W&B artifact with two types, which W&B refuses.
    exp = tracelet.start_logging("unicode", project="p", backend="wandb", config={"track_system": False})
    data = tmp_path / "data.txt"
    data.write_text("d")
    r_model = exp.log_artifact(exp.create_artifact("模型", ArtifactType.MODEL).add_file(str(data)), wait=60)["wandb"]
    r_data = exp.log_artifact(exp.create_artifact("数据", ArtifactType.DATASET).add_file(str(data)), wait=60)["wandb"]
    assert r_model.success and r_data.success, (r_model.error, r_data.error)
    run = run_of(exp.stop())
    records = {json.loads(a.metadata)["tracelet_name"]: a for a in run.artifacts if a.name != "environment"}
    assert set(records) == {"模型", "数据"}
    assert records["模型"].name != records["数据"].name
    assert (records["模型"].type, records["数据"].type) == ("model", "dataset")
    assert (records["模型"].name, records["数据"].name) == (r_model.metadata["name"], r_data.metadata["name"])
    assert all(
        set(a.name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
        for a in records.values()
    )  # names W&B accepts
