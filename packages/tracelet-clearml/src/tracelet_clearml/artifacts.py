"""Tracelet artifacts as ClearML task artifacts, and models as ClearML output models.

Each logged artifact version becomes one ClearML artifact named `<name>/v<N>`, uploaded with
`Task.upload_artifact` from a folder laid out like every Tracelet store (ClearML archives it as a zip):

    manifest.json          the artifact (type, description, files, objects, references, metadata, checksums)
    files/<artifact_path>  its files
    objects/<object file>  its serialized objects

The manifest is also the artifact's ClearML metadata (key `tracelet_manifest`), so listing reads no archive.
Types `model`, `checkpoint` and `weights` also register a ClearML **output model** named after the artifact,
whose weights are the artifact's first model object (`add_model`), else its first file; the model shows in
ClearML's model registry and `OutputModel` tooling. References are kept in the manifest only.

Versions follow log order: one worker thread per backend delivers artifacts in the order of `log_artifact`.
A retry of the same artifact (same name and creation time) reuses its version, and ClearML replaces an
artifact of the same name, so a retry never adds a version.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from tracelet.plugin import (
    ArtifactResult,
    ArtifactType,
    TraceletArtifact,
    VersionBook,
    find_version,
    link_or_copy,
    load,
    plan,
    read,
    write_version,
)

logger = logging.getLogger("tracelet.clearml")

MANIFEST_KEY = "tracelet_manifest"
MODEL_TYPES = frozenset({ArtifactType.MODEL, ArtifactType.CHECKPOINT, ArtifactType.WEIGHTS})
_KEY = re.compile(r"^(?P<name>.+)/v(?P<number>[1-9][0-9]*)$")
# Tracelet framework names -> ClearML's `Framework` strings (others: ClearML infers from the file).
FRAMEWORKS = {"pytorch": "PyTorch", "sklearn": "ScikitLearn", "tensorflow": "TensorFlow", "keras": "Keras"}


class ArtifactStore:
    """Reads and writes the Tracelet artifacts of one ClearML task."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.book = VersionBook(self.versions)

    # -- writing ---------------------------------------------------------------------------------------------
    def store(self, artifact: TraceletArtifact) -> ArtifactResult:
        version = self.book.version_for(artifact)
        key = f"{artifact.name}/{version}"
        planned = plan(artifact, version)
        model = self._model(artifact, version, planned.transfers) if artifact.type in MODEL_TYPES else None
        if model is not None:
            planned.manifest["clearml_model"] = model
        with tempfile.TemporaryDirectory(prefix="tracelet-clearml-") as tmp:
            folder = write_version(planned, Path(tmp) / f"{artifact.name}-{version}")
            ok = self.task.upload_artifact(
                key,
                artifact_object=str(folder),
                metadata={MANIFEST_KEY: planned.manifest_json()},
                wait_on_upload=True,  # the staging folder goes away after this call
            )
        if not ok:
            raise RuntimeError(f"ClearML did not store artifact {key!r}")
        stored = self.task.artifacts.get(key)
        self.book.stored(artifact)
        references = [r.uri for r in artifact.references]
        return ArtifactResult(
            backend="clearml",
            uri=str(getattr(stored, "url", "") or ""),
            version=version,
            metadata={
                "task_id": str(self.task.id),
                "artifact": key,
                "size_bytes": artifact.size_bytes,
                "references": references,
                **({"model_id": model["id"], "model_url": model["url"]} if model else {}),
            },
        )

    def _model(
        self, artifact: TraceletArtifact, version: str, transfers: list[tuple[str, str]]
    ) -> dict[str, str] | None:
        """Register the weights as a ClearML output model; None when the artifact has no file to point at."""
        weights = _weights_file(artifact, transfers)
        if weights is None:
            return None
        from clearml import OutputModel

        models = artifact.metadata.get("models") or []
        framework = FRAMEWORKS.get(str(models[0].get("framework"))) if models else None
        model = OutputModel(
            task=self.task,
            name=artifact.name,
            framework=framework,
            tags=["tracelet", artifact.type.value, version],
            comment=artifact.description or None,
        )
        with tempfile.TemporaryDirectory(prefix="tracelet-clearml-") as tmp:
            # ClearML keeps the file's own name: make it unique per version so versions do not overwrite.
            named = Path(tmp) / f"{artifact.name}-{version}-{Path(weights).name}"
            link_or_copy(weights, named)
            url = _update_weights(model, str(named))
        return {"id": str(model.id), "url": str(url or getattr(model, "url", "") or "")}

    # -- reading ---------------------------------------------------------------------------------------------
    def _entries(self) -> dict[str, tuple[str, int, Any]]:
        out = {}
        for key, entry in dict(self.task.artifacts).items():
            match = _KEY.match(str(key))
            if match and MANIFEST_KEY in (getattr(entry, "metadata", None) or {}):
                out[key] = (match["name"], int(match["number"]), entry)
        return out

    def versions(self, name: str) -> list[int]:
        return sorted(number for n, number, _ in self._entries().values() if n == name)

    def get(self, name: str, version: str = "latest") -> TraceletArtifact | None:
        """Fetch `name` at `version` into ClearML's local cache and return it with paths there."""
        number = find_version(name, version, self.versions)
        if number is None:
            return None
        entry = self.task.artifacts[f"{name}/v{number}"]
        local = entry.get_local_copy(extract_archive=True, raise_on_error=True)
        folder = Path(local)
        if not (folder / "manifest.json").exists():  # an archive of one folder level
            inner = [p for p in folder.iterdir() if (p / "manifest.json").exists()]
            if not inner:
                raise RuntimeError(f"ClearML artifact {name}/v{number} has no Tracelet manifest")
            folder = inner[0]
        return load(folder, drop=("clearml_model",))

    def manifests(self, type_filter: ArtifactType | None = None) -> list[TraceletArtifact]:
        """Every version of every artifact, from the manifests in the artifacts' metadata."""
        out = []
        for _name, _number, entry in sorted(self._entries().values(), key=lambda e: (e[0], e[1])):
            artifact = read(json.loads(entry.metadata[MANIFEST_KEY]), drop=("clearml_model",))
            if type_filter is None or artifact.type is type_filter:
                out.append(artifact)
        return out


def _weights_file(artifact: TraceletArtifact, transfers: list[tuple[str, str]]) -> str | None:
    """The artifact's first model object's file, else its first file."""
    by_rel = {rel: src for src, rel in transfers}
    for info in artifact.metadata.get("models") or []:
        for src, rel in transfers:
            if rel.startswith("objects/") and Path(rel).stem == info.get("object"):
                return src
    files = [src for src, rel in transfers if rel.startswith("files/")]
    if files:
        return files[0]
    return next(iter(by_rel.values()), None)


def _update_weights(model: Any, filename: str) -> str | None:
    """`OutputModel.update_weights`, working around ClearML 2.1's offline mode: there the public method fails
    (`'DummyModel' object has no attribute 'locked'`) before reaching its own offline branch, which stores
    the file in the session's `models/` folder; call that branch directly."""
    try:
        # Blocking: the staged file is removed right after this call.
        url: str | None = model.update_weights(weights_filename=filename, auto_delete_file=False, async_enable=False)
        return url
    except AttributeError:
        offline = getattr(model, "_update_weights_offline", None)
        if offline is None or not getattr(model, "_task", None) or not model._task.is_offline():
            raise
        url = offline(weights_filename=filename)
        return url
