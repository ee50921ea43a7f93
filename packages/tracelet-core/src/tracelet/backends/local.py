"""The built-in `local` backend: the run journal under TRACELET_DIR is the record.

Metrics, params and tags need no delivery here: the orchestrator's dispatcher writes every event to the
run's journal before any backend sees it. This plugin opens and closes the run's folder and keeps artifacts.
"""

from __future__ import annotations

from typing import Any

from tracelet.core.plugins import PluginMetadata, PluginType, hookimpl
from tracelet.core.records import RunContext


class LocalBackend:
    """Append-only journal per run under ./tracelet-runs/<project>/<run-id>/."""

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        from tracelet import __version__

        return PluginMetadata(
            name="local",
            version=__version__,
            description="Embedded local store: a journal per run under TRACELET_DIR",
            type=PluginType.BACKEND,
            distribution="tracelet",
            capabilities=["metrics", "params", "tags", "artifacts"],
        )

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        return {"path": run.run_dir}
