"""Process-level guarantees: SIGTERM delivers and marks KILLED, SIGKILL loses at most ~100 ms, fork is safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import tracelet
from tracelet.store import list_runs, open_run
from tracelet_testplugin.backends import record_for

CHILD = textwrap.dedent(
    """
    import sys, time, tracelet
    exp = tracelet.start_logging("child", project="proc", backend="local", config={"track_system": False})
    for i in range(int(sys.argv[1])):
        exp.log_metric("x", i, i)
    print("logged", flush=True)
    time.sleep(60)
    """
)


def _spawn(tmp_path: Path, env: dict[str, str], n: int) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(n)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "logged"
    return proc


def test_sigterm_delivers_everything_and_marks_the_run_killed(tmp_path: Path, python_env: dict[str, str]) -> None:
    proc = _spawn(tmp_path, python_env, 50_000)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # still dies of SIGTERM, as without Tracelet
    (run,) = list_runs(tmp_path / "tracelet-runs")
    assert run.status == "KILLED"
    assert [p.value for p in run.metrics()["x"]] == [float(i) for i in range(50_000)]


def test_sigkill_loses_at_most_the_last_100ms(tmp_path: Path, python_env: dict[str, str]) -> None:
    proc = _spawn(tmp_path, python_env, 20_000)
    time.sleep(0.3)  # past the 100 ms write-through bound, with room for a loaded machine
    proc.kill()
    proc.wait(timeout=10)
    (run,) = list_runs(tmp_path / "tracelet-runs")
    assert run.meta["status"] == "RUNNING"  # nobody could close it...
    assert run.status == "KILLED" and run.dead  # ...and readers see its owner is gone (tracelet.core.engine.owner)
    assert len(run.metrics()["x"]) == 20_000


def test_uncaught_exception_at_exit_marks_failure(tmp_path: Path, python_env: dict[str, str]) -> None:
    code = (
        "import tracelet\n"
        "exp = tracelet.start_logging('dies', backend='local', config={'track_system': False})\n"
        "exp.log_metric('x', 1.0, 0)\n"
        "raise SystemError('crash')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=python_env, capture_output=True, text=True)
    assert out.returncode == 1 and "crash" in out.stderr
    (run,) = list_runs(tmp_path / "tracelet-runs")
    assert run.status == "FAILED" and len(run.metrics()["x"]) == 1


def test_script_that_never_stops_is_finished_at_exit(tmp_path: Path, python_env: dict[str, str]) -> None:
    code = (
        "import tracelet\n"
        "exp = tracelet.start_logging('forgot', backend='local', config={'track_system': False})\n"
        "for i in range(1000): exp.log_metric('x', i, i)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=python_env, check=True)
    (run,) = list_runs(tmp_path / "tracelet-runs")
    assert run.status == "FINISHED" and len(run.metrics()["x"]) == 1000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_fork_child_neither_ends_nor_duplicates_the_parent_run() -> None:
    exp = tracelet.start_logging("forked", backend=["recorder", "local"])
    for i in range(1000):
        exp.log_metric("x", i, i)
    pid = os.fork()
    if pid == 0:  # a DataLoader-style worker: logs (ignored) and exits through atexit
        try:
            exp.log_metric("child", 1.0, 0)
            tracelet.stop_logging()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    for i in range(1000, 2000):
        exp.log_metric("x", i, i)
    tracelet.stop_logging()
    rec = record_for(exp.id, "recorder")
    assert [m.value for m in rec["metrics"]] == [float(i) for i in range(2000)]
    assert open_run(exp.id).status == "FINISHED"
