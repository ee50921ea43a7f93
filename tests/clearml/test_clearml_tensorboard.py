"""A real torch SummaryWriter during a ClearML run: each point reaches ClearML exactly once.

tracelet-torch (installed in the test environment) captures the writer for Tracelet, which fans out to
ClearML. ClearML's own TensorBoard hook would report the same points again; the backend starts the task
with it off. The control case switches ClearML's hook back on and shows the duplicates this prevents.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tracelet
from tracelet_testsupport.clearml import OfflineSession

pytest.importorskip("tracelet_torch")
tensorboard = pytest.importorskip("torch.utils.tensorboard")


def write_points(logdir: Path) -> None:
    writer = tensorboard.SummaryWriter(log_dir=str(logdir))
    for step in range(40):
        writer.add_scalar("train/loss", 1.0 / (step + 1), step)
        writer.add_scalar("lr", 0.5**step, step)
    writer.flush()
    writer.close()


def run_with_writer(tmp_path: Path, clearml: dict[str, Any]) -> Any:
    config = {"track_system": False, "track_git": False, "clearml": {"offline": True, **clearml}}
    exp = tracelet.start_logging("tb-run", project="tb-proj", backend="clearml", config=config)
    write_points(tmp_path / "tb")
    return exp.stop()


def test_summary_writer_points_reach_clearml_once(tmp_path: Path, cache_dir: Path) -> None:
    report = run_with_writer(tmp_path, {})
    scalars = OfflineSession.of(cache_dir, report).scalars()
    assert scalars[("train", "loss")] == [(s, pytest.approx(1.0 / (s + 1))) for s in range(40)]
    assert scalars[("lr", "lr")] == [(s, pytest.approx(0.5**s)) for s in range(40)]
    assert set(scalars) == {("train", "loss"), ("lr", "lr")}


def test_control_clearml_own_hook_would_report_them_again(tmp_path: Path, cache_dir: Path) -> None:
    # In a fresh interpreter: ClearML's TensorBoard binding patches the writer process-wide.
    code = textwrap.dedent(
        f"""
        import json, runpy
        from pathlib import Path
        run_with_writer = runpy.run_path({__file__!r})["run_with_writer"]
        report = run_with_writer(Path({str(tmp_path)!r}), {{"auto_connect_frameworks": {{"tensorboard": True}}}})
        print(json.dumps({{"task": report.backends["clearml"].details["task_id"]}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    task_id = json.loads(out.stdout.strip().splitlines()[-1])["task"]
    events = OfflineSession(cache_dir, task_id).scalar_events()
    lr_points = [(e["iter"], e["value"]) for e in events if e["metric"] == "lr" or e["variant"] == "lr"]
    # Tracelet's copy plus ClearML's own (ClearML names and steps its copy its own way): more than one each.
    assert len(lr_points) >= 2 * 40
