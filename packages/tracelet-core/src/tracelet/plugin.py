"""Everything a plugin author needs, from one import: ``from tracelet.plugin import hookimpl, Metric, ...``.

This module is the public, stable surface for backend, framework and collector plugins, the way llm's
plugins import only ``llm``. Tracelet's own plugins (MLflow, W&B, ClearML, torch) import only from here, so
what they use is what a third-party author can use. Names are resolved on first access, so importing this
module stays as cheap as ``import tracelet``; the core's internal layout may change behind it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time names resolve through _EXPORTS
    from tracelet.core.artifacts.checkpoints import captured_file_type, is_checkpoint  # noqa: F401
    from tracelet.core.artifacts.kinds import ArtifactType  # noqa: F401
    from tracelet.core.artifacts.manifest import (  # noqa: F401
        MANIFEST,
        PlannedVersion,
        load,
        plan,
        read,
        resolve_version,
        version_number,
    )
    from tracelet.core.artifacts.model import (  # noqa: F401
        ArtifactFile,
        ArtifactObject,
        ArtifactReference,
        ArtifactResult,
        ArtifactStatus,
        TraceletArtifact,
        load_object,
    )
    from tracelet.core.contract.discovery import register_plugin, unregister_plugin  # noqa: F401
    from tracelet.core.contract.grouping import group_label  # noqa: F401
    from tracelet.core.contract.options import BackendOptions  # noqa: F401
    from tracelet.core.contract.records import Metric, RunContext, RunStatus  # noqa: F401
    from tracelet.core.contract.sources import SourceRun  # noqa: F401
    from tracelet.core.engine.backoff import is_permanent, retry  # noqa: F401
    from tracelet.core.plugins import PluginMetadata, PluginType, hookimpl  # noqa: F401
    from tracelet.exceptions import BackendError, ConfigurationError, TraceletException  # noqa: F401
    from tracelet.settings import parse_bool  # noqa: F401

# public name -> "module:attribute" where it is defined today.
_EXPORTS: dict[str, str] = {
    "hookimpl": "tracelet.core.plugins:hookimpl",
    "register_plugin": "tracelet.core.contract.discovery:register_plugin",
    "unregister_plugin": "tracelet.core.contract.discovery:unregister_plugin",
    "PluginMetadata": "tracelet.core.plugins:PluginMetadata",
    "PluginType": "tracelet.core.plugins:PluginType",
    "Metric": "tracelet.core.contract.records:Metric",
    "RunContext": "tracelet.core.contract.records:RunContext",
    "RunStatus": "tracelet.core.contract.records:RunStatus",
    "SourceRun": "tracelet.core.contract.sources:SourceRun",
    "ArtifactType": "tracelet.core.artifacts.kinds:ArtifactType",
    "TraceletArtifact": "tracelet.core.artifacts.model:TraceletArtifact",
    "ArtifactResult": "tracelet.core.artifacts.model:ArtifactResult",
    "ArtifactFile": "tracelet.core.artifacts.model:ArtifactFile",
    "ArtifactObject": "tracelet.core.artifacts.model:ArtifactObject",
    "ArtifactReference": "tracelet.core.artifacts.model:ArtifactReference",
    "load_object": "tracelet.core.artifacts.model:load_object",
    "ArtifactStatus": "tracelet.core.artifacts.model:ArtifactStatus",
    "MANIFEST": "tracelet.core.artifacts.manifest:MANIFEST",
    "PlannedVersion": "tracelet.core.artifacts.manifest:PlannedVersion",
    "plan": "tracelet.core.artifacts.manifest:plan",
    "read": "tracelet.core.artifacts.manifest:read",
    "load": "tracelet.core.artifacts.manifest:load",
    "version_number": "tracelet.core.artifacts.manifest:version_number",
    "resolve_version": "tracelet.core.artifacts.manifest:resolve_version",
    "retry": "tracelet.core.engine.backoff:retry",
    "is_permanent": "tracelet.core.engine.backoff:is_permanent",
    "parse_bool": "tracelet.settings:parse_bool",
    "BackendOptions": "tracelet.core.contract.options:BackendOptions",
    "group_label": "tracelet.core.contract.grouping:group_label",
    "captured_file_type": "tracelet.core.artifacts.checkpoints:captured_file_type",
    "is_checkpoint": "tracelet.core.artifacts.checkpoints:is_checkpoint",
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
