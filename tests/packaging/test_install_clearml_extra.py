"""`pip install "tracelet[clearml]"` from freshly built wheels into a new virtual environment, then a real run.

Ours come from the built wheels (`--find-links`, pinned 0.1.0); clearml from the registry, pinned to the version
the project tests against. The run is an offline ClearML session in a bare HOME and cache, read back from disk.
"""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import pytest

from tracelet_testsupport.packaging import VERSION, clean_env, fresh_venv, last_json, pick, pip_install

CLEARML_PIN = "clearml==2.1.12"


@pytest.mark.slow
def test_pip_install_tracelet_clearml_extra_from_built_wheels(tmp_path: Path, wheelhouse: Path) -> None:
    wheels = pick(wheelhouse, ["tracelet-core", "tracelet-clearml"], tmp_path / "wheels")
    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert built == [f"tracelet-{VERSION}-py3-none-any.whl", f"tracelet_clearml-{VERSION}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    python = fresh_venv(venv)
    pip_install(python, wheels, f"tracelet[clearml]=={VERSION}", [CLEARML_PIN], tmp_path / "constraints.txt")

    script = textwrap.dedent(
        """
        import json, sys
        import tracelet, tracelet_clearml
        assert "clearml" not in sys.modules
        exp = tracelet.start_logging("wheel-run", project="wheel-proj", backend="clearml",
                                     config={"clearml": {"offline": True}, "track_system": False})
        for i in range(500):
            exp.log_metric("train/loss", 1.0 / (i + 1), i)
        exp.log_params({"lr": 0.01})
        report = exp.stop()
        import clearml
        print(json.dumps({
            "tracelet": tracelet.__file__, "plugin": tracelet_clearml.__file__, "clearml": clearml.__version__,
            "details": report.backends["clearml"].details,
        }))
        """
    )
    home = tmp_path / "home"
    home.mkdir()
    cache = tmp_path / "cache"
    env = {**clean_env(), "HOME": str(home), "CLEARML_CACHE_DIR": str(cache), "TRACELET_DIR": str(tmp_path / "runs")}
    env = {k: v for k, v in env.items() if not k.startswith(("CLEARML_API", "CLEARML_CONFIG", "CLEARML_OFFLINE"))}
    result = last_json(python, script, cwd=tmp_path, env=env)
    assert result["tracelet"].startswith(str(venv)) and result["plugin"].startswith(str(venv))
    assert result["clearml"] == CLEARML_PIN.split("==")[1]
    details = result["details"]
    assert details["offline"] is True and Path(details["offline_session"]).parent == cache / "offline"
    with zipfile.ZipFile(details["offline_session"]) as zf:
        task = json.loads(zf.read("task.json"))
        events = [e for line in zf.read("metrics.jsonl").decode().splitlines() if line for e in json.loads(line)]
    assert task["name"] == "wheel-run" and task["project_name"] == "wheel-proj" and task["status"] == "completed"
    assert task["hyperparams"]["General"]["lr"]["value"] == "0.01"
    points = [(e["iter"], e["value"]) for e in events if (e["metric"], e["variant"]) == ("train", "loss")]
    assert points == [(i, 1.0 / (i + 1)) for i in range(500)]
