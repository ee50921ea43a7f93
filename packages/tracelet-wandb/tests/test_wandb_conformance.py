"""tracelet.testing's conformance kit, run against the W&B backend offline, read back from the `.wandb` file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracelet.testing import BackendConformance, RunUnderTest, TrackedRun
from tracelet_testsupport.wandb import read_run
from tracelet_wandb.backend import STEP_METRIC, WandbBackend

STATUSES = {0: "FINISHED", 1: "FAILED", 255: "KILLED"}


class TestWandbConformance(BackendConformance):
    backend = WandbBackend
    # W&B keeps one `_timestamp` per history row: the time the row's first point was logged. The other points
    # of that step were logged microseconds later, or a few milliseconds on a busy machine.
    timestamp_tolerance = 0.05
    stop_timeout = 120.0

    def backend_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"mode": "offline"}

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        wb = read_run(run.details["transaction_log"])
        metrics: dict[str, list[Any]] = {}
        for row in wb.history:
            for key, value in row.items():
                if not key.startswith("_") and key != STEP_METRIC:
                    metrics.setdefault(key, []).append((row[STEP_METRIC], value, row["_timestamp"]))
        config = wb.user_config()
        tags = config.pop("tags", {})
        config.pop("tracelet", None)
        names = [json.loads(a.metadata).get("tracelet_name", a.name) for a in wb.artifacts]
        return TrackedRun(metrics=metrics, params=config, tags=tags, status=STATUSES.get(wb.exit_code), artifacts=names)

    def import_source(self, run: RunUnderTest) -> tuple[str, dict[str, Any]]:
        return run.details["transaction_log"], {}

    def inject_fault(self, plugin: Any) -> None:
        """The second `run.log` of the next batch fails once, after the first row went out."""
        log = plugin.wb_run.log
        calls = {"n": 0}

        def flaky(row: dict[str, Any]) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                raise ConnectionError("injected: W&B service connection lost once")
            log(row)

        plugin.wb_run.log = flaky
