"""The `wandb` config block (`config={"wandb": {...}}` or `wandb_<key>` entries), typed.

Parsed by `tracelet.plugin.BackendOptions`, as every backend's block is: `"false"`/`"0"`/`"no"` are booleans
(`{"console": "false"}` means off), numbers may be strings, an unknown key is warned about with the closest
valid one. The README's Options table lists what each key does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from tracelet.plugin import BackendOptions

INIT_KEYS = ("project", "entity", "group", "job_type", "notes", "dir", "resume", "id")


@attrs.define
class Options(BackendOptions):
    plugin: ClassVar[str] = "tracelet-wandb"

    project: str | None = None
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    notes: str | None = None
    dir: str | None = None
    resume: bool | str | None = None
    id: str | None = None
    mode: str | None = None
    base_url: str | None = None
    console: bool | str | None = None  # W&B's console capture: off unless True/"auto"/"wrap"/"redirect"
    system_metrics: bool = False
    metadata: bool = False
    step_metric: str | None = None
    settings: dict[str, Any] = attrs.field(factory=dict)
    stop_timeout: float | None = None
    call_timeout: float | None = None
    init_timeout: float | None = None
    run_id: str | None = None
    tags: list[str] = attrs.field(factory=list)  # run tags beside the run's own (upstream's docs pass them here)
