"""Watched folders: new and rewritten files become artifacts typed by extension (watchdog and polling)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import tracelet
from tracelet import ArtifactType, Experiment, ExperimentConfig
from tracelet.core.artifacts.watch import ArtifactWatcher


def _config(watch: Path, mode: str) -> dict:
    return {
        "enable_artifacts": True,
        "automagic_artifacts": True,
        "artifact_watch_dirs": [str(watch)],
        "artifact_watcher": mode,
        "artifact_watch_interval": 0.05,
        "artifact_watch_settle": 0.15,
    }


def _until(predicate, timeout: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("mode", ["polling", "watchdog"])
def test_new_files_in_watched_folders_become_typed_artifacts(tmp_path: Path, mode: str) -> None:
    if mode == "watchdog":
        pytest.importorskip("watchdog")
    watch = tmp_path / "outputs"
    watch.mkdir()
    (watch / "old.png").write_bytes(b"there before")
    exp = tracelet.start_logging("watch", backend="local", config=_config(watch, mode))
    assert exp._artifacts._watcher.mechanism == mode
    (watch / "ckpts").mkdir()
    (watch / "ckpts" / "epoch1.ckpt").write_bytes(b"ck")
    (watch / "plot.png").write_bytes(b"png")
    (watch / "cfg.yaml").write_text("lr: 0.1")
    (watch / ".hidden.pt").write_bytes(b"no")
    (watch / "partial.pt.tmp").write_bytes(b"no")
    assert _until(lambda: len(exp.list_artifacts()) == 3)
    found = {a.name: a.type for a in exp.list_artifacts()}
    assert found == {
        "epoch1.ckpt": ArtifactType.CHECKPOINT,
        "plot.png": ArtifactType.IMAGE,
        "cfg.yaml": ArtifactType.CONFIG,
    }
    # A rewritten file is a new version; a file still changing waits until it settles.
    (watch / "plot.png").write_bytes(b"png, epoch 2")
    assert _until(lambda: exp.get_artifact("plot.png").version == "v2")  # type: ignore[union-attr]
    got = exp.get_artifact("plot.png")
    assert got is not None and Path(got.files[0].local_path).read_bytes() == b"png, epoch 2"
    # Written just before stop: the last pass logs it.
    (watch / "final.pt").write_bytes(b"final")
    tracelet.stop_logging()
    assert exp.get_artifact("final.pt") is not None
    assert exp.get_artifact("old.png") is None


def test_a_file_is_logged_once_it_stops_changing(tmp_path: Path) -> None:
    logged: list[tuple[Path, bytes]] = []
    w = ArtifactWatcher(
        [tmp_path], lambda p: logged.append((p, p.read_bytes())), interval=0.05, settle=0.3, mode="polling"
    )
    w.start()
    try:
        target = tmp_path / "growing.ckpt"
        for _ in range(6):  # keeps changing for ~0.6 s, longer than the settle time
            with open(target, "ab") as f:
                f.write(b"x" * 10)
            time.sleep(0.1)
        assert _until(lambda: bool(logged), 3)
        assert logged == [(target, b"x" * 60)]
    finally:
        w.stop()


def test_the_run_store_inside_a_watched_folder_is_ignored(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "polling")  # the run store ./tracelet-runs is inside the watched folder (cwd)
    exp = tracelet.start_logging("self", backend="local", config=cfg)
    (tmp_path / "w.pt").write_bytes(b"w")
    assert _until(lambda: len(exp.list_artifacts()) == 1)
    time.sleep(0.4)  # the stored copy and the staging files must not be logged in turn
    assert [a.name for a in exp.list_artifacts()] == ["w.pt"]


def test_watching_needs_enable_artifacts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = ExperimentConfig(automagic_artifacts=True, artifact_watch_dirs=[str(tmp_path)], track_system_metrics=False)
    exp = Experiment("off", config=cfg, backend=["local"])
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        exp.start()
    assert exp._artifacts._watcher is None
    assert any("enable_artifacts" in r.getMessage() for r in caplog.records)
    exp.stop()
    on = Experiment(
        "on",
        config=ExperimentConfig(artifact_watch_dirs=[str(tmp_path)], track_system_metrics=False),
        backend=["local"],
        artifacts=True,
        automagic_artifacts=True,
    )
    on.start()
    assert on._artifacts._watcher is not None
    on.stop()
