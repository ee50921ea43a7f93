"""The artifact model on its own: types, builders, dict round trip, checksums, safety, serializers, models."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from tracelet.core.artifacts import (
    ArtifactFile,
    ArtifactPathError,
    ArtifactResult,
    ArtifactType,
    TraceletArtifact,
    check_artifact_path,
    guess_type,
    load_object,
    sha256_file,
)


def test_artifact_type_has_the_13_members_of_the_spec() -> None:
    assert {t.name: t.value for t in ArtifactType} == {
        "MODEL": "model", "CHECKPOINT": "checkpoint", "WEIGHTS": "weights", "DATASET": "dataset",
        "SAMPLE": "sample", "IMAGE": "image", "AUDIO": "audio", "VIDEO": "video", "VISUALIZATION": "viz",
        "REPORT": "report", "CONFIG": "config", "CODE": "code", "CUSTOM": "custom",
    }  # fmt: skip


def test_builder_round_trips_through_to_dict_and_from_dict(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"weights")
    art = (
        TraceletArtifact("best", ArtifactType.MODEL, "best model")
        .add_file(str(tmp_path / "w.bin"), "weights/w.bin", description="raw weights")
        .add_object({"lr": 0.1, "layers": [1, 2]}, "hparams")
        .add_reference("s3://bucket/data.tar", size_bytes=10_000, description="data")
    )
    art.metadata["epoch"] = 3
    d = art.to_dict()
    assert d["type"] == "model" and d["files"][0]["artifact_path"] == "weights/w.bin"
    assert d["files"][0]["checksum"] == hashlib.sha256(b"weights").hexdigest() and d["files"][0]["size_bytes"] == 7
    back = TraceletArtifact.from_dict(d)
    assert back.to_dict() == d
    assert back.type is ArtifactType.MODEL and back.created_at == art.created_at
    assert isinstance(back.files[0], ArtifactFile) and back.objects[0].obj == {"lr": 0.1, "layers": [1, 2]}
    assert back.size_bytes == art.size_bytes == 7
    res = ArtifactResult("local", uri="file:///x", version="v2", metadata={"k": 1})
    assert ArtifactResult.from_dict(res.to_dict()) == res


def test_types_are_taken_by_member_value_or_name() -> None:
    assert TraceletArtifact("a", "viz").type is ArtifactType.VISUALIZATION
    assert TraceletArtifact("a", "IMAGE").type is ArtifactType.IMAGE
    with pytest.raises(ValueError, match="unknown artifact type"):
        TraceletArtifact("a", "picture")


def test_checksum_of_a_200mb_sparse_file_streams(tmp_path: Path) -> None:
    big = tmp_path / "sparse.bin"
    size = 200 * 1024 * 1024
    with open(big, "wb") as f:
        f.truncate(size)
    expected = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(200):
        expected.update(zeros)
    tracemalloc.start()
    try:
        art = TraceletArtifact("big", ArtifactType.DATASET).add_file(str(big))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert art.files[0].size_bytes == size and art.size_bytes == size
    assert art.files[0].checksum == expected.hexdigest()
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while hashing"


@pytest.mark.parametrize("bad", ["../x", "a/../../b", "/etc/passwd", "..", "C:\\x", "..\\x", "", "./"])
def test_paths_that_escape_the_artifact_root_are_rejected(tmp_path: Path, bad: str) -> None:
    (tmp_path / "f").write_text("x")
    art = TraceletArtifact("a", ArtifactType.CUSTOM)
    with pytest.raises(ArtifactPathError):
        art.add_file(str(tmp_path / "f"), bad)
    with pytest.raises(ArtifactPathError):
        art.add_object({}, bad)
    assert not art.files and not art.objects


def test_names_and_normal_paths() -> None:
    assert check_artifact_path("a//b/./c.txt") == "a/b/c.txt"
    for bad in ("../up", "a/b", ".hidden", ""):
        with pytest.raises(ArtifactPathError):
            TraceletArtifact(bad, ArtifactType.CUSTOM)


def test_add_file_raises_for_missing_files_and_duplicates(tmp_path: Path) -> None:
    art = TraceletArtifact("a", ArtifactType.CUSTOM)
    with pytest.raises(FileNotFoundError):
        art.add_file(str(tmp_path / "missing.pt"))
    (tmp_path / "f").write_text("x")
    art.add_file(str(tmp_path / "f"))
    with pytest.raises(ArtifactPathError, match="already"):
        art.add_file(str(tmp_path / "f"))
    with pytest.raises(ValueError, match="scheme"):
        art.add_reference("bucket/key")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_add_file_refuses_a_pipe_at_once_instead_of_blocking_on_it(tmp_path: Path) -> None:
    # Checksumming a FIFO nobody writes to would block the caller (the training loop) forever.
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _call(outcome, TraceletArtifact("a", "custom").add_file, str(fifo)))
    worker.start()
    worker.join(5)
    blocked = worker.is_alive()
    if blocked:  # unblock the test's own thread: a writer lets the open() return
        with open(fifo, "wb"):
            pass
        worker.join(5)
    assert not blocked, "add_file blocked on a named pipe"
    assert isinstance(outcome[0], ValueError) and "regular file" in str(outcome[0])


def _call(outcome: list[BaseException], fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # recorded for the test thread to assert on
        outcome.append(exc)


def test_serializers_json_yaml_pickle(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    art = TraceletArtifact("objs", ArtifactType.CONFIG)
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        art.add_object({"a": 1}, "j").add_object({"b": [1, 2]}, "y", "yaml").add_object({1, 2}, "p", "pickle")
    assert any("pickled" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="unknown serializer"):
        art.add_object(1, "x", "xml")
    for obj, expected in zip(art.objects, ({"a": 1}, {"b": [1, 2]}, {1, 2})):
        obj.path = art.serialize_object(obj, str(tmp_path))
        assert Path(obj.path).parent == tmp_path
        assert load_object(obj) == expected
    with pytest.raises(TypeError, match="JSON"):
        art.serialize_object(art.objects[2].__class__(object(), "bad"), str(tmp_path))


def test_yaml_serializer_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)
    art = TraceletArtifact("y", ArtifactType.CONFIG).add_object({"a": 1}, "cfg", "yaml")
    with pytest.raises(ImportError, match="pip install pyyaml"):
        art.serialize_object(art.objects[0], str(tmp_path))


class DuckEstimator:
    """Stands in for an sklearn estimator: detection is duck-typed (fit/predict/get_params)."""

    def __init__(self, alpha: float = 0.5) -> None:
        self.alpha = alpha

    def fit(self, x, y):  # noqa: ANN001, ANN201
        return self

    def predict(self, x):  # noqa: ANN001, ANN201
        return x

    def get_params(self, deep: bool = True) -> dict:
        return {"alpha": self.alpha}


def test_add_model_detects_sklearn_by_duck_typing_and_pickles_anything_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    art = TraceletArtifact("m", ArtifactType.MODEL).add_model(DuckEstimator(), input_example=[[1.0, 2.0]])
    info = art.metadata["models"][0]
    assert info["framework"] == "sklearn" and info["params"] == {"alpha": 0.5}
    assert [(o.name, o.serializer) for o in art.objects] == [("model", "pickle"), ("model_input_example", "json")]
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        art2 = TraceletArtifact("m2", ArtifactType.MODEL).add_model(lambda x: x)
    assert art2.metadata["models"][0]["framework"] == "unknown" and art2.objects[0].serializer == "pickle"
    assert any("not a recognised framework model" in r.getMessage() for r in caplog.records)


def test_add_model_saves_a_torch_module_as_its_state_dict(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 2)
    art = TraceletArtifact("net", ArtifactType.MODEL).add_model(model, input_example=torch.zeros(4, 3))
    info = art.metadata["models"][0]
    assert info["framework"] == "pytorch" and info["parameters"] == 8
    assert info["input_example"]["shape"] == [4, 3]
    obj = art.objects[0]
    assert obj.serializer == "torch"
    obj.path = art.serialize_object(obj, str(tmp_path))
    state = load_object(obj)
    assert torch.equal(state["weight"], model.weight.detach())


def test_extension_types() -> None:
    assert guess_type("a/b.ckpt") is ArtifactType.CHECKPOINT and guess_type("x.PTH") is ArtifactType.CHECKPOINT
    assert guess_type("p.png") is ArtifactType.IMAGE and guess_type("p.jpg") is ArtifactType.IMAGE
    assert guess_type("c.yaml") is ArtifactType.CONFIG and guess_type("c.json") is ArtifactType.CONFIG
    assert guess_type("r.wav") is ArtifactType.AUDIO and guess_type("what.xyz") is ArtifactType.CUSTOM


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000
    (tmp_path / "d").write_bytes(data)
    assert sha256_file(tmp_path / "d") == (hashlib.sha256(data).hexdigest(), len(data))
