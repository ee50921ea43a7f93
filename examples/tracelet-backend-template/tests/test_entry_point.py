"""Once installed, the entry point makes `backend="template"` work and `tracelet plugins` list it."""

from __future__ import annotations

import json
from pathlib import Path

from tracelet_backend_template import read_run

import tracelet
from tracelet.cli import main


def test_installed_entry_point_runs_a_backend(tracelet_isolated: Path, tmp_path: Path) -> None:
    # tracelet_isolated: the fixture Tracelet's pytest plugin (entry point pytest11) provides.
    exp = tracelet.start_logging("entry-point", backend="template", config={"template_dir": str(tmp_path / "out")})
    for i in range(100):
        exp.log_metric("loss", 1.0 / (i + 1), i)
    exp.log_params({"lr": 0.01})
    tracelet.stop_logging()
    report = exp.report
    assert report is not None and report.backends["template"].delivered == report.events
    data = read_run(report.backends["template"].details["path"])
    assert [p[0] for p in data["metrics"]["loss"]] == list(range(100))
    assert data["params"] == {"lr": 0.01} and data["status"] == "FINISHED"


def test_tracelet_plugins_lists_it_as_ok(capsys) -> None:
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    row = rows["template"]
    assert row["distribution"] == "tracelet-backend-template" and row["status"] == "ok"
    assert row["description"] == "Template backend: runs as JSON-lines files"
