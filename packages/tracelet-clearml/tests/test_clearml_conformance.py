"""The ClearML plugin passes tracelet.testing's conformance kit, read back from real offline sessions.

`read_run` reads the files ClearML wrote (`task.json`, `metrics.jsonl`), not the plugin's state. Metric names
come back from ClearML's (title, series) by the inverse of the plugin's rule. One documented deviation: ClearML
cannot store NaN (its server refuses it; its SDK would write 0.0), so the plugin sends no NaN point, and
`test_nan_and_inf` checks that rule instead of NaN round-tripping.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from tracelet.plugin import Metric, RunStatus
from tracelet.testing import BackendConformance, ConformanceError, RunUnderTest, TrackedRun
from tracelet_clearml.backend import ClearMLBackend
from tracelet_testsupport.clearml import OfflineSession

STATUSES = {"completed": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}


def tracelet_name(title: str, series: str) -> str:
    return title if series == title else f"{title}/{series}"


class TestClearMLOffline(BackendConformance):
    backend = ClearMLBackend

    def backend_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"offline": True}

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        session = OfflineSession(Path(os.environ["CLEARML_CACHE_DIR"]), run.details["task_id"])
        metrics: dict[str, list[Metric]] = {}
        for ev in session.scalar_events():
            name = tracelet_name(ev["metric"], ev["variant"])
            metrics.setdefault(name, []).append(Metric(name, ev["value"], ev["iter"], ev["timestamp"] / 1000))
        params: dict[str, Any] = {}
        tags: dict[str, Any] = {}
        for section, values in session.hyperparams().items():
            for key, value in values.items():
                if section == "properties":
                    tags[key] = value
                else:
                    params[key if section == "General" else f"{section}/{key}"] = value
        task = session.task
        return TrackedRun(
            metrics=metrics,
            params=params,
            tags=tags,
            status=STATUSES.get(task.get("status"), task.get("status")),
            artifacts=sorted(session.artifacts()),
        )

    def import_source(self, run: RunUnderTest) -> tuple[str, dict[str, Any]]:
        return str(OfflineSession(Path(os.environ["CLEARML_CACHE_DIR"]), run.details["task_id"]).folder), {}

    def inject_fault(self, plugin: Any) -> None:
        add = plugin._report._add
        calls = {"n": 0}

        def flaky(event: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 700:
                raise ConnectionError("injected: the 700th point of the batch fails")
            return add(event)

        plugin._report._add = flaky

    def test_nan_and_inf(self) -> None:
        """ClearML's rule instead of the kit's: NaN points are not sent, ±inf become ±float max."""
        values = [1.0, math.nan, math.inf, -math.inf, 2.0, 0.0, -0.0, 1e-300]

        def body(exp: Any) -> None:
            for i, v in enumerate(values):
                exp.log_metric("edge", v, i)

        run = self.run_experiment(body)
        got = [(p.step, p.value) for p in self.read(run).metrics["edge"]]
        big = 1.7976931348623157e308
        want = [(0, 1.0), (2, big), (3, -big), (4, 2.0), (5, 0.0), (6, -0.0), (7, 1e-300)]
        if got != want:
            raise ConformanceError(f"edge values: tracker has {got}, expected {want}")
        assert RunStatus.FINISHED.value == self.read(run).status
