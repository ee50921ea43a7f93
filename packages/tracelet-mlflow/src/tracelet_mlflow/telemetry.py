"""MLflow's usage telemetry stays off for runs Tracelet starts, unless the user turns it on.

MLflow 3 reports usage to its maintainers unless `MLFLOW_DISABLE_TELEMETRY` / `DO_NOT_TRACK` say otherwise.
Tracelet promises that nothing leaves the machine unless the tracking URI points elsewhere, so before mlflow is
imported by a run we set `MLFLOW_DISABLE_TELEMETRY=true`, and we drop a client mlflow may already have made.
It stays on only when the user decided: `config={"mlflow_telemetry": True}`, or `MLFLOW_DISABLE_TELEMETRY` /
`DO_NOT_TRACK` set in the environment by the user.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tracelet.plugin import parse_bool


def wanted(config: dict[str, Any]) -> bool | None:
    """The telemetry choice to apply: True/False from config `telemetry` when given; None when the user's own
    environment already decides (`MLFLOW_DISABLE_TELEMETRY` or `DO_NOT_TRACK` is set), so it is left alone;
    otherwise False, Tracelet's default (nothing leaves the machine unasked)."""
    if "telemetry" in config:
        return parse_bool(config["telemetry"])
    if "MLFLOW_DISABLE_TELEMETRY" in os.environ or "DO_NOT_TRACK" in os.environ:
        return None  # the user's own setting already rules mlflow; leave it alone
    return False


def apply(config: dict[str, Any]) -> None:
    """Call before `import mlflow` in a run; safe to call again."""
    choice = wanted(config)
    if choice is None:
        return
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "false" if choice else "true"
    if "mlflow" in sys.modules:  # imported earlier, perhaps with telemetry on: re-decide now
        try:
            from mlflow.telemetry.client import get_telemetry_client, set_telemetry_client
        except ImportError:
            return
        if (get_telemetry_client() is not None) != choice:
            set_telemetry_client()
