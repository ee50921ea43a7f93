"""The artifact system through the experiment: routing, results, snapshots, the local store's versions, get/list."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

import tracelet
from tracelet import ArtifactType, ConfigurationError, Experiment
from tracelet.core.artifacts import ArtifactPathError
from tracelet.store import open_run
from tracelet_testplugin.backends import record_for


def _write(path: str | Path, data: bytes) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_spec_basic_example_logs_a_plain_path_to_the_local_store() -> None:
    _write("model.pth", b"state")
    exp = tracelet.start_logging("basic", project="p")
    results = exp.log_artifact("model.pth", wait=True)
    assert set(results) == {"local"}
    r = results["local"]
    assert r.success and r.version == "v1" and r.error is None and r.uri.startswith("file://")
    vdir = Path(r.metadata["path"])
    assert (vdir / "files" / "model.pth").read_bytes() == b"state"
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["type"] == "checkpoint" and manifest["version"] == "v1"
    assert manifest["files"][0]["checksum"] == r.metadata["checksums"]["model.pth"]
    tracelet.stop_logging()
    # The journal records the event, so the run can be replayed to another backend later; the artifact is kept
    # once in the run folder: the local store's version, which the event's token leads to (the snapshot is gone).
    (event,) = open_run(exp.id).artifact_events()
    assert event["targets"] == ["local"] and event["artifact"]["name"] == "model.pth"
    assert not Path(event["artifact"]["files"][0]["local_path"]).exists()
    from tracelet.core.artifacts.manager import stored_copy

    kept = stored_copy(exp.run_dir, event["token"])
    assert kept is not None and Path(kept.files[0].local_path).read_bytes() == b"state"


def test_builder_metadata_description_and_objects_survive_the_store() -> None:
    _write("w.bin", b"w")
    exp = tracelet.start_logging("store", backend="local")
    art = exp.create_artifact("clf", ArtifactType.MODEL, "a classifier")
    art.add_file("w.bin", "weights/w.bin").add_object({"lr": 0.1}, "hparams").add_object([1, 2], "raw", "pickle")
    art.add_reference("s3://b/k", 5)
    art.metadata["acc"] = 0.9
    exp.log_artifact(art, wait=True)
    got = exp.get_artifact("clf")
    assert got is not None and got.version == "v1" and got.description == "a classifier"
    assert got.metadata["acc"] == 0.9 and got.references[0].uri == "s3://b/k"
    assert Path(got.files[0].local_path).read_bytes() == b"w" and got.files[0].artifact_path == "weights/w.bin"
    hp, raw = got.objects
    assert hp.obj == {"lr": 0.1}
    assert raw.obj is None and raw.path is not None  # never unpickled unless asked
    assert exp.get_artifact("clf", load=True).objects[1].obj == [1, 2]  # type: ignore[union-attr]


def test_versions_follow_log_order_and_latest_resolves_to_the_newest() -> None:
    exp = tracelet.start_logging("versions", backend="local")
    for i in range(1, 4):
        _write("ckpt.pt", f"epoch {i}".encode())
        exp.log_artifact("ckpt.pt")  # no wait: delivery order alone must number the versions
    latest = exp.get_artifact("ckpt.pt")  # reads after the local store caught up with what was logged
    assert latest is not None and latest.version == "v3"
    assert Path(latest.files[0].local_path).read_bytes() == b"epoch 3"
    for v in ("v1", "1", 1):
        first = exp.get_artifact("ckpt.pt", version=v)  # type: ignore[arg-type]
        assert first is not None and Path(first.files[0].local_path).read_bytes() == b"epoch 1"
    assert exp.get_artifact("ckpt.pt", version="v9") is None and exp.get_artifact("nothing") is None
    assert [a.version for a in exp.list_artifacts()] == ["v1", "v2", "v3"]
    assert (Path(latest.files[0].local_path).parents[1].parent / "latest").read_text().strip() == "v3"


def test_list_and_get_filter_by_type() -> None:
    _write("a.png", b"img")
    _write("c.yaml", b"k: v")
    _write("m.ckpt", b"ck")
    exp = tracelet.start_logging("list", backend="local")
    for p in ("a.png", "c.yaml", "m.ckpt"):
        exp.log_artifact(p)
    assert [a.name for a in exp.list_artifacts()] == ["a.png", "c.yaml", "m.ckpt"]
    assert [a.name for a in exp.list_artifacts(ArtifactType.IMAGE)] == ["a.png"]
    assert [a.name for a in exp.list_artifacts("config", backend="local")] == ["c.yaml"]
    assert exp.list_artifacts(ArtifactType.VIDEO) == []
    with pytest.raises(ConfigurationError):
        exp.list_artifacts(backend="mlflow")


def test_routing_by_declared_type_and_a_failing_backend_gives_a_result_not_an_exception() -> None:
    _write("pic.png", b"png")
    _write("w.ckpt", b"ck")
    exp = tracelet.start_logging("route", backend=["local", "recorder", "typed", "failing"])
    image = exp.log_artifact("pic.png", wait=True)
    assert set(image) == {"local", "recorder", "typed", "failing"}
    assert all(image[n].success for n in ("local", "recorder", "typed"))
    assert image["failing"].status == "failed" and "artifact store unreachable" in (image["failing"].error or "")
    ckpt = exp.log_artifact("w.ckpt", wait=True)
    assert set(ckpt) == {"local", "recorder", "failing"}  # typed declines everything but images
    assert ckpt["recorder"].uri == "recorder://w.ckpt/2" and ckpt["recorder"].metadata == {"count": 2}
    assert record_for(exp.id, "failing")["artifact_attempts"] == 6  # 3 attempts per artifact, then an error
    report = exp.stop()
    assert report is not None and report.backends["failing"].errors == {"log_artifact: ConnectionError": 2}
    assert report.backends["recorder"].undelivered == 0
    assert [a.name for a in record_for(exp.id, "typed")["artifacts"]] == ["pic.png"]


def test_config_routing_overrides_the_backends_preferences() -> None:
    _write("pic.png", b"png")
    _write("w.ckpt", b"ck")
    _write("notes.md", b"# hi")
    routing = {"image": ["recorder"], "CHECKPOINT": ["local", "typed"]}
    exp = tracelet.start_logging(
        "override", backend=["local", "recorder", "typed"], config={"artifact_routing": routing}
    )
    assert set(exp.log_artifact("pic.png", wait=True)) == {"recorder"}
    assert set(exp.log_artifact("w.ckpt", wait=True)) == {"local", "typed"}  # typed takes it when told to
    assert set(exp.log_artifact("notes.md", wait=True)) == {"local", "recorder"}  # not overridden: declared


def test_bad_routing_config_fails_at_start() -> None:
    with pytest.raises(ConfigurationError, match="artifact_routing"):
        tracelet.start_logging("bad", config={"artifact_routing": {"pictures": ["local"]}})


def test_uploads_run_on_the_backend_worker_and_log_returns_before_delivery() -> None:
    _write("x.bin", b"x")
    exp = tracelet.start_logging("threads", backend=["slow", "recorder"], config={"slow_stop_timeout": 5})
    exp.log_metric("loss", 1.0, 0)  # the slow backend sleeps 1 s on this batch before it sees the artifact
    time.sleep(0.1)
    results = exp.log_artifact("x.bin")
    # An order, not a duration: log_artifact returned while the slow backend was still in its 1 s batch.
    assert not results["slow"].done and "pending" in repr(results["slow"])  # neither waits for the backend
    assert results["slow"].wait(10) and results["recorder"].wait(10)
    assert record_for(exp.id, "slow")["artifact_threads"] == {"tracelet-slow"}
    assert threading.current_thread().name not in record_for(exp.id, "recorder")["artifact_threads"]


def test_success_status_and_error_read_right_after_log_artifact_are_the_backends_answer() -> None:
    # No wait=True: reading the outcome of a pending result waits for it, as reading its uri does.
    _write("ok.pt", b"ok")
    exp = tracelet.start_logging("outcome", backend=["local", "failing"])
    results = exp.log_artifact("ok.pt")
    assert results["local"].success and results["local"].status == "ok" and results["local"].error is None
    failing = exp.log_artifact("ok.pt")["failing"]
    assert "artifact store unreachable" in (failing.error or "")
    assert failing.status == "failed" and not failing.success


def test_a_result_no_backend_answered_before_stop_fails_saying_how_to_deliver_it() -> None:
    _write("late.pt", b"late")
    exp = tracelet.start_logging("late", backend=["local", "slow"], config={"slow_stop_timeout": 0.2})
    exp.log_metric("loss", 1.0, 0)  # the slow backend sleeps 1 s on this batch: the artifact misses its stop
    time.sleep(0.1)
    result = exp.log_artifact("late.pt")["slow"]
    report = exp.stop()
    assert report is not None and report.backends["slow"].undelivered >= 1
    assert result.done  # settled by stop(), before it is read: reading it waits for nothing
    assert result.status == "failed" and not result.success and result.uri == ""
    assert f"tracelet sync {exp.id}" in (result.error or "")


def test_snapshots_are_immune_to_later_in_place_edits_replacement_and_deletion() -> None:
    src = _write("state.pt", b"A" * 1000)
    exp = tracelet.start_logging("snap", backend=["local", "slow"], config={"slow_stop_timeout": 5})
    exp.log_metric("loss", 1.0, 0)  # holds the slow backend past the edits below
    time.sleep(0.1)
    results = exp.log_artifact("state.pt")
    with open(src, "r+b") as f:  # in place: same inode, so a hard-linked snapshot would change too
        f.write(b"B" * 1000)
    assert results["local"].wait(10) and results["slow"].wait(10)
    stored = exp.get_artifact("state.pt")
    assert stored is not None and Path(stored.files[0].local_path).read_bytes() == b"A" * 1000
    assert record_for(exp.id, "slow")["artifact_contents"] == [{"state.pt": b"A" * 1000}]
    # A second version, then the source is deleted: both versions keep their bytes.
    exp.log_artifact("state.pt", wait=True)
    src.unlink()
    contents = [Path(a.files[0].local_path).read_bytes() for a in exp.list_artifacts()]
    assert contents == [b"A" * 1000, b"B" * 1000]


def test_unsafe_artifact_paths_and_missing_files_are_rejected_at_the_call() -> None:
    _write("f.txt", b"x")
    exp = tracelet.start_logging("safety", backend="local")
    with pytest.raises(ArtifactPathError, match="escape"):
        exp.log_file_artifact("f.txt", "../../outside.txt")
    with pytest.raises(ArtifactPathError, match="absolute"):
        exp.log_file_artifact("f.txt", "/tmp/abs.txt")
    with pytest.raises(FileNotFoundError):
        exp.log_artifact("missing.pth")
    with pytest.raises(FileNotFoundError):
        exp.create_artifact("m", ArtifactType.MODEL).add_file("missing.pth")
    assert exp.list_artifacts() == []
    assert not Path("outside.txt").exists()


def test_a_file_gone_between_add_file_and_log_artifact_raises_naming_the_artifact_and_the_cause() -> None:
    src = _write("gone.pt", b"g")
    exp = tracelet.start_logging("gone", backend="local")
    art = exp.create_artifact("best", ArtifactType.CHECKPOINT).add_file(str(src))
    src.unlink()
    with pytest.raises(FileNotFoundError, match=r"artifact 'best'.*removed or renamed after add_file") as caught:
        exp.log_artifact(art)
    assert caught.value.filename == str(src.resolve())
    assert exp.log_artifact(_write("next.pt", b"n"), wait=True)["local"].success  # the run goes on
    assert [a.name for a in exp.list_artifacts()] == ["next.pt"]


def test_log_file_artifact_legacy_paths() -> None:
    _write("run/out.csv", b"a,b")
    exp = tracelet.start_logging("legacy", backend="local")
    r = exp.log_file_artifact("run/out.csv", "tables/")
    assert r["local"].wait(10)
    got = exp.get_artifact("out.csv")
    assert got is not None and got.type is ArtifactType.DATASET and got.files[0].artifact_path == "tables/out.csv"
    exp.log_file_artifact("run/out.csv", "renamed.csv")
    assert exp.get_artifact("out.csv").files[0].artifact_path == "renamed.csv"  # type: ignore[union-attr]


def test_folder_paths_become_one_artifact() -> None:
    _write("outputs/a.txt", b"a")
    _write("outputs/sub/b.txt", b"b")
    exp = tracelet.start_logging("folder", backend="local")
    exp.log_artifact("outputs", wait=True)
    got = exp.get_artifact("outputs")
    assert got is not None and sorted(f.artifact_path for f in got.files) == ["a.txt", "sub/b.txt"]


def test_without_the_local_store_snapshots_are_temporary_and_removed_after_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACELET_LOCAL_STORE", "false")
    _write("x.bin", b"x")
    exp = tracelet.start_logging("nolocal", backend="recorder")
    results = exp.log_artifact("x.bin", wait=True)
    assert results["recorder"].success
    staging = exp._artifacts._staging
    assert staging is not None and not staging.is_relative_to(Path.cwd())
    assert list(staging.iterdir()) == []  # delivered everywhere: the snapshot is gone
    assert exp.get_artifact("x.bin") is None  # the recorder cannot read artifacts back
    tracelet.stop_logging()
    assert not staging.exists()


def test_model_objects_round_trip_through_the_store() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(2, 1)
    exp = tracelet.start_logging("model", backend="local")
    art = exp.create_artifact("net", ArtifactType.MODEL).add_model(model)
    exp.log_artifact(art, wait=True)
    with torch.no_grad():
        model.weight.fill_(7.0)  # training goes on: the logged state must not follow
    got = exp.get_artifact("net", load=True)
    assert got is not None and got.metadata["models"][0]["framework"] == "pytorch"
    assert not torch.equal(got.objects[0].obj["weight"], model.weight.detach())


def test_before_start_and_after_stop(caplog: pytest.LogCaptureFixture) -> None:
    _write("x.bin", b"x")
    exp = Experiment("lifecycle", backend=["local"], artifacts=True)
    assert exp.config.enable_artifacts is True
    assert exp.create_artifact("a", ArtifactType.CUSTOM).name == "a"  # builders need no running experiment
    with pytest.raises(tracelet.TraceletException, match="start"):
        exp.log_artifact("x.bin")
    exp.start()
    exp.log_artifact("x.bin")
    exp.stop()
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        assert exp.log_artifact("x.bin") == {}
    assert any("after the experiment stopped" in r.getMessage() for r in caplog.records)
    assert exp.get_artifact("x.bin").version == "v1"  # type: ignore[union-attr]  # the store stays readable


def test_local_store_reads_artifacts_of_a_finished_run(tmp_path) -> None:
    (tmp_path / "weights.pt").write_bytes(b"weights-v1")
    with tracelet.start_logging("readback", backend="local") as exp:
        exp.log_artifact("weights.pt")
        (tmp_path / "weights.pt").write_bytes(b"weights-v2")
        exp.log_artifact("weights.pt")
    run = open_run(exp.id)
    assert [a.version for a in run.artifacts()] == ["v1", "v2"]
    latest = run.artifact("weights.pt")
    assert latest is not None and latest.version == "v2"
    with open(latest.files[0].local_path, "rb") as f:
        assert f.read() == b"weights-v2"
    assert run.artifact("weights.pt", "v1").files[0].size_bytes == len(b"weights-v1")


def test_backends_snapshot_their_own_form_of_live_objects_at_log_time() -> None:
    config = {"artifact_routing": {"config": ["recorder"]}}  # explicit routing must not skip the snapshot
    with tracelet.start_logging("own-form", backend=["recorder"], config=config) as exp:
        live = {"lr": 0.1}
        art = exp.create_artifact("hp", ArtifactType.CONFIG).add_object(live, "hp")
        results = exp.log_artifact(art)
        live["lr"] = 0.5  # a later change does not reach what was logged
        assert results["recorder"].wait(10)
        plain_file = exp.create_artifact("nothing-live", ArtifactType.CONFIG)
        exp.log_artifact(plain_file, wait=True)
    snaps = record_for(exp.id, "recorder")["snapshots"]
    assert snaps[0]["text"] == "{'lr': 0.1}"
    assert snaps[0]["thread"] == threading.main_thread().name  # taken on the caller's thread
    assert snaps[1] is None
