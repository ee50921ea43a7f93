"""Paths inside artifacts and file hashing.

Names and paths are checked on the calling thread so that no artifact can ever write outside its own folder
in a store (no absolute paths, no `..`, no separators in names). Hashing and copying stream in fixed-size
chunks, so memory stays flat for any file size.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from tracelet.exceptions import TraceletException

CHUNK = 1 << 20  # streaming buffer for checksums and copies


class ArtifactPathError(TraceletException, ValueError):
    """An artifact name or path that is empty or would escape the artifact's root."""


def check_artifact_path(path: Any) -> str:
    """A path inside an artifact in normal form ("a/b.txt"); raises ArtifactPathError if it could escape."""
    if not isinstance(path, str) or not path.strip():
        raise ArtifactPathError(f"artifact path must be a non-empty string, got {path!r}")
    if "\x00" in path:
        raise ArtifactPathError(f"artifact path {path!r} contains a NUL byte")
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive:
        raise ArtifactPathError(f"artifact path {path!r} is absolute; it must be relative to the artifact root")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArtifactPathError(f"artifact path {path!r} contains '..' and could escape the artifact root")
    if not parts:
        raise ArtifactPathError(f"artifact path {path!r} names no file")
    return "/".join(parts)


_BAD_NAME = re.compile(r"[/\\\x00]")


def check_artifact_name(name: Any) -> str:
    """Artifact names become one folder in stores: no separators, not hidden, not '.'/'..'."""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactPathError(f"artifact name must be a non-empty string, got {name!r}")
    if _BAD_NAME.search(name) or name.startswith("."):
        raise ArtifactPathError(f"artifact name {name!r} must not contain '/', '\\' or NUL, nor start with '.'")
    return name


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(sha256 hex digest, size) of a file, read in fixed-size chunks."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def copy_hashing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> tuple[str, int]:
    """Copy `src` to `dst` in one streaming pass, returning the (sha256, size) of the bytes actually copied.

    Hashing the copy (not the source before or after) means the recorded checksum always describes the
    snapshot, even if the training script is still writing the source.
    """
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while n := fin.readinto(buf):
            chunk = view[:n]
            digest.update(chunk)
            fout.write(chunk)
            size += n
    try:
        os.utime(dst, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns))
    except OSError:
        pass
    return digest.hexdigest(), size
