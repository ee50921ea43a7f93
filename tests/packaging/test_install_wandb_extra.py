"""`pip install "tracelet[wandb]"` from freshly built wheels into a new virtual environment, then a real offline
W&B run read back from its transaction log inside that environment.

As for the MLflow extra: our distributions come from the wheels (`--find-links`, versions pinned), third-party
ones from the registry, with `wandb` pinned to the version the project tests against.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tracelet_testsupport.packaging import VERSION, clean_env, fresh_venv, last_json, pick, pip_install

WANDB_PIN = "wandb==0.31.0"


@pytest.mark.slow
def test_pip_install_tracelet_wandb_extra_from_built_wheels(tmp_path: Path, wheelhouse: Path) -> None:
    wheels = pick(wheelhouse, ["tracelet-core", "tracelet-wandb"], tmp_path / "wheels")
    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert built == [f"tracelet-{VERSION}-py3-none-any.whl", f"tracelet_wandb-{VERSION}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    python = fresh_venv(venv)
    pip_install(python, wheels, f"tracelet[wandb]=={VERSION}", [WANDB_PIN], tmp_path / "constraints.txt")

    script = textwrap.dedent(
        """
        import json, sys
        import tracelet, tracelet_wandb
        assert "wandb" not in sys.modules
        exp = tracelet.start_logging("wheel-run", project="wheel-proj", backend="wandb",
                                     config={"wandb": {"mode": "offline"}, "track_system": False})
        for i in range(1200):
            exp.log_metric("loss", 1.0 / (i + 1), i)
        exp.log_params({"lr": 0.01})
        report = exp.stop()
        import wandb
        from tracelet_wandb import txlog
        details = report.backends["wandb"].details
        rows = txlog.history(details["transaction_log"])
        print(json.dumps({
            "tracelet": tracelet.__file__, "plugin": tracelet_wandb.__file__, "wandb": wandb.__version__,
            "details": details, "points": [[r["tracelet/step"], r["loss"]] for r in rows if "loss" in r],
            "kinds": [r.WhichOneof("record_type") for r in txlog.records(details["transaction_log"])],
        }))
        """
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = clean_env()
    env = {k: v for k, v in env.items() if not k.startswith("WANDB_")}
    env.update(WANDB_DIR=str(workdir), WANDB_CONFIG_DIR=str(workdir / "config"), WANDB_CACHE_DIR=str(workdir / "cache"))
    env["WANDB_DATA_DIR"] = str(workdir / "data")
    result = last_json(python, script, cwd=workdir, env=env)
    assert result["tracelet"].startswith(str(venv)) and result["plugin"].startswith(str(venv))
    assert result["wandb"] == WANDB_PIN.split("==")[1]
    assert result["details"]["mode"] == "offline"
    assert result["details"]["sync_command"].startswith("wandb sync ")
    assert result["points"] == [[i, 1.0 / (i + 1)] for i in range(1200)]
    assert "exit" in result["kinds"] and "config" in result["kinds"]
