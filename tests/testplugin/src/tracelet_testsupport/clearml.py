"""ClearML offline for a test (the `clearml_home` and `cache_dir` fixtures), and an offline session read back from
disk, as ClearML wrote it (no ClearML API involved)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def clearml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bare HOME and ClearML cache for each test; ClearML settings from the developer's shell removed."""
    for key in list(os.environ):
        if key.startswith(("CLEARML_", "TRAINS_", "TRACELET_")):
            monkeypatch.delenv(key)
    for key in ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID"):
        # ClearML marks a process that opens a task in these; a user-opened task in a test leaves the mark, which
        # later tests' child processes would inherit. Recorded as absent, so the test's end removes it again.
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "clearml-cache"))
    monkeypatch.setenv("TRACELET_DIR", str(tmp_path / "runs"))
    return home


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "clearml-cache"


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


# A check in a fresh interpreter (ClearML's main task and patches are process-wide): `run(name, **options)` starts
# an offline ClearML run there.
PRELUDE = textwrap.dedent(
    """
    import argparse, json, signal, sys, threading, time
    from tracelet.core.experiment import Experiment
    from tracelet.settings import TraceletSettings

    def run(name, **options):
        settings = TraceletSettings(project="proc", track_system=False)
        exp = Experiment(name, backend=["clearml"], project="proc", settings=settings,
                         options={"clearml": {"offline": True, **options}})
        return exp.start()
    """
)


def python(code: str, tmp_path: Path, timeout: float = 180, **popen: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env, **popen,  # type: ignore[arg-type]
    )  # fmt: skip


def last_json(out: subprocess.CompletedProcess[str]) -> dict:
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])
