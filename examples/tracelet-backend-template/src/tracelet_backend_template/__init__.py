"""A template Tracelet backend that writes runs as JSON-lines files.

Layout of one run: `<dir>/<project>/<tracelet run id>/` with `metrics.jsonl` (one point per line:
name, value, step, timestamp; NaN and ±inf written as the strings "NaN", "Infinity", "-Infinity"),
`params.json`, `tags.json` and `run.json` (name, status). `read_run` reads it back (the conformance tests use it).

Guarantees, as the plugin contract asks: every hook is safe to retry (a batch that fails half-way resumes
where it stopped, so no point is written twice), a config value of the wrong type fails `start()` with a
ConfigurationError naming the key (an unknown key is warned about with the closest valid one: `Options`, a
`tracelet.plugin.BackendOptions`), and only `tracelet.plugin` is imported from Tracelet.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import attrs

from tracelet.plugin import (
    BackendOptions,
    ConfigurationError,
    Metric,
    PluginMetadata,
    RunContext,
    RunStatus,
    hookimpl,
)

__version__ = "0.1.0"
__all__ = ["JsonlBackend", "Options", "read_run", "run_folder"]

DEFAULT_DIR = "./tracelet-template-runs"


@attrs.define
class Options(BackendOptions):
    """This backend's config block, typed: add a field (type and default) to add an option."""

    plugin: ClassVar[str] = "tracelet-backend-template"

    dir: str = DEFAULT_DIR  # where runs are written
    fsync: bool = False  # fsync each batch ("true"/"1"/"yes" as strings too)


def run_folder(root: str | os.PathLike[str], project: str, run_id: str) -> Path:
    return Path(root) / project / run_id


def _encode(value: float) -> float | str:
    # JSON has no NaN/inf: keep them as strings instead of dropping the point.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class JsonlBackend:
    """One instance per run (the entry point names the class)."""

    def __init__(self) -> None:
        self.root = Path(DEFAULT_DIR)
        self.fsync = False
        self.folder: Path | None = None
        self.params: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        # (first point, batch length) of the batch being written, and how many of its points are on disk:
        # a retried batch resumes there instead of writing the first half twice.
        self._progress: tuple[tuple[Metric, int], int] | None = None

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="Template backend: runs as JSON-lines files",
            capabilities=["metrics", "params", "tags", "status"],
        )

    @hookimpl
    def plugin_setup(self, config: dict[str, Any]) -> None:
        options = Options.from_config(config)  # a typo in a key is warned about; a wrong type raises
        self.root = Path(options.dir)
        self.fsync = options.fsync

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        folder = run_folder(self.root, run.project, run.run_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a folder we cannot create will not appear by retrying
            raise ConfigurationError(f"tracelet-backend-template: cannot create {folder}: {exc}") from exc
        self.folder = folder
        self._write_json("run.json", {"name": run.name, "project": run.project, "status": "RUNNING", "tags": run.tags})
        return {"path": str(folder)}

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        key = (metrics[0], len(metrics))
        done = self._progress[1] if self._progress is not None and self._progress[0] == key else 0
        with open(self._path("metrics.jsonl"), "a", encoding="utf-8") as out:
            for m in metrics[done:]:
                self._write_line(
                    out, {"name": m.name, "value": _encode(m.value), "step": m.step, "timestamp": m.timestamp}
                )
                done += 1
                self._progress = (key, done)
            self._sync(out)
        self._progress = None

    def _write_line(self, out: Any, record: dict[str, Any]) -> None:
        """One request to the 'tracker' (a line, flushed): the unit that can fail in the middle of a batch."""
        out.write(json.dumps(record) + "\n")
        out.flush()

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        self.params.update(params)  # nested values stay nested (JSON); a later value wins
        self._write_json("params.json", self.params)

    @hookimpl
    def backend_log_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)
        self._write_json("tags.json", self.tags)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        if self.folder is None:
            return
        meta = json.loads(self._path("run.json").read_text(encoding="utf-8"))
        meta["status"] = RunStatus(status).value
        self._write_json("run.json", meta)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        if self.folder is None:
            raise RuntimeError("the run has not started")  # transient for the worker: start is being retried
        return self.folder / name

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        # Whole-file replace: a retry rewrites the same content, never half of it.
        path = self._path(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
        os.replace(tmp, path)

    def _sync(self, out: Any) -> None:
        if self.fsync:
            os.fsync(out.fileno())


def read_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run folder back: {"metrics": {name: [(step, value, timestamp), ...]}, "params", "tags", "status"}."""
    folder = Path(folder)
    metrics: dict[str, list[tuple[int, float, float]]] = {}
    path = folder / "metrics.jsonl"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            metrics.setdefault(rec["name"], []).append((rec["step"], float(rec["value"]), rec["timestamp"]))

    def load(name: str) -> dict[str, Any]:
        p = folder / name
        return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}

    return {
        "metrics": metrics,
        "params": load("params.json"),
        "tags": load("tags.json"),
        "status": load("run.json").get("status"),
    }
