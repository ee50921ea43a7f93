"""The built-in `local` backend: the run journal under TRACELET_DIR is the record.

Metrics, params, tags and summary values need no delivery here: the orchestrator's dispatcher writes every event to the
run's journal before any backend sees it. This plugin opens and closes the run's folder and keeps artifacts
(versioned per run; the run folder's layout is documented in `tracelet.core.engine.journal`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet.core.contract.records import RunContext
from tracelet.core.plugins import PluginMetadata, hookimpl
from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from tracelet.core.artifacts import ArtifactResult, ArtifactType, TraceletArtifact


def _root(run: RunContext) -> Path:
    if run.run_dir is None:
        raise ConfigurationError("the local backend keeps artifacts in the run folder, but the local store is off")
    from tracelet.core.engine.journal import artifacts_root

    return artifacts_root(run.run_dir)


class LocalBackend:
    """Append-only journal per run under ./tracelet-runs/<project>/<run-id>/."""

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="Embedded local store: a journal per run under TRACELET_DIR",
            capabilities=["metrics", "params", "tags", "artifacts"],
        )

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        # The journal is this store's record of metrics, params and tags: counted delivered, not "no hook".
        self.journal_record: tuple[str, ...] = (
            ("metrics", "params", "tags", "summary") if run.run_dir is not None else ()
        )
        return {"path": run.run_dir}

    # Artifacts: every type is accepted (no backend_accepts_artifact), every file is stored, never referenced.
    @hookimpl
    def backend_log_artifact(self, artifact: TraceletArtifact, run: RunContext) -> ArtifactResult:
        from tracelet.core.artifacts import folder

        return folder.store(_root(run), artifact)

    @hookimpl
    def backend_get_artifact(self, name: str, version: str, run: RunContext) -> TraceletArtifact | None:
        from tracelet.core.artifacts import folder

        return folder.get(_root(run), name, version)

    @hookimpl
    def backend_list_artifacts(self, type_filter: ArtifactType | None, run: RunContext) -> list[TraceletArtifact]:
        from tracelet.core.artifacts import folder

        return folder.list_all(_root(run), type_filter)
