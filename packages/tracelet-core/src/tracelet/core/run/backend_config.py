"""What each backend of a run is told: its slice of the experiment's config dict, inside a `RunContext`.

A config dict addresses backend `name` two ways (the spec's advanced example uses the second):
`{"<name>": {...}}` blocks, overlaid by `<name>_<key>` entries with the prefix removed. So
`config={"mlflow": {"tracking_uri": a}, "mlflow_tracking_uri": b}` gives MLflow `{"tracking_uri": b}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tracelet.core.contract.records import RunContext


def backend_config(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The part of a config dict addressed to backend `name`: its `{name: {...}}` block, then `name_*` keys."""
    block = options.get(name)
    config = dict(block) if isinstance(block, dict) else {}
    prefix = f"{name}_"
    config.update({k[len(prefix) :]: v for k, v in options.items() if k.startswith(prefix)})
    return config


def run_context(
    name: str,
    *,
    run_id: str,
    run_name: str,
    project: str,
    created_at: datetime,
    tags: list[str],
    options: dict[str, Any],
    run_dir: str | None,
    settings: Any,
    metadata: dict[str, Any] | None = None,
) -> RunContext:
    """The RunContext plugin `name` receives: the run's identity plus the config addressed to it."""
    return RunContext(
        run_id=run_id,
        name=run_name,
        project=project,
        created_at=created_at,
        tags=list(tags),
        config=backend_config(name, options),
        metadata=dict(metadata or {}),
        run_dir=run_dir,
        settings=settings,
    )
