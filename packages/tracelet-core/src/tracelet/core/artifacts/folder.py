"""Versioned artifacts in a local folder: the local store keeps a run's artifacts this way in
`<run_dir>/artifacts/` (the run folder's layout is documented with the journal, `tracelet.core.engine.journal`).

Layout: version folders as `tracelet.core.artifacts.manifest` describes them, plus

    <root>/
        <name>/v1/ ...                  manifest.json, files/, objects/
        <name>/latest                   text file naming the newest version ("v2"), for people and scripts

Versions are assigned on the local backend's worker thread, which delivers artifacts in logging order, so
they follow the order of the `log_artifact` calls. A version folder is built under a hidden temporary name
and renamed into place once complete, so a reader (get/list on another thread) never sees half of one.
Stored files are hard links to the snapshots when possible (both are owned by the run and never rewritten in
place, so sharing the inode is safe and saves the copy), else copies.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tracelet.core.artifacts.kinds import ArtifactType, to_artifact_type
from tracelet.core.artifacts.manifest import MANIFEST, load, plan, resolve_version
from tracelet.core.artifacts.model import ArtifactResult, TraceletArtifact
from tracelet.core.artifacts.paths import ArtifactPathError, check_artifact_name

LATEST = "latest"
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


def _versions(artifact_dir: Path) -> list[int]:
    """Complete versions (folders with a manifest), ascending."""
    try:
        entries = list(os.scandir(artifact_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for e in entries:
        m = _VERSION_DIR.match(e.name)
        if m and os.path.exists(os.path.join(e.path, MANIFEST)):
            found.append(int(m.group(1)))
    return sorted(found)


def _link_or_copy(src: str, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not supported
        shutil.copy2(src, dst)


def store(root: Path, artifact: TraceletArtifact) -> ArtifactResult:
    """Store `artifact` (whose files are run-owned snapshots) as the next version of its name."""
    name = check_artifact_name(artifact.name)
    adir = root / name
    adir.mkdir(parents=True, exist_ok=True)
    existing = [int(m.group(1)) for e in os.listdir(adir) if (m := _VERSION_DIR.match(e))]
    number = max(existing, default=0) + 1
    version = f"v{number}"
    tmp = adir / f".{version}.partial"
    shutil.rmtree(tmp, ignore_errors=True)  # left over from an attempt that failed midway
    tmp.mkdir()
    planned = plan(artifact, version)
    for src, rel in planned.transfers:
        _link_or_copy(src, tmp / rel)
    (tmp / MANIFEST).write_text(planned.manifest_json(), encoding="utf-8")
    os.rename(tmp, adir / version)
    _write_latest(adir, version)
    vdir = adir / version
    return ArtifactResult(
        backend="local",
        uri=vdir.resolve().as_uri(),
        version=version,
        metadata={
            "path": str(vdir),
            "size_bytes": artifact.size_bytes,
            "checksums": {f.artifact_path: f.checksum for f in artifact.files},
        },
    )


def _write_latest(adir: Path, version: str) -> None:
    tmp = adir / f".{LATEST}.tmp"
    try:
        tmp.write_text(version + "\n", encoding="utf-8")
        os.replace(tmp, adir / LATEST)
    except OSError:
        pass  # a convenience for people; readers resolve "latest" from the version folders


def get(root: Path, name: str, version: str = "latest") -> TraceletArtifact | None:
    """The artifact `name` at `version` ("latest", "v2", "2"), or None when absent."""
    try:
        adir = root / check_artifact_name(name)
    except ArtifactPathError:
        return None
    number = resolve_version(version, _versions(adir))
    return None if number is None else load(adir / f"v{number}")


def list_all(root: Path, type_filter: ArtifactType | str | None = None) -> list[TraceletArtifact]:
    """Every stored version of every artifact (by name, then version), optionally of one type."""
    wanted = to_artifact_type(type_filter) if type_filter is not None else None
    out: list[TraceletArtifact] = []
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return out
    for name in names:
        for number in _versions(root / name):
            artifact = load(root / name / f"v{number}")
            if wanted is None or artifact.type is wanted:
                out.append(artifact)
    return out
