"""The `mlflow` config block (`config={"mlflow": {...}}` or `mlflow_<key>` entries), typed.

Parsed by `tracelet.plugin.BackendOptions`, as every backend's block is: `"false"`/`"0"`/`"no"` are booleans,
numbers may be strings, an unknown key is warned about with the closest valid one (it used to be ignored
silently). A field left None takes the default the README's Options table gives. Adding an option is adding a
field here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from tracelet.plugin import BackendOptions


@attrs.define
class Options(BackendOptions):
    plugin: ClassVar[str] = "tracelet-mlflow"
    # Names upstream tracelet's documentation uses in this block.
    aliases: ClassVar[Mapping[str, str]] = {"experiment": "experiment_name", "uri": "tracking_uri"}

    tracking_uri: str | None = None
    experiment_name: str | None = None  # the MLflow experiment; default: the run's project
    telemetry: bool | None = None
    stop_timeout: float | None = None
    http_retries: int | None = None
    request_timeout: float | None = None
    run_id: str | None = None
    group_wait: float | None = None
