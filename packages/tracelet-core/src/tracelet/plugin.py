"""Everything a plugin author needs, from one import: ``from tracelet.plugin import hookimpl, Metric, ...``.

This module is the public, stable surface for backend, framework and collector plugins, the way llm's
plugins import only ``llm``. Tracelet's own plugins (MLflow, W&B, ClearML, torch) and built-in collectors
import only from here, so what they use is what a third-party author can use; the core's internal layout may
change behind it.

It is static, so type checkers (``mypy --strict`` included: the distribution ships ``py.typed``) and IDEs see
exactly what is exported: each name below is imported from where it is defined and listed once in ``__all__``.
Importing it loads the core's contract and artifact model, never a tracker library, torch or numpy (a test
keeps it so); ``import tracelet`` does not import it at all.
"""

from __future__ import annotations

from tracelet.collectors import takes_artifacts
from tracelet.core.artifacts.checkpoints import captured_file_type, is_checkpoint
from tracelet.core.artifacts.helpers import (
    VersionBook,
    find_version,
    folder_versions,
    link_or_copy,
    load_version,
    load_versions,
    write_version,
)
from tracelet.core.artifacts.kinds import ArtifactType
from tracelet.core.artifacts.manifest import (
    MANIFEST,
    PlannedVersion,
    load,
    plan,
    read,
    resolve_version,
    version_number,
)
from tracelet.core.artifacts.model import (
    ArtifactFile,
    ArtifactObject,
    ArtifactReference,
    ArtifactResult,
    ArtifactStatus,
    TraceletArtifact,
    load_object,
)
from tracelet.core.contract.discovery import register_plugin, unregister_plugin
from tracelet.core.contract.grouping import group_label
from tracelet.core.contract.options import BackendOptions
from tracelet.core.contract.protocols import InstrumentedExperiment
from tracelet.core.contract.records import Metric, RunContext, RunStatus
from tracelet.core.contract.redact import redact, redact_argv, redact_mapping, redact_text
from tracelet.core.contract.sources import SourceRun
from tracelet.core.engine.backoff import is_permanent, retry
from tracelet.core.plugins import PluginMetadata, PluginType, hookimpl
from tracelet.exceptions import BackendError, ConfigurationError, TraceletException
from tracelet.settings import parse_bool

__all__ = [
    "MANIFEST",
    "ArtifactFile",
    "ArtifactObject",
    "ArtifactReference",
    "ArtifactResult",
    "ArtifactStatus",
    "ArtifactType",
    "BackendError",
    "BackendOptions",
    "ConfigurationError",
    "InstrumentedExperiment",
    "Metric",
    "PlannedVersion",
    "PluginMetadata",
    "PluginType",
    "RunContext",
    "RunStatus",
    "SourceRun",
    "TraceletArtifact",
    "TraceletException",
    "VersionBook",
    "captured_file_type",
    "find_version",
    "folder_versions",
    "group_label",
    "hookimpl",
    "is_checkpoint",
    "is_permanent",
    "link_or_copy",
    "load",
    "load_object",
    "load_version",
    "load_versions",
    "parse_bool",
    "plan",
    "read",
    "redact",
    "redact_argv",
    "redact_mapping",
    "redact_text",
    "register_plugin",
    "resolve_version",
    "retry",
    "takes_artifacts",
    "unregister_plugin",
    "version_number",
    "write_version",
]
