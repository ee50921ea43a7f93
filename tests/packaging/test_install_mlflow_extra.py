"""`pip install "tracelet[mlflow]"` from freshly built wheels into a new virtual environment, then a real run.

The wheels of every distribution under packages/ (built with `hatch build`, once per session: the `wheelhouse`
fixture) are offered; pip installs ours from them
(`--find-links`, versions pinned: an unrelated `tracelet` exists on the public index) and third-party
dependencies from the registry as usual, with `mlflow` pinned to the version the project tests against.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tracelet_testsupport.packaging import VERSION, clean_env, fresh_venv, last_json, pick, pip_install

REPO = Path(__file__).resolve().parents[2]
MLFLOW_PIN = "mlflow==3.17.2"


def test_pip_install_tracelet_mlflow_extra_from_built_wheels(tmp_path: Path, wheelhouse: Path) -> None:
    # Every distribution under packages/, as a release publishes them; pip picks what the extra names.
    names = sorted(p.name for p in (REPO / "packages").iterdir() if (p / "pyproject.toml").exists())
    assert {"tracelet-core", "tracelet-mlflow"} <= set(names)
    wheels = pick(wheelhouse, names, tmp_path / "wheels")
    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert f"tracelet-{VERSION}-py3-none-any.whl" in built and f"tracelet_mlflow-{VERSION}-py3-none-any.whl" in built

    venv = tmp_path / "venv"
    python = fresh_venv(venv)
    pip_install(python, wheels, f"tracelet[mlflow]=={VERSION}", [MLFLOW_PIN], tmp_path / "constraints.txt")

    script = textwrap.dedent(
        """
        import json, sys
        import tracelet, tracelet_mlflow
        assert "mlflow" not in sys.modules
        uri = "sqlite:///" + sys.argv[1]
        exp = tracelet.start_logging("wheel-run", project="wheel-proj", backend="mlflow",
                                     config={"mlflow_tracking_uri": uri, "track_system": False})
        for i in range(1200):
            exp.log_metric("loss", 1.0 / (i + 1), i)
        exp.log_params({"lr": 0.01})
        report = exp.stop()
        from mlflow import MlflowClient
        import mlflow
        client = MlflowClient(uri)
        run_id = report.backends["mlflow"].details["run_id"]
        run = client.get_run(run_id)
        history = client.get_metric_history(run_id, "loss")
        print(json.dumps({
            "tracelet": tracelet.__file__, "plugin": tracelet_mlflow.__file__, "mlflow": mlflow.__version__,
            "status": run.info.status, "name": run.info.run_name, "params": run.data.params,
            "points": sorted((m.step, m.value) for m in history),
        }))
        """
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = last_json(python, script, str(workdir / "mlflow.db"), cwd=workdir, env=clean_env())
    assert result["tracelet"].startswith(str(venv)) and result["plugin"].startswith(str(venv))
    assert result["mlflow"] == MLFLOW_PIN.split("==")[1]
    assert result["status"] == "FINISHED" and result["name"] == "wheel-run"
    assert result["params"] == {"lr": "0.01"}
    assert result["points"] == [[i, 1.0 / (i + 1)] for i in range(1200)]
