"""Artifacts: typed, versioned bundles of files, objects and references, fanned out like metrics.

The package, by concern (each module's docstring states its guarantees):

- `kinds`: `ArtifactType` and guessing a type from a file's extension;
- `paths`: names and paths inside an artifact (never escaping it) and streaming hashes/copies;
- `serializers`: json / yaml / pickle / torch objects, written and read back;
- `detect`: recognising models by duck typing (no framework imports);
- `model`: `TraceletArtifact` and its parts, `ArtifactResult`;
- `manifest`: the version-folder layout every store uses, and the one rule resolving "latest"/"v2";
- `helpers`: the bookkeeping every store repeats (versions with retries, link-or-copy, writing a version folder,
  the name check and "latest"), exported to backends by `tracelet.plugin`;
- `folder`: that layout on a local filesystem (the local store's artifacts);
- `manager`: `log_artifact` and friends for one experiment (routing, snapshots, delivery);
- `watch`: folder watching for automatic artifacts.

`import tracelet.core.artifacts` loads the model only (not the manager or the watcher). The names below are
the public ones (the spec imports them from here).
"""

from tracelet.core.artifacts.detect import detect_framework
from tracelet.core.artifacts.kinds import (
    EXTENSION_TYPES,
    ArtifactType,
    guess_type,
    to_artifact_type,
)
from tracelet.core.artifacts.model import (
    FAILED,
    OK,
    PENDING,
    SERIALIZERS,
    UNSAFE_SERIALIZERS,
    ArtifactFile,
    ArtifactObject,
    ArtifactReference,
    ArtifactResult,
    ArtifactStatus,
    TraceletArtifact,
    load_object,
)
from tracelet.core.artifacts.paths import (
    ArtifactPathError,
    check_artifact_name,
    check_artifact_path,
    copy_hashing,
    sha256_file,
)

__all__ = [
    "EXTENSION_TYPES",
    "FAILED",
    "OK",
    "PENDING",
    "SERIALIZERS",
    "UNSAFE_SERIALIZERS",
    "ArtifactFile",
    "ArtifactObject",
    "ArtifactPathError",
    "ArtifactReference",
    "ArtifactResult",
    "ArtifactStatus",
    "ArtifactType",
    "TraceletArtifact",
    "check_artifact_name",
    "check_artifact_path",
    "copy_hashing",
    "detect_framework",
    "guess_type",
    "load_object",
    "sha256_file",
    "to_artifact_type",
]
