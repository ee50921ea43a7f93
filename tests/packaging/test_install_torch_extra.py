"""`pip install "tracelet[torch]"` from freshly built wheels into a new virtual environment, then a real run.

Ours come from the built wheels (`--find-links`, pinned 0.1.0); torch is pinned to the CPU wheel the project
tests against (`torch==2.13.0`, found on this machine's find-links: no CUDA packages are downloaded, and the
test fails if any `nvidia-*` distribution was installed).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tracelet_testsupport.packaging import VERSION, clean_env, fresh_venv, last_json, pick, pip_install, run

TORCH_PIN = "torch==2.13.0"


@pytest.mark.slow
def test_pip_install_tracelet_torch_extra_from_built_wheels(tmp_path: Path, wheelhouse: Path) -> None:
    wheels = pick(wheelhouse, ["tracelet-core", "tracelet-torch"], tmp_path / "wheels")
    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert built == [f"tracelet-{VERSION}-py3-none-any.whl", f"tracelet_torch-{VERSION}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    python = fresh_venv(venv)
    pip_install(python, wheels, f"tracelet[torch]=={VERSION}", [TORCH_PIN], tmp_path / "constraints.txt")
    listed = run([str(python), "-m", "pip", "list", "--format=json"], env=clean_env(), timeout=120).stdout
    names = {d["name"].lower() for d in json.loads(listed)}
    assert {"tracelet", "tracelet-torch", "torch"} <= names
    assert not [n for n in names if n.startswith("nvidia")], "a CUDA build of torch was installed"

    script = textwrap.dedent(
        """
        import json, sys
        import tracelet, tracelet_torch
        from tracelet import Experiment
        from tracelet.core.contract import discovery
        from tracelet.plugin import PluginType
        frameworks = sorted(s.name for s in discovery.installed(PluginType.FRAMEWORK))
        exp = Experiment("wheel-torch", backend=["local"], automagic=True)
        exp.start()
        imported_at_start = "torch" in sys.modules
        import torch
        model = torch.nn.Linear(3, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
        exp.capture_model(model)
        exp.log_metric("loss", torch.tensor(0.25), 1)
        exp.stop()
        from tracelet.store import open_run
        run = open_run(exp.id)
        print(json.dumps({
            "tracelet": tracelet.__file__, "plugin": tracelet_torch.__file__, "torch": torch.__version__,
            "frameworks": frameworks, "imported_at_start": imported_at_start, "params": run.params(),
            "loss": [(m.step, m.value) for m in run.metrics()["loss"]],
        }))
        """
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**clean_env(), "TRACELET_TRACK_SYSTEM": "false", "TRACELET_TRACK_GIT": "false"}
    result = last_json(python, script, cwd=workdir, env=env)
    assert result["tracelet"].startswith(str(venv)) and result["plugin"].startswith(str(venv))
    assert result["torch"].split("+")[0] == TORCH_PIN.split("==")[1]
    assert {"pytorch", "tensorboard", "lightning"} <= set(result["frameworks"])
    assert result["imported_at_start"] is False
    params = result["params"]
    assert (params["optimizer/type"], params["optimizer/lr"], params["optimizer/momentum"]) == ("SGD", 0.05, 0.5)
    assert params["model/parameters"] == 8 and params["model/class"] == "torch.nn.modules.linear.Linear"
    assert result["loss"] == [[1, 0.25]]
