"""The shared artifact bookkeeping (`tracelet.plugin`: `VersionBook`, `link_or_copy`, `write_version`,
`find_version`, `folder_versions`, `load_version`, `load_versions`), on real files in a temporary folder."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tracelet.plugin import (
    MANIFEST,
    ArtifactType,
    TraceletArtifact,
    VersionBook,
    find_version,
    folder_versions,
    link_or_copy,
    load_version,
    load_versions,
    plan,
    write_version,
)


def _artifact(tmp_path: Path, name: str = "weights", text: str = "w", kind: ArtifactType = ArtifactType.MODEL,
              at: datetime | None = None) -> TraceletArtifact:  # fmt: skip
    src = tmp_path / "src" / f"{name}-{text}.bin"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(text, encoding="utf-8")
    artifact = TraceletArtifact(name, kind)
    artifact.add_file(str(src), "model.bin")
    if at is not None:
        artifact.created_at = at
    return artifact


# -- VersionBook ---------------------------------------------------------------------------------------------
def test_versions_count_per_name_in_order_after_the_existing_ones(tmp_path: Path) -> None:
    asked: list[str] = []

    def existing(name: str) -> list[int]:
        asked.append(name)
        return [1, 4] if name == "resumed" else []

    book = VersionBook(existing)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    a1, a2 = (_artifact(tmp_path, "a", str(i), at=t0 + timedelta(seconds=i)) for i in range(2))
    b1 = _artifact(tmp_path, "b", "x", at=t0)
    r1 = _artifact(tmp_path, "resumed", "x", at=t0)
    assert [book.version_for(x) for x in (a1, b1, a2, r1)] == ["v1", "v1", "v2", "v5"]
    assert asked == ["a", "b", "resumed"]  # once per name: later versions are counted here


def test_a_retry_reuses_its_version_until_stored_then_the_same_object_is_the_next(tmp_path: Path) -> None:
    book = VersionBook(lambda name: [])
    artifact = _artifact(tmp_path)
    assert book.version_for(artifact) == "v1"
    assert book.version_for(artifact) == "v1"  # the store failed and is retried: same version
    book.stored(artifact)
    assert book.version_for(artifact) == "v2"  # logged again after it was stored: a new version
    book.stored(artifact)
    book.stored(artifact)  # twice is harmless


def test_an_unfinished_version_is_not_given_to_the_next_artifact(tmp_path: Path) -> None:
    book = VersionBook(lambda name: [])
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    failed, later = _artifact(tmp_path, at=t0), _artifact(tmp_path, text="2", at=t0 + timedelta(seconds=1))
    assert book.version_for(failed) == "v1"  # never stored (its retries ran out)
    assert book.version_for(later) == "v2"


# -- link_or_copy, write_version ----------------------------------------------------------------------------
def test_link_or_copy_links_where_it_can_and_creates_parents(tmp_path: Path) -> None:
    src = tmp_path / "snap.bin"
    src.write_bytes(b"abc")
    dst = tmp_path / "deep" / "er" / "copy.bin"
    link_or_copy(src, dst)
    assert dst.read_bytes() == b"abc"
    assert os.path.samefile(src, dst)  # one filesystem: a hard link, no second copy


def test_link_or_copy_copies_when_a_link_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "snap.bin"
    src.write_bytes(b"abc")

    def refuse(*_args: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    link_or_copy(src, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == b"abc"
    assert not os.path.samefile(src, tmp_path / "copy.bin")


def test_write_version_lays_out_files_and_manifest_and_replaces_leftovers(tmp_path: Path) -> None:
    artifact = _artifact(tmp_path, text="payload")
    root = tmp_path / "store"
    leftover = root / "weights" / ".v1.partial"
    leftover.mkdir(parents=True)
    (leftover / "junk").write_text("half of an earlier attempt", encoding="utf-8")
    folder = write_version(plan(artifact, "v1", extra="kept"), root / "weights" / "v1")
    assert folder == root / "weights" / "v1"
    assert (folder / "files" / "model.bin").read_text(encoding="utf-8") == "payload"
    assert '"extra": "kept"' in (folder / MANIFEST).read_text(encoding="utf-8")
    assert sorted(p.name for p in (root / "weights").iterdir()) == ["v1"]  # no partial folder stays
    # A second write of the same version (a retry) replaces the folder instead of mixing two attempts.
    (folder / "files" / "stale.txt").write_text("x", encoding="utf-8")
    write_version(plan(artifact, "v1"), folder)
    assert not (folder / "files" / "stale.txt").exists()


# -- find_version and reading a folder back -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("requested", "expected"),
    [("latest", 3), (" Latest ", 3), ("v2", 2), ("2", 2), (2, 2), ("v4", None), ("v0", None), ("x", None)],
)
def test_find_version_resolves_among_the_complete_versions(requested: object, expected: int | None) -> None:
    assert find_version("weights", requested, lambda name: [1, 2, 3]) == expected


@pytest.mark.parametrize("name", ["", " ", "a/b", "..", ".hidden", "a\\b"])
def test_find_version_finds_nothing_for_a_name_no_artifact_can_have(name: str) -> None:
    def versions(_name: str) -> list[int]:
        raise AssertionError("a bad name never reaches the store")

    assert find_version(name, "latest", versions) is None


def test_find_version_of_a_name_without_versions_is_none() -> None:
    assert find_version("weights", "latest", lambda name: []) is None


def test_a_folder_is_read_back_skipping_incomplete_versions(tmp_path: Path) -> None:
    root = tmp_path / "store"
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, (name, kind) in enumerate([("weights", ArtifactType.MODEL), ("weights", ArtifactType.MODEL),
                                      ("data", ArtifactType.DATASET)]):  # fmt: skip
        artifact = _artifact(tmp_path, name, str(i), kind, at=t0 + timedelta(seconds=i))
        write_version(plan(artifact, f"v{len(folder_versions(root / name)) + 1}"), root / name / f"v{i % 2 + 1}")
    (root / "weights" / "v3" / "files").mkdir(parents=True)  # an upload that never got its manifest
    (root / ".hidden").mkdir()
    assert folder_versions(root / "weights") == [1, 2]
    assert folder_versions(root / "missing") == []
    latest = load_version(root, "weights")
    assert latest is not None and latest.name == "weights"
    assert Path(latest.files[0].local_path).read_text(encoding="utf-8") == "1"  # v2, the newest complete one
    assert load_version(root, "weights", "v3") is None
    assert load_version(root, "../store", "latest") is None
    assert [(a.name, a.type) for a in load_versions(root)] == [
        ("data", ArtifactType.DATASET), ("weights", ArtifactType.MODEL), ("weights", ArtifactType.MODEL)]  # fmt: skip
    assert [a.name for a in load_versions(root, ArtifactType.DATASET)] == ["data"]
    assert load_versions(tmp_path / "nothing-here") == []
