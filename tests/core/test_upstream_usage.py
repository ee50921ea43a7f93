"""What upstream tracelet's own examples and docs do, accepted: MLflow's `log_artifact(path, artifact_path)`,
automagic that leaves Tracelet's own config objects out of the user's hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracelet
from tracelet import ConfigurationError
from tracelet.core.config import AutomagicConfig, ExperimentConfig
from tracelet.store import open_run


def test_log_artifact_takes_mlflows_artifact_path_for_files_and_folders(tmp_path: Path) -> None:
    model = tmp_path / "model.pth"
    model.write_bytes(b"weights")
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png")
    with tracelet.start_logging("paths", backend="local") as exp:
        exp.log_artifact(str(model), "checkpoints", wait=True)
        exp.log_artifact(str(folder), "figures/", wait=True)
        with pytest.raises(ConfigurationError, match="artifact_path goes with a file or folder path"):
            exp.log_artifact(tracelet.TraceletArtifact("x", "custom"), "somewhere")
    run = open_run(exp.id)
    stored = run.artifact("model.pth")
    assert [f.artifact_path for f in stored.files] == ["checkpoints/model.pth"]
    assert Path(stored.files[0].local_path).read_bytes() == b"weights"
    assert [f.artifact_path for f in run.artifact("plots").files] == ["figures/a.png"]


def test_automagic_leaves_tracelets_own_config_objects_out() -> None:
    lr = 0.01
    batch_size = 32
    config = ExperimentConfig(track_system_metrics=False, track_stdout=False, enable_automagic=True)
    automagic_config = AutomagicConfig()
    exp = tracelet.Experiment("magic", config=config, backend=["local"], automagic=True,
                              automagic_config=automagic_config)
    exp.start()
    exp.stop()
    params = open_run(exp.id).params()
    assert params["lr"] == lr and params["batch_size"] == batch_size
    assert not [k for k in params if k.startswith(("config/", "automagic_config/", "exp/"))], params
    assert automagic_config.detect_hyperparameters  # the local stays in the frame the capture reads
