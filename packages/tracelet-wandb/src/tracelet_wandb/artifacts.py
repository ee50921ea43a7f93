"""Tracelet artifacts as W&B artifacts, and reading them back.

Each logged Tracelet artifact becomes one `wandb.Artifact` whose type is the Tracelet ArtifactType's value
("model", "checkpoint", "dataset", ...) and whose contents are laid out like a Tracelet version folder:

    manifest.json          the Tracelet manifest (type, description, files, objects, references, checksums)
    files/<artifact_path>  the artifact's files
    objects/<name>.<ext>   its serialized objects (json / yaml / pickle / torch state_dict of a model)
    references/<i>         each external reference, as a W&B reference entry (`add_reference`, not uploaded);
                           a scheme W&B cannot handle in this environment (`s3://` without boto3, ...) stays in
                           manifest.json only, listed in the metadata key `tracelet_references_in_manifest_only`

Tracelet numbers the versions of a name v1, v2, ... in logging order; each W&B artifact carries its Tracelet
version as the alias `tracelet-v<N>` (W&B's own `v0, v1, ...` count distinct contents, so logging the same
content twice gives one W&B version with two Tracelet aliases), plus `latest`. Names W&B refuses (it allows
letters, digits, `-`, `_`, `.`, at most 128 characters) are mapped: other characters become `_` and a short
hash of the original is appended, so distinct names stay distinct artifacts; the original name is kept in the
artifact's metadata and manifest.

A copy of every version (hard links to the run's snapshots where possible) stays in the backend's folder, so
an offline run can answer `get_artifact` / `list_artifacts` from it; online they ask W&B.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from tracelet.plugin import (
    MANIFEST,
    ArtifactType,
    PlannedVersion,
    TraceletArtifact,
    VersionBook,
    folder_versions,
    load,
    load_version,
    load_versions,
    plan,
    read,
    write_version,
)

logger = logging.getLogger("tracelet.wandb")

ALIAS_PREFIX = "tracelet-"
NAME_MAX = 128
_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def wandb_name(name: str) -> str:
    """The W&B artifact name for a Tracelet artifact name (deterministic; valid names pass untouched).

    A mapped name ends in a short hash of the original, so two names never share one W&B artifact: without it
    "模型" and "数据" would both be `__` (and W&B refuses a second type for one artifact name), and the
    `tracelet-v1` alias of "my model" would move to "my_model"'s version.
    """
    if not _BAD.search(name) and len(name) <= NAME_MAX:
        return name
    suffix = "-" + hashlib.sha1(name.encode()).hexdigest()[:8]
    return _BAD.sub("_", name)[: NAME_MAX - len(suffix)] + suffix


def alias_for(version: str) -> str:
    return f"{ALIAS_PREFIX}{version}"


class LocalCopy:
    """Tracelet-layout copies of what this backend logged: `<root>/<name>/v<N>/manifest.json, files/, ...`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.book = VersionBook(self.versions)

    def versions(self, name: str) -> list[int]:
        return folder_versions(self.root / name)

    def version_for(self, artifact: TraceletArtifact) -> str:
        return self.book.version_for(artifact)

    def logged(self, artifact: TraceletArtifact) -> None:
        """`artifact` reached W&B: the next log of the same object gets the next version."""
        self.book.stored(artifact)

    def write(self, artifact: TraceletArtifact, version: str, **extra: Any) -> tuple[Path, PlannedVersion]:
        """Lay out `artifact` as `version`; returns the version folder and the plan (manifest written last)."""
        planned = plan(artifact, version, **extra)
        return write_version(planned, self.root / artifact.name / version), planned

    def get(self, name: str, version: str) -> TraceletArtifact | None:
        return load_version(self.root, name, version)

    def list(self, type_filter: ArtifactType | None) -> list[TraceletArtifact]:
        return load_versions(self.root, type_filter)


def build(wandb: Any, artifact: TraceletArtifact, version: str, folder: Path) -> Any:
    """A `wandb.Artifact` holding the version folder `folder` (written by LocalCopy.write)."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    metadata = {
        "tracelet_name": artifact.name,
        "tracelet_version": version,
        **({"tracelet_metadata": manifest.get("metadata")} if manifest.get("metadata") else {}),
    }
    wb = wandb.Artifact(
        wandb_name(artifact.name),
        type=artifact.type.value,
        description=artifact.description or None,
        metadata=metadata,
    )
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        # "immutable": the files are the run's snapshots (never rewritten), so W&B need not copy them again.
        wb.add_file(str(path), name=path.relative_to(folder).as_posix(), policy="immutable")
    unreferenced = []
    for i, ref in enumerate(artifact.references):
        try:
            wb.add_reference(ref.uri, name=f"references/{i}", checksum=False)
        except Exception as exc:  # a scheme W&B cannot handle here (s3:// without boto3, ...): the manifest has it
            unreferenced.append(ref.uri)
            logger.warning(
                "tracelet-wandb: reference %s of artifact %r is recorded in its manifest.json only (W&B: %s)",
                ref.uri,
                artifact.name,
                exc,
            )
    if unreferenced:
        wb.metadata = {**metadata, "tracelet_references_in_manifest_only": unreferenced}
    return wb


def from_download(folder: Path) -> TraceletArtifact | None:
    """A Tracelet artifact from a downloaded W&B artifact folder (None if it was not logged by Tracelet)."""
    if not (folder / MANIFEST).exists():
        return None
    return load(folder)


def from_manifest_text(text: str) -> TraceletArtifact:
    return read(json.loads(text))
