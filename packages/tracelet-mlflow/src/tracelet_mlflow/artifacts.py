"""Tracelet artifacts in an MLflow run: versioned folders with a manifest, read back through a local cache.

Layout in the run's artifact root (the same shape as Tracelet's local store):

    <name>/v1/manifest.json          TraceletArtifact.to_dict(), paths relative to the version folder, plus
                                     "format", "format_version", "version", "stored_at" (and "mlflow_models")
    <name>/v1/files/<artifact_path>  the artifact's files
    <name>/v1/objects/<object file>  serialized objects (json / yaml / pickle / torch state_dict)
    <name>/v1/model/                 a torch module in MLflow's `mlflow.pytorch` format, when one was added
    <name>/v2/...

References are not uploaded: they are in the manifest (a JSON pointer) and in the run tag
`tracelet.artifact.<name>`, which summarises the latest version (a name MLflow refuses as a tag key, such as
Lightning's `epoch=0-step=4.ckpt`, is mapped by the rule of `names`, and the summary then holds the name). Versions follow log order (one worker
thread per backend delivers artifacts in the order of the `log_artifact` calls). The manifest is uploaded
last, so a version without one is incomplete and ignored by readers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tracelet.plugin import (
    MANIFEST,
    ArtifactResult,
    ArtifactType,
    TraceletArtifact,
    VersionBook,
    find_version,
    load,
    plan,
    read,
    version_number,
)
from tracelet_mlflow.names import map_name, prefixed
from tracelet_mlflow.params import fit_tag_value

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_DIR = "model"
ARTIFACT_TAG_PREFIX = "tracelet.artifact."


def save_torch_model(model: Any, folder: Path) -> bool:
    """Save a torch module in `mlflow.pytorch` format (pickled module: needs no input example). False when
    `model` is not a torch module or torch/mlflow.pytorch is unavailable."""
    try:
        import torch
    except ImportError:
        return False
    if not isinstance(model, torch.nn.Module):
        return False
    import mlflow.pytorch

    # "pickle": MLflow 3 defaults to "pt2" for recent torch, a traced graph that needs an input example.
    # Explicit requirements skip MLflow's requirement inference, which imports the model in a subprocess.
    mlflow.pytorch.save_model(
        model,
        str(folder),
        serialization_format="pickle",
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
    )
    return True


class ArtifactStore:
    """Reads and writes Tracelet artifacts of one MLflow run."""

    def __init__(self, client: MlflowClient, run_id: str, cache_dir: Path) -> None:
        self.client = client
        self.run_id = run_id
        self.cache_dir = cache_dir
        # Numbering continues after every version folder in the run, complete or not: none is overwritten.
        self.book = VersionBook(lambda name: self.versions(name, complete_only=False))

    # -- writing ---------------------------------------------------------------------------------------------
    def version_for(self, artifact: TraceletArtifact) -> str:
        return self.book.version_for(artifact)

    def store(self, artifact: TraceletArtifact, model_dirs: dict[str, Path] | None = None) -> ArtifactResult:
        """Upload `artifact` (files are run-owned snapshots) as the next version of its name."""
        client, run_id = self.client, self.run_id
        version = self.version_for(artifact)
        base = f"{artifact.name}/{version}"
        model_dirs = model_dirs or {}
        models = [
            {"object": obj, "path": MODEL_DIR if i == 0 else f"{MODEL_DIR}_{i + 1}", "flavor": "pytorch"}
            for i, obj in enumerate(model_dirs)
        ]
        planned = plan(artifact, version, **({"mlflow_models": models} if models else {}))
        for src, rel in planned.transfers:
            self._upload(src, f"{base}/{rel}")
        for model in models:
            client.log_artifacts(run_id, str(model_dirs[model["object"]]), f"{base}/{model['path']}")
        client.log_text(run_id, planned.manifest_json(), f"{base}/{MANIFEST}")
        references = [r.uri for r in artifact.references]
        summary: dict[str, Any] = {"version": version, "type": artifact.type.value, "path": base}
        if references:
            summary["references"] = references
        tag_name = map_name(artifact.name)  # a tag key takes fewer characters than a path: `=` of `epoch=0.ckpt`
        if tag_name != artifact.name:
            summary["name"] = artifact.name
        client.set_tag(run_id, prefixed(ARTIFACT_TAG_PREFIX, tag_name), fit_tag_value(json.dumps(summary)))
        uri = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{base}"
        self.book.stored(artifact)
        return ArtifactResult(
            backend="mlflow",
            uri=uri,
            version=version,
            metadata={
                "run_id": run_id,
                "path": base,
                "size_bytes": artifact.size_bytes,
                "references": references,
                **({"model_uri": f"runs:/{run_id}/{base}/{models[0]['path']}"} if models else {}),
            },
        )

    def _upload(self, local: str, dest: str) -> None:
        """Upload one file to run-relative path `dest` (MLflow keeps a file's own name, so rename if needed)."""
        target = PurePosixPath(dest)
        parent = str(target.parent)
        if Path(local).name == target.name:
            self.client.log_artifact(self.run_id, local, parent)
            return
        with tempfile.TemporaryDirectory() as tmp:
            renamed = Path(tmp) / target.name
            shutil.copyfile(local, renamed)
            self.client.log_artifact(self.run_id, str(renamed), parent)

    # -- reading ---------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(f.path for f in self.client.list_artifacts(self.run_id) if f.is_dir)

    def versions(self, name: str, complete_only: bool = True) -> list[int]:
        found = []
        for entry in self.client.list_artifacts(self.run_id, name):
            number = version_number(PurePosixPath(entry.path).name) if entry.is_dir else None
            if number is None:
                continue
            if complete_only and not any(
                PurePosixPath(f.path).name == MANIFEST for f in self.client.list_artifacts(self.run_id, entry.path)
            ):
                continue
            found.append(number)
        return sorted(found)

    def get(self, name: str, version: str = "latest") -> TraceletArtifact | None:
        """Download `name` at `version` into the local cache (once) and return it with local paths."""
        number = find_version(name, version, self.versions)  # the same rule as every store's
        if number is None:
            return None
        target = self.cache_dir / name / f"v{number}"
        if not (target / MANIFEST).exists():
            listing = self.client.list_artifacts(self.run_id, f"{name}/v{number}")
            if not any(PurePosixPath(f.path).name == MANIFEST for f in listing):
                return None
            partial = self.cache_dir / name / f".v{number}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            self.client.download_artifacts(self.run_id, f"{name}/v{number}", str(partial))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(partial / f"v{number}", target)
            shutil.rmtree(partial, ignore_errors=True)
        return load(target, drop=("mlflow_models",))

    def manifests(self, type_filter: ArtifactType | None = None) -> list[TraceletArtifact]:
        """Every complete version of every artifact, read from the manifests alone (nothing else downloaded)."""
        out: list[TraceletArtifact] = []
        for name in self.names():
            for number in self.versions(name):
                with tempfile.TemporaryDirectory(dir=self._ensure_cache()) as tmp:
                    text = self.client.download_artifacts(self.run_id, f"{name}/v{number}/{MANIFEST}", tmp)
                    data = json.loads(Path(text).read_text(encoding="utf-8"))
                artifact = read(data, drop=("mlflow_models",))
                if type_filter is None or artifact.type is type_filter:
                    out.append(artifact)
        return out

    def _ensure_cache(self) -> Path:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return self.cache_dir
