"""Everything a plugin author needs, from one import: ``from tracelet.plugin import hookimpl, Metric, ...``.

This module is the public, stable surface for backend, framework and collector plugins, the way llm's
plugins import only ``llm``. Tracelet's own plugins (MLflow, W&B, ClearML, torch) import only from here, so
what they use is what a third-party author can use. Names are resolved on first access, so importing this
module stays as cheap as ``import tracelet``; the core's internal layout may change behind it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracelet.core.artifact_manifest import MANIFEST, PlannedVersion, load, plan, read, version_number
    from tracelet.core.artifacts import (
        ArtifactFile,
        ArtifactObject,
        ArtifactReference,
        ArtifactResult,
        ArtifactType,
        TraceletArtifact,
        load_object,
    )
    from tracelet.core.discovery import register_plugin, unregister_plugin
    from tracelet.core.plugins import PluginMetadata, PluginType, hookimpl
    from tracelet.core.records import Metric, RunContext, RunStatus
    from tracelet.exceptions import BackendError, ConfigurationError, TraceletException
    from tracelet.settings import parse_bool

# public name -> "module:attribute" where it is defined today.
_EXPORTS: dict[str, str] = {
    "hookimpl": "tracelet.core.plugins:hookimpl",
    "register_plugin": "tracelet.core.discovery:register_plugin",
    "unregister_plugin": "tracelet.core.discovery:unregister_plugin",
    "PluginMetadata": "tracelet.core.plugins:PluginMetadata",
    "PluginType": "tracelet.core.plugins:PluginType",
    "Metric": "tracelet.core.records:Metric",
    "RunContext": "tracelet.core.records:RunContext",
    "RunStatus": "tracelet.core.records:RunStatus",
    "ArtifactType": "tracelet.core.artifacts:ArtifactType",
    "TraceletArtifact": "tracelet.core.artifacts:TraceletArtifact",
    "ArtifactResult": "tracelet.core.artifacts:ArtifactResult",
    "ArtifactFile": "tracelet.core.artifacts:ArtifactFile",
    "ArtifactObject": "tracelet.core.artifacts:ArtifactObject",
    "ArtifactReference": "tracelet.core.artifacts:ArtifactReference",
    "load_object": "tracelet.core.artifacts:load_object",
    "MANIFEST": "tracelet.core.artifact_manifest:MANIFEST",
    "PlannedVersion": "tracelet.core.artifact_manifest:PlannedVersion",
    "plan": "tracelet.core.artifact_manifest:plan",
    "read": "tracelet.core.artifact_manifest:read",
    "load": "tracelet.core.artifact_manifest:load",
    "version_number": "tracelet.core.artifact_manifest:version_number",
    "parse_bool": "tracelet.settings:parse_bool",
    "TraceletException": "tracelet.exceptions:TraceletException",
    "ConfigurationError": "tracelet.exceptions:ConfigurationError",
    "BackendError": "tracelet.exceptions:BackendError",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, _, attr = _EXPORTS[name].partition(":")
    except KeyError:
        raise AttributeError(f"module 'tracelet.plugin' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
