"""The checkpoint switch: which automatically captured files are logged, and as what type.

Switch: `ExperimentConfig.track_checkpoints` (no global setting: on unless an `ExperimentConfig` turns it off).

A captured file is a checkpoint when its extension says so (`.pt`, `.pth`, `.ckpt`) or its name contains
`checkpoint` or `ckpt` (`checkpoint-500.bin`, `epoch=3.ckpt`). With the switch on, the artifact watcher and
the torch plugin's `torch.save` capture log such files typed `checkpoint`; with it off they are not logged at
all (other watched files still are). Files logged explicitly with `log_artifact` are never filtered.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tracelet.core.artifacts.kinds import ArtifactType

_NAME = re.compile(r"checkpoint|ckpt", re.IGNORECASE)
_SUFFIXES = frozenset({".pt", ".pth", ".ckpt"})


def is_checkpoint(path: str | Path) -> bool:
    """Whether a captured file looks like a training checkpoint (see the module docstring)."""
    p = Path(path)
    return p.suffix.lower() in _SUFFIXES or bool(_NAME.search(p.name))


def captured_file_type(owner: Any, path: str | Path, guessed: ArtifactType) -> ArtifactType | None:
    """The type to log an automatically captured file as, or None when the run must not log it.

    :param owner: the run, or its `ExperimentConfig` (its `track_checkpoints` decides).
    :param path: the captured file.
    :param guessed: the type its extension (or the capturing plugin) suggests.
    """
    if not is_checkpoint(path) and guessed is not ArtifactType.CHECKPOINT:
        return guessed
    config = getattr(owner, "config", owner)
    return ArtifactType.CHECKPOINT if getattr(config, "track_checkpoints", True) else None
