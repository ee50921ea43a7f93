"""The version-folder layout that stores keep artifacts in, shared by the local store and backends.

    <name>/v<N>/manifest.json          TraceletArtifact.to_dict() with paths relative to the version folder,
                                       plus "format", "format_version", "version", "stored_at"
    <name>/v<N>/files/<artifact_path>  the artifact's files
    <name>/v<N>/objects/<object file>  serialized objects

A store copies (or uploads) each pair of `planned.transfers` and then writes `planned.manifest` last, so a
version folder without a manifest is incomplete and readers skip it. Every store answers "latest", "v2" or
"2" the same way, through `resolve_version`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs

from tracelet.core.artifacts.model import TraceletArtifact
from tracelet.core.artifacts.paths import check_artifact_path

MANIFEST = "manifest.json"
FORMAT = "tracelet-artifact"
FORMAT_VERSION = 1
_STORE_KEYS = ("format", "format_version", "stored_at")


@attrs.define
class PlannedVersion:
    """What storing one artifact version takes: (local file, path in the version folder) pairs, and the
    manifest to write after them."""

    manifest: dict[str, Any]
    transfers: list[tuple[str, str]]

    def manifest_json(self) -> str:
        return json.dumps(self.manifest, indent=2, default=str)


def plan(artifact: TraceletArtifact, version: str, **extra: Any) -> PlannedVersion:
    """Lay out `artifact` (whose files and serialized objects are run-owned snapshots) as `version`."""
    manifest = artifact.to_dict()
    transfers: list[tuple[str, str]] = []
    for f in manifest["files"]:
        rel = "files/" + check_artifact_path(f["artifact_path"])
        transfers.append((f["local_path"], rel))
        f["local_path"] = rel
    for o in manifest["objects"]:
        o.pop("obj", None)  # the serialized file is the record; json values are read back from it
        if o.get("path"):
            rel = "objects/" + check_artifact_path(o["name"]) + Path(o["path"]).suffix
            transfers.append((o["path"], rel))
            o["path"] = rel
    manifest.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        version=version,
        stored_at=datetime.now(timezone.utc).isoformat(),
        **extra,
    )
    return PlannedVersion(manifest, transfers)


def read(data: dict[str, Any], version_dir: Path | None = None, drop: tuple[str, ...] = ()) -> TraceletArtifact:
    """An artifact from a manifest; with `version_dir`, its paths point at the stored copies there."""
    data = {k: v for k, v in data.items() if k not in _STORE_KEYS and k not in drop}
    if version_dir is not None:
        for f in data["files"]:
            f["local_path"] = str(version_dir / check_artifact_path(f["local_path"]))
        for o in data["objects"]:
            if o.get("path"):
                o["path"] = str(version_dir / check_artifact_path(o["path"]))
    return TraceletArtifact.from_dict(data)


def load(version_dir: Path, drop: tuple[str, ...] = ()) -> TraceletArtifact:
    """Read a stored version folder back."""
    return read(json.loads((version_dir / MANIFEST).read_text(encoding="utf-8")), version_dir, drop)


def version_number(version: Any) -> int | None:
    """ "v3", "3" or 3 -> 3; anything else None."""
    text = str(version).strip().lower()
    text = text[1:] if text.startswith("v") else text
    return int(text) if text.isdigit() and int(text) > 0 else None


def resolve_version(requested: Any, complete: list[int]) -> int | None:
    """The version number `requested` ("latest", "v2", "2", 2) names among a store's `complete` versions
    (ascending), or None when it names none of them."""
    if not complete:
        return None
    if str(requested).strip().lower() == "latest":
        return complete[-1]
    number = version_number(requested)
    return number if number in complete else None
