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
from pathlib import Path

from tracelet.core.artifacts.helpers import load_version, load_versions, write_version
from tracelet.core.artifacts.kinds import ArtifactType, to_artifact_type
from tracelet.core.artifacts.manifest import plan
from tracelet.core.artifacts.model import ArtifactResult, TraceletArtifact
from tracelet.core.artifacts.paths import check_artifact_name

LATEST = "latest"
_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


def store(root: Path, artifact: TraceletArtifact) -> ArtifactResult:
    """Store `artifact` (whose files are run-owned snapshots) as the next version of its name."""
    name = check_artifact_name(artifact.name)
    adir = root / name
    adir.mkdir(parents=True, exist_ok=True)
    existing = [int(m.group(1)) for e in os.listdir(adir) if (m := _VERSION_DIR.match(e))]
    number = max(existing, default=0) + 1
    version = f"v{number}"
    # Every version folder counts, complete or not, so a new version never replaces an existing folder.
    vdir = write_version(plan(artifact, version), adir / version)
    _write_latest(adir, version)
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
    return load_version(root, name, version)


def list_all(root: Path, type_filter: ArtifactType | str | None = None) -> list[TraceletArtifact]:
    """Every stored version of every artifact (by name, then version), optionally of one type."""
    return load_versions(root, to_artifact_type(type_filter) if type_filter is not None else None)
