"""Placeholder until the artifact system lands."""
from __future__ import annotations

import enum


class ArtifactType(enum.Enum):
    MODEL = "model"
    CHECKPOINT = "checkpoint"
    WEIGHTS = "weights"
    DATASET = "dataset"
    SAMPLE = "sample"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    VISUALIZATION = "viz"
    REPORT = "report"
    CONFIG = "config"
    CODE = "code"
    CUSTOM = "custom"


class TraceletArtifact:
    def __init__(self, name, artifact_type, description=None):
        self.name, self.type, self.description = name, artifact_type, description


class ArtifactResult:
    pass
