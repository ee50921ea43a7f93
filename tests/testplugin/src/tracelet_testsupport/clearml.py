"""Reading a ClearML offline session back from disk, as ClearML wrote it (no ClearML API involved)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


class OfflineSession:
    """`<CLEARML_CACHE_DIR>/offline/<task-id>/`: task.json, metrics.jsonl, data/, models/, and `<task-id>.zip`."""

    def __init__(self, cache_dir: Path, task_id: str) -> None:
        self.task_id = task_id
        self.folder = Path(cache_dir) / "offline" / task_id
        self.zip = Path(cache_dir) / "offline" / f"{task_id}.zip"

    @classmethod
    def of(cls, cache_dir: Path, report: Any) -> OfflineSession:
        details = report.backends["clearml"].details
        return cls(cache_dir, details["task_id"])

    @property
    def task(self) -> dict[str, Any]:
        return json.loads((self.folder / "task.json").read_text())

    def events(self) -> list[dict[str, Any]]:
        """Every event of metrics.jsonl (each line is a JSON array of events)."""
        path = self.folder / "metrics.jsonl"
        if not path.exists():
            return []
        out: list[dict[str, Any]] = []
        for line in path.read_text().splitlines():
            if line.strip():
                out.extend(json.loads(line))
        return out

    def scalars(self) -> dict[tuple[str, str], list[tuple[int, float]]]:
        """(title, series) -> [(iteration, value), ...] in the order ClearML wrote them."""
        out: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for ev in self.events():
            if ev.get("type") == "training_stats_scalar":
                out.setdefault((ev["metric"], ev["variant"]), []).append((ev["iter"], ev["value"]))
        return out

    def scalar_events(self) -> list[dict[str, Any]]:
        return [ev for ev in self.events() if ev.get("type") == "training_stats_scalar"]

    def hyperparams(self) -> dict[str, dict[str, str]]:
        """section -> name -> value (as ClearML stores them: strings)."""
        raw = self.task.get("hyperparams") or {}
        return {section: {name: p["value"] for name, p in params.items()} for section, params in raw.items()}

    def artifacts(self) -> dict[str, dict[str, Any]]:
        return {a["key"]: a for a in (self.task.get("execution") or {}).get("artifacts") or []}

    def zip_names(self) -> set[str]:
        with zipfile.ZipFile(self.zip) as zf:
            return set(zf.namelist())

    def zip_task(self) -> dict[str, Any]:
        with zipfile.ZipFile(self.zip) as zf:
            return json.loads(zf.read("task.json"))
