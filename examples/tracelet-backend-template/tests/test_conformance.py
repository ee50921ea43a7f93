"""Tracelet's conformance kit, run against this backend: subclass BackendConformance, give it the plugin
class, its config and a reader of what it wrote. Every `test_*` of the base class then runs here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracelet_backend_template import JsonlBackend, read_run

from tracelet.testing import BackendConformance, RunUnderTest, TrackedRun


class TestJsonlBackend(BackendConformance):
    backend = JsonlBackend

    def backend_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"dir": str(tmp_path / "jsonl")}

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        # Read the tracker's own record (here: the files), not the plugin's state.
        data = read_run(run.details["path"])
        return TrackedRun(metrics=data["metrics"], params=data["params"], tags=data["tags"], status=data["status"])

    def inject_fault(self, plugin: Any) -> None:
        # Make the 'transport' fail once in the middle of the next batch: the kit then checks that the retry
        # neither loses nor duplicates a point.
        write = plugin._write_line
        calls = {"n": 0}

        def flaky(out: Any, record: dict[str, Any]) -> None:
            calls["n"] += 1
            if calls["n"] == 500:
                raise ConnectionError("injected: connection reset in the middle of a batch")
            write(out, record)

        plugin._write_line = flaky
