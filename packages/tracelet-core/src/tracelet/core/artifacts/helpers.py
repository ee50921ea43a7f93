"""The bookkeeping every artifact store repeats, written once: a backend's artifact code is then its tracker calls.

Exported to plugins by `tracelet.plugin`; the local store (`folder`) uses them too. What they guarantee:

- `VersionBook`: versions `v1, v2, ...` per artifact name in the order they are asked for (a backend's one
  worker thread delivers artifacts in `log_artifact` order), continuing after the versions the tracker already
  holds; a retry of a failed store (the same artifact: same name and creation time) gets the version it was
  given, and once stored, logging the same object again is the next version.
- `link_or_copy`: a stored file is a hard link to the run's snapshot when the filesystem allows (the snapshot
  is owned by the run and never rewritten in place, so sharing the inode is safe and saves a copy), else a copy.
- `write_version`: a version folder is built under a hidden `.<version>.partial` name beside it, manifest last,
  and renamed into place, so a reader never sees half of one.
- `find_version`: the one rule for a requested version: a name no store could hold (`check_artifact_name`)
  finds nothing, and "latest" / "v2" / "2" resolve among the complete versions as `resolve_version` says.
- `folder_versions`, `load_version`, `load_versions`: reading the layout of `manifest` back from a local folder
  (a version without a manifest is incomplete and skipped).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tracelet.core.artifacts.kinds import ArtifactType
from tracelet.core.artifacts.manifest import MANIFEST, PlannedVersion, load, resolve_version
from tracelet.core.artifacts.model import TraceletArtifact
from tracelet.core.artifacts.paths import ArtifactPathError, check_artifact_name

_VERSION_DIR = re.compile(r"^v([1-9][0-9]*)$")


class VersionBook:
    """Assigns the versions of one run's artifacts, per name, for a store whose existing versions `existing`
    lists (called once per name, on its first artifact: e.g. a resumed run's versions in the tracker).

    Not locked: a backend calls it from its one worker thread.
    """

    def __init__(self, existing: Callable[[str], Iterable[int]]) -> None:
        self._existing = existing
        self._next: dict[str, int] = {}
        # (name, created_at) -> version of a store not finished yet, so a retry of a failed store reuses its
        # version; forgotten once stored, because logging the same artifact object again is a new version.
        self._assigned: dict[tuple[str, str], str] = {}

    @staticmethod
    def _key(artifact: TraceletArtifact) -> tuple[str, str]:
        return (artifact.name, artifact.created_at.isoformat())

    def version_for(self, artifact: TraceletArtifact) -> str:
        """The version ("v3") to store `artifact` as: the one it was given if a store of it is unfinished."""
        key = self._key(artifact)
        if key in self._assigned:
            return self._assigned[key]
        if artifact.name not in self._next:
            self._next[artifact.name] = max(self._existing(artifact.name), default=0) + 1
        version = f"v{self._next[artifact.name]}"
        self._next[artifact.name] += 1
        self._assigned[key] = version
        return version

    def stored(self, artifact: TraceletArtifact) -> None:
        """`artifact` reached the store: logging the same object again will be the next version."""
        self._assigned.pop(self._key(artifact), None)


def link_or_copy(src: str | os.PathLike[str], dst: Path) -> None:
    """Put the file `src` at `dst` (parents created): a hard link where possible, else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not supported
        shutil.copy2(src, dst)


def write_version(planned: PlannedVersion, folder: Path) -> Path:
    """Lay out `planned` (from `plan`) as the version folder `folder`, replacing one left there; returns it.

    Files are linked or copied, the manifest is written last, all under a hidden partial name that is renamed
    into place: a reader never sees half a version, and a failed attempt's leftovers are cleared by the next.
    """
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for src, rel in planned.transfers:
        link_or_copy(src, partial / rel)
    (partial / MANIFEST).write_text(planned.manifest_json(), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return folder


def find_version(name: str, requested: Any, versions: Callable[[str], list[int]]) -> int | None:
    """The version number `requested` ("latest", "v2", "2", 2) names among the complete versions of `name`
    (`versions(name)`, ascending), or None: also for a name no artifact can have (`versions` is not called)."""
    try:
        check_artifact_name(name)
    except ArtifactPathError:
        return None
    return resolve_version(requested, versions(name))


def folder_versions(name_dir: Path) -> list[int]:
    """The complete versions (folders `v<N>` holding a manifest) in a local artifact folder, ascending."""
    try:
        entries = list(os.scandir(name_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        match = _VERSION_DIR.match(entry.name)
        if match and os.path.exists(os.path.join(entry.path, MANIFEST)):
            found.append(int(match.group(1)))
    return sorted(found)


def load_version(root: Path, name: str, requested: Any = "latest") -> TraceletArtifact | None:
    """The artifact `name` at `requested` in a local folder of version folders (`<root>/<name>/v<N>`), or None."""
    number = find_version(name, requested, lambda n: folder_versions(root / n))
    return None if number is None else load(root / name / f"v{number}")


def load_versions(root: Path, type_filter: ArtifactType | None = None) -> list[TraceletArtifact]:
    """Every complete version of every artifact in a local folder (by name, then version), of one type if
    `type_filter` is given."""
    out: list[TraceletArtifact] = []
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for name in names:
        for number in folder_versions(root / name):
            artifact = load(root / name / f"v{number}")
            if type_filter is None or artifact.type is type_filter:
                out.append(artifact)
    return out
