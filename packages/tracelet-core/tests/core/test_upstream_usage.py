"""What upstream tracelet's own examples and docs do, accepted: MLflow's `log_artifact(path, artifact_path)`,
automagic that leaves Tracelet's own config objects out of the user's hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracelet
from tracelet import ConfigurationError
from tracelet.core.run.config import AutomagicConfig, ExperimentConfig
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
    exp = tracelet.Experiment(
        "magic", config=config, backend=["local"], automagic=True, automagic_config=automagic_config
    )
    exp.start()
    exp.stop()
    params = open_run(exp.id).params()
    assert params["lr"] == lr and params["batch_size"] == batch_size
    assert not [k for k in params if k.startswith(("config/", "automagic_config/", "exp/"))], params
    assert automagic_config.detect_hyperparameters  # the local stays in the frame the capture reads


def test_an_artifact_is_kept_once_per_run_folder_and_syncs_from_the_stored_copy(tmp_path: Path) -> None:
    """With the local store among the targets, the staging snapshot goes once every target took the artifact:
    the stored version is the run's one copy, and a later sync reads it. Without it, the snapshot stays."""
    from tracelet.core.engine import journal
    from tracelet.transfer.sync import sync
    from tracelet_testplugin.backends import RECORDS

    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 1000)
    with tracelet.start_logging("once", backend=["local", "recorder"]) as exp:
        exp.log_artifact(str(weights), wait=True)
    staging = journal.staging_root(exp.run_dir)
    assert [p.name for p in staging.iterdir()] == [p.name for p in staging.glob("*.stored")]  # no snapshot left
    assert (journal.artifacts_root(exp.run_dir) / "weights.bin" / "v1").is_dir()
    again = sync(exp.id, "slow")  # a backend the run never had: the artifact comes from the stored copy
    assert again.backends["slow"].complete
    delivered = RECORDS[f"slow:{exp.id}"]["artifacts"]
    assert delivered and Path(delivered[-1].files[0].local_path).read_bytes() == b"w" * 1000

    with tracelet.start_logging("kept", backend=["recorder"]) as other:
        other.log_artifact(str(weights), wait=True)
    kept = [p for p in journal.staging_root(other.run_dir).iterdir()]
    assert len(kept) == 1 and kept[0].is_dir() and not kept[0].name.endswith(".stored")  # the run's only copy
