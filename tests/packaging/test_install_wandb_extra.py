"""`pip install "tracelet[wandb]"` from freshly built wheels into a new virtual environment, then a real offline
W&B run read back from its transaction log inside that environment.

As for the MLflow extra: our distributions come from the wheels (`--find-links`, versions pinned), third-party
ones from the registry, with `wandb` pinned to the version the project tests against.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracelet_testsupport.packaging import VERSION, clean_env, hatch_command, run

REPO = Path(__file__).resolve().parents[2]

WANDB_PIN = "wandb==0.31.0"


@pytest.mark.slow
def test_pip_install_tracelet_wandb_extra_from_built_wheels(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    for name in ("tracelet-core", "tracelet-wandb"):
        run(
            [*hatch_command(), "build", "-t", "wheel", str(wheels)],
            cwd=REPO / "packages" / name,
            env=clean_env(),
            timeout=300,
        )
    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert built == [f"tracelet-{VERSION}-py3-none-any.whl", f"tracelet_wandb-{VERSION}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env=clean_env(), timeout=120)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"{WANDB_PIN}\n")
    run(
        [
            str(python), "-m", "pip", "install", "--disable-pip-version-check",
            "--find-links", str(wheels), "-c", str(constraints), f"tracelet[wandb]=={VERSION}",
        ],
        env=clean_env(), timeout=900,
    )  # fmt: skip

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
    out = subprocess.run([str(python), "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tracelet"].startswith(str(venv)) and result["plugin"].startswith(str(venv))
    assert result["wandb"] == WANDB_PIN.split("==")[1]
    assert result["details"]["mode"] == "offline"
    assert result["details"]["sync_command"].startswith("wandb sync ")
    assert result["points"] == [[i, 1.0 / (i + 1)] for i in range(1200)]
    assert "exit" in result["kinds"] and "config" in result["kinds"]
