"""The `tracelet` console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import tracelet
from tracelet.cli import main, sparkline


def test_plugins_json_lists_name_type_distribution_version_hooks(capsys) -> None:
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["local"]["type"] == "backend" and rows["local"]["distribution"] == "tracelet"
    assert "backend_log_metrics" in rows["recorder"]["hooks"]
    assert rows["recorder"]["version"] == "0.1.0"
    assert rows["testframework"]["type"] == "framework"
    assert "ModuleNotFoundError" in rows["broken"]["error"]


def test_plugins_table(capsys) -> None:
    main(["plugins"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "DISTRIBUTION", "VERSION", "STATUS", "DESCRIPTION"]
    assert any(line.split()[:3] == ["recorder", "backend", "tracelet-testplugin"] for line in out.splitlines())


def test_runs_and_show(capsys) -> None:
    with tracelet.start_logging("cli-run", project="cli", backend="local") as exp:
        exp.log_params({"lr": 0.1})
        for i in range(50):
            exp.log_metric("loss", 1.0 / (i + 1), i)
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert exp.id in out and "cli-run" in out and "FINISHED" in out
    assert main(["show", exp.id[:17]]) == 0
    out = capsys.readouterr().out
    assert "lr = 0.1" in out
    (line,) = [line for line in out.splitlines() if line.strip().startswith("loss")]
    fields = line.split()
    assert fields[1:5] == ["0.02", "0.02", "1", "50"]
    assert fields[5][0] == "█" and fields[5][-1] == "▁"


def test_show_unknown_run_fails(capsys) -> None:
    assert main(["show", "nope"]) == 1
    assert "no run matches" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    exe = shutil.which("tracelet", path=os.path.dirname(sys.executable))
    assert exe is not None
    out = subprocess.run([exe, "plugins"], capture_output=True, text=True)
    assert out.returncode == 0 and "local" in out.stdout


def test_sparkline_shape() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert len(sparkline(list(range(1000)), width=40)) == 40
    assert sparkline([1.0, float("nan"), 2.0]) == "▁ █"
