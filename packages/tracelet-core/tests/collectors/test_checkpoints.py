"""The checkpoint switch: watched checkpoint files are typed `checkpoint` with it, and not logged without it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tracelet.core.artifacts.checkpoints import captured_file_type, is_checkpoint
from tracelet.core.artifacts.kinds import ArtifactType
from tracelet.core.run.config import ExperimentConfig
from tracelet_testsupport.collectors import stored

WATCH = {"artifact_watcher": "polling", "artifact_watch_interval": 0.05, "artifact_watch_settle": 0.05}


def _watched_run(experiment_factory, tmp_path: Path, track: bool) -> dict[str, str]:
    watch = tmp_path / "out"
    exp = experiment_factory(
        track_checkpoints=track,
        enable_artifacts=True,
        automagic_artifacts=True,
        artifact_watch_dirs=[str(watch)],
        options=WATCH,
    ).start()
    (watch / "epoch=1-step=10.ckpt").write_bytes(b"a")
    (watch / "model.pt").write_bytes(b"b")
    (watch / "checkpoint-500.bin").write_bytes(b"c")
    (watch / "metrics.csv").write_text("loss\n0.5\n")
    time.sleep(0.5)
    exp.stop()
    return {a.name: a.type.value for a in stored(exp).artifacts()}


def test_with_the_switch_checkpoints_are_typed_checkpoint(experiment_factory, tmp_path: Path) -> None:
    assert _watched_run(experiment_factory, tmp_path, True) == {
        "epoch=1-step=10.ckpt": "checkpoint",
        "model.pt": "checkpoint",
        "checkpoint-500.bin": "checkpoint",  # by its name: the extension alone says `weights`
        "metrics.csv": "dataset",
    }


def test_without_the_switch_checkpoints_are_not_logged(experiment_factory, tmp_path: Path) -> None:
    assert _watched_run(experiment_factory, tmp_path, False) == {"metrics.csv": "dataset"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("last.ckpt", True), ("weights.pth", True), ("ckpt_3.safetensors", True), ("Checkpoint_final.h5", True),
     ("model.onnx", False), ("tokenizer.json", False), ("data.npz", False)],
)  # fmt: skip
def test_what_counts_as_a_checkpoint(name: str, expected: bool) -> None:
    assert is_checkpoint(name) is expected


def test_a_plugin_capture_typed_checkpoint_follows_the_switch() -> None:
    on, off = ExperimentConfig(track_checkpoints=True), ExperimentConfig(track_checkpoints=False)
    assert captured_file_type(on, "state.tar", ArtifactType.CHECKPOINT) is ArtifactType.CHECKPOINT
    assert captured_file_type(off, "state.tar", ArtifactType.CHECKPOINT) is None
    assert captured_file_type(off, "model.onnx", ArtifactType.MODEL) is ArtifactType.MODEL


@pytest.mark.parametrize("track", [True, False])
def test_torch_save_checkpoints_follow_the_switch(experiment_factory, tmp_path: Path, track: bool) -> None:
    torch = pytest.importorskip("torch")  # installed in the test environment (torch==2.13.0)
    exp = experiment_factory(track_checkpoints=track, enable_artifacts=True, automagic_artifacts=True).start()
    model = torch.nn.Linear(2, 1)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, tmp_path / "epoch3.pt")
    exp.stop()
    logged = {a.name: a.type.value for a in stored(exp).artifacts()}
    expected = {"weights.pt": "weights", "epoch3.pt": "checkpoint"} if track else {"weights.pt": "weights"}
    assert logged == expected
