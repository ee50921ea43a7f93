"""W&B's service killed or stalled mid-run: the training loop never notices, `stop()` stays within the stop
timeout, another tracker (MLflow) gets everything, and the W&B backend reports delivery errors and what it missed.

Each case runs in its own process, since W&B's service is shared by every W&B run of a process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import psutil
    import tracelet

    mode = sys.argv[1]
    exp = tracelet.start_logging(
        "isolated", project="p", backend=["wandb", "mlflow"],
        config={"wandb": {"stop_timeout": 3, "call_timeout": 1}, "track_system": False,
                "mlflow_tracking_uri": "sqlite:///" + os.path.abspath("mlflow.db")},
    )
    for i in range(500):
        exp.log_metric("loss", float(i), i)
    assert exp.flush(30)
    service = [p for p in psutil.Process().children(recursive=True) if p.name() == "wandb-core"]
    assert len(service) == 1, service
    if mode == "kill":
        service[0].kill()
    else:
        service[0].suspend()
    loop_s = 0.0
    for i in range(500, 5500):
        t0 = time.monotonic()
        exp.log_metric("loss", float(i), i)
        loop_s += time.monotonic() - t0
        if i % 2000 == 0:
            time.sleep(0.5)  # let the W&B worker run into the broken service while training goes on
    from mlflow import MlflowClient
    client = MlflowClient("sqlite:///" + os.path.abspath("mlflow.db"))
    mlflow_run = next(b for b in exp.backends if b.name == "mlflow").details["run_id"]
    deadline = time.monotonic() + 60
    while len(client.get_metric_history(mlflow_run, "loss")) < 5500 and time.monotonic() < deadline:
        time.sleep(0.2)  # MLflow has everything before stop(), so stop() waits for W&B alone
    t1 = time.monotonic()
    report = exp.stop()
    stop_s = time.monotonic() - t1
    wb, other = report.backends["wandb"], report.backends["mlflow"]
    history = client.get_metric_history(mlflow_run, "loss")
    print(json.dumps({
        "loop_s": loop_s, "stop_s": stop_s, "events": report.events,
        "wandb": {"delivered": wb.delivered, "undelivered": wb.undelivered, "errors": wb.errors},
        "mlflow": {"undelivered": other.undelivered, "errors": other.errors, "points": len(history)},
    }), flush=True)
    if mode == "stall":
        service[0].kill()  # W&B's own exit handler waits for its service; a stalled one would hold the exit
    """
)


@pytest.mark.parametrize("mode", ["kill", "stall"])
def test_service_killed_or_stalled_is_this_backends_delivery_error(
    mode: str, tmp_path: Path, python_env: dict[str, str]
) -> None:
    script = tmp_path / "isolated.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, env=python_env, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loop_s"] < 1.0  # 5000 log_metric calls: the training loop never waited for the service
    # stop timeout 3 s; a call already waiting on the service adds at most its call timeout (1 s)
    assert result["stop_s"] < 3 + 1 + 1.0, result
    assert result["mlflow"] == {"undelivered": 0, "errors": {}, "points": 5500}  # the other tracker: everything
    wandb = result["wandb"]
    assert wandb["undelivered"] > 0 and wandb["delivered"] + wandb["undelivered"] == result["events"]
    expected = "ConnectionResetError" if mode == "kill" else "ServiceTimeout"
    assert any(kind.startswith("log_metrics") and kind.endswith(expected) for kind in wandb["errors"]), wandb
    assert sum(wandb["errors"].values()) > 1  # retried, not given up after one failure


AFTER_KILL = textwrap.dedent(
    """
    import json, time
    import psutil
    import tracelet

    config = {"wandb": {"stop_timeout": 3, "call_timeout": 1}, "track_system": False}
    first = tracelet.start_logging("killed-service", project="p", backend="wandb", config=config)
    first.log_metric("loss", 1.0, 0)
    assert first.flush(30)
    for p in psutil.Process().children(recursive=True):
        if p.name() == "wandb-core":
            p.kill()
            p.wait(10)
    first.log_metric("loss", 2.0, 1)
    first.stop()
    t0 = time.monotonic()
    second = tracelet.start_logging("next-run", project="p", backend="wandb", config=config)
    for i in range(50):
        second.log_metric("loss", float(i), i)
    report = second.stop()
    wb = report.backends["wandb"]
    print(json.dumps({"s": time.monotonic() - t0, "undelivered": wb.undelivered, "errors": wb.errors,
                      "log": wb.details.get("transaction_log")}), flush=True)
    """
)


def test_a_run_after_the_service_was_killed_gets_a_new_service(tmp_path: Path, python_env: dict[str, str]) -> None:
    # W&B keeps its connection to a dead service for the rest of the process: without the backend forgetting
    # it, every later run in the process (a notebook, a sweep loop) would fail to start its W&B run.
    from tracelet_testsupport.wandb import read_run

    script = tmp_path / "after_kill.py"
    script.write_text(AFTER_KILL)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=python_env, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["undelivered"] == 0 and result["errors"] == {}, result
    assert result["s"] < 3 + 1 + 1.0  # nothing waited for the dead service
    run = read_run(result["log"])
    assert run.points("loss") == [(i, float(i)) for i in range(50)] and run.exit_code == 0
    assert "Exception ignored in atexit" not in out.stderr  # the dead service's exit hook was dropped too
