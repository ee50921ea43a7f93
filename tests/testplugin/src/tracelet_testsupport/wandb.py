"""Offline W&B for a test (the `offline_wandb` fixture), and a W&B run read back from its transaction log (the
`.wandb` file), as W&B itself would sync it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
import pytest

from tracelet_wandb import txlog

WANDB_DIRS = ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")


def wandb_environment(root: Path) -> dict[str, str]:
    """Offline W&B with every folder it writes to (and reads settings from) inside `root`."""
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "NETRC": str(root / "no-netrc")}
    for key in WANDB_DIRS:
        folder = root / key.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[key] = str(folder)
    return env


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith("WANDB_"):
            monkeypatch.delenv(key)
    env = wandb_environment(tmp_path / "wandb-home")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _value(item: Any) -> Any:
    return json.loads(item.value_json)


def _set(tree: dict[str, Any], item: Any) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = _value(item)


@attrs.define
class WandbRun:
    """Everything the transaction log says about one run."""

    path: Path
    run: Any = None  # the RunRecord
    config: dict[str, Any] = attrs.field(factory=dict)
    history: list[dict[str, Any]] = attrs.field(factory=list)
    summary: dict[str, Any] = attrs.field(factory=dict)
    metrics: list[Any] = attrs.field(factory=list)  # MetricRecords (define_metric)
    artifacts: list[Any] = attrs.field(factory=list)  # ArtifactRecords
    exit: Any = None  # the RunExitRecord, once finished
    kinds: list[str] = attrs.field(factory=list)

    @property
    def tags(self) -> list[str]:
        return list(self.run.tags)

    @property
    def exit_code(self) -> int | None:
        return None if self.exit is None else self.exit.exit_code

    def points(self, name: str, step_key: str = "tracelet/step") -> list[tuple[Any, Any]]:
        """(step, value) of every history row holding `name`, in logging order."""
        return [(row[step_key], row[name]) for row in self.history if name in row]

    def user_config(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.items() if k != "_wandb"}


def read_run(path: str | Path) -> WandbRun:
    """Replay the log: config and summary updates applied in order, history rows collected."""
    path = Path(path)
    if path.is_dir():
        path = txlog.find_run_file(path)
    out = WandbRun(path)
    for record in txlog.records(path):
        kind = record.WhichOneof("record_type")
        out.kinds.append(kind)
        if kind == "run":
            out.run = record.run
            for item in record.run.config.update:
                _set(out.config, item)
        elif kind == "config":
            for item in record.config.update:
                _set(out.config, item)
            for item in record.config.remove:
                out.config.pop(item.key or item.nested_key[0], None)
        elif kind == "history":
            out.history.append({txlog.item_key(i): _value(i) for i in record.history.item})
        elif kind == "summary":
            for item in record.summary.update:
                _set(out.summary, item)
        elif kind == "metric":
            out.metrics.append(record.metric)
        elif kind == "artifact":
            out.artifacts.append(record.artifact)
        elif kind == "exit":
            out.exit = record.exit
    return out


def run_of(report: Any, backend: str = "wandb") -> WandbRun:
    """The W&B run behind a stopped experiment's report."""
    return read_run(report.backends[backend].details["transaction_log"])
