"""Artifact types: the semantic kinds that backends and `artifact_routing` route on, and guessing one from a
file's extension (for plain paths and watched folders)."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any


class ArtifactType(enum.Enum):
    """Semantic artifact types; backends and `artifact_routing` route on them."""

    # ML Assets
    MODEL = "model"
    CHECKPOINT = "checkpoint"
    WEIGHTS = "weights"
    # Data Assets
    DATASET = "dataset"
    SAMPLE = "sample"
    # Media Assets
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    # Analysis Assets
    VISUALIZATION = "viz"
    REPORT = "report"
    # Configuration Assets
    CONFIG = "config"
    CODE = "code"
    # General Assets
    CUSTOM = "custom"


def to_artifact_type(value: Any) -> ArtifactType:
    """An ArtifactType from a member, its value ("viz") or its name ("VISUALIZATION")."""
    if isinstance(value, ArtifactType):
        return value
    if isinstance(value, str):
        try:
            return ArtifactType(value.lower())
        except ValueError:
            member = ArtifactType.__members__.get(value.upper())
            if member is not None:
                return member
    choices = ", ".join(t.value for t in ArtifactType)
    raise ValueError(f"unknown artifact type {value!r}; expected one of: {choices}")


EXTENSION_TYPES: dict[str, ArtifactType] = {
    **dict.fromkeys((".pt", ".pth", ".ckpt"), ArtifactType.CHECKPOINT),
    **dict.fromkeys((".safetensors", ".bin", ".h5", ".weights"), ArtifactType.WEIGHTS),
    **dict.fromkeys((".onnx", ".pkl", ".joblib", ".pb", ".tflite", ".keras", ".mlmodel"), ArtifactType.MODEL),
    **dict.fromkeys(
        (".csv", ".tsv", ".parquet", ".npy", ".npz", ".arrow", ".tfrecord", ".jsonl"), ArtifactType.DATASET
    ),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"), ArtifactType.IMAGE),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg", ".m4a"), ArtifactType.AUDIO),
    **dict.fromkeys((".mp4", ".avi", ".mov", ".mkv", ".webm"), ArtifactType.VIDEO),
    **dict.fromkeys((".svg",), ArtifactType.VISUALIZATION),
    **dict.fromkeys((".html", ".htm", ".ipynb", ".pdf", ".md"), ArtifactType.REPORT),
    **dict.fromkeys((".yaml", ".yml", ".json", ".toml", ".ini", ".cfg"), ArtifactType.CONFIG),
    **dict.fromkeys((".py", ".sh"), ArtifactType.CODE),
}


def guess_type(path: str | os.PathLike[str]) -> ArtifactType:
    """The artifact type a file's extension suggests; CUSTOM when it suggests none."""
    return EXTENSION_TYPES.get(Path(path).suffix.lower(), ArtifactType.CUSTOM)
