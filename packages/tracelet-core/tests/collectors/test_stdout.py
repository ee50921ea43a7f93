"""The console tee, through a real pseudo-terminal: the terminal sees the same bytes with the tee on or off,
the stream keeps being a tty, and the run keeps a readable log of what was shown."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tracelet.core.contract.redact import MASK
from tracelet_testsupport.collectors import stored

CHILD = r"""
import json, os, sys, time
from tracelet import Experiment, ExperimentConfig

track = sys.argv[1] == "on"
before = {n: getattr(sys, n) for n in ("stdout", "stderr")}
facts = {}
cfg = ExperimentConfig(track_stdout=track, track_environment=False, track_args=False, track_git=False,
                       track_system_metrics=False)
exp = Experiment("console", config=cfg).start()
for n in ("stdout", "stderr"):
    s = getattr(sys, n)
    facts[n] = [s.isatty(), s.fileno(), s.encoding, s.errors, s is before[n]]
print("epoch 1 starting")
for i in range(0, 101, 20):
    sys.stderr.write(f"\rtraining {i:3d}% |" + "#" * (i // 10) + " " * (10 - i // 10) + "|")
    sys.stderr.flush()
sys.stderr.write("\n")
print("HF_TOKEN=hf_" + "q" * 30)
print("colour: \x1b[32mgreen\x1b[0m", flush=True)
sys.stdout.write("no newline at the end")
sys.stdout.flush()
exp.stop()
restored = all(getattr(sys, n) is before[n] for n in before)
print()
print("FACTS " + json.dumps({"during": facts, "restored": restored, "run_dir": str(exp.run_dir)}))
"""


def run_in_pty(tmp_path: Path, env: dict[str, str], mode: str) -> tuple[bytes, dict]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode], cwd=tmp_path, env=env, stdin=slave, stdout=slave, stderr=slave,
        close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    out = b"".join(chunks)
    facts_line = next(line for line in out.splitlines() if line.startswith(b"FACTS "))
    return out[: out.index(b"\r\nFACTS ")], json.loads(facts_line[6:])


@pytest.fixture
def child_env(python_env: dict[str, str]) -> dict[str, str]:
    return {**python_env, "TERM": "xterm", "PYTHONUNBUFFERED": "0"}


def test_terminal_sees_the_same_bytes_and_the_run_keeps_a_log(tmp_path: Path, child_env: dict[str, str]) -> None:
    shown_off, facts_off = run_in_pty(tmp_path, child_env, "off")
    shown_on, facts_on = run_in_pty(tmp_path, child_env, "on")
    assert shown_on == shown_off  # byte for byte, \r progress bar and colours included
    assert b"\rtraining 100% |##########|" in shown_on
    for name in ("stdout", "stderr"):
        isatty, fileno, encoding, errors, same_object = facts_on["during"][name]
        assert isatty is True and fileno == facts_off["during"][name][1]
        assert encoding == facts_off["during"][name][2] and errors == facts_off["during"][name][3]
        assert same_object is False  # replaced by the tee while the run is active
        assert facts_off["during"][name][4] is True
    assert facts_on["restored"] is True

    log = (Path(facts_on["run_dir"]) / "output.log").read_text()
    lines = log.splitlines()
    assert lines[0] == "epoch 1 starting"
    assert "training 100% |##########|" in lines  # the bar at its final state, once
    assert sum("training" in line for line in lines) == 1
    assert f"HF_TOKEN={MASK}" in lines and "hf_qqqq" not in log
    assert "colour: \x1b[32mgreen\x1b[0m" in lines
    assert lines[-1] == "no newline at the end"
    assert not (Path(facts_off["run_dir"]) / "output.log").exists()


def test_the_log_is_a_report_artifact_and_the_streams_come_back(experiment_factory, capsys) -> None:
    import sys as _sys

    before = (_sys.stdout, _sys.stderr)
    exp = experiment_factory(track_stdout=True).start()
    assert _sys.stdout is not before[0] and _sys.stderr is not before[1]
    print("visible line")
    print("a warning", file=_sys.stderr)
    import time

    deadline = time.monotonic() + 5
    while "visible line\n" not in (Path(exp.run_dir) / "output.log").read_text():  # live: flushed by the next tick
        assert time.monotonic() < deadline, "output.log did not show the line while the run was active"
        time.sleep(0.05)
    exp.stop()
    assert (_sys.stdout, _sys.stderr) == before
    print("after the run")
    captured = capsys.readouterr()
    assert "visible line" in captured.out and "a warning" in captured.err and "after the run" in captured.out
    (artifact,) = stored(exp).artifacts()
    assert artifact.name == "console" and artifact.type.value == "report"
    text = Path(artifact.files[0].local_path).read_text()
    assert text.splitlines() == ["visible line", "a warning"]


def test_output_log_trails_the_console_by_half_a_second_not_by_the_metrics_interval(experiment_factory) -> None:
    import time

    # A 60 s collector tick: only the log's own flushing can bring a line printed before a quiet stretch.
    exp = experiment_factory(track_stdout=True, settings={"metrics_interval": 60}).start()
    print("first line")  # the first write flushes at once
    print("printed just after, then the script goes quiet")
    printed = time.monotonic()
    log = Path(exp.run_dir) / "output.log"
    while "goes quiet\n" not in log.read_text():
        assert time.monotonic() - printed < 2.0, "output.log lagged the console by more than FLUSH_EVERY"
        time.sleep(0.05)
    exp.stop()


def test_a_stream_replaced_during_the_run_is_left_alone(experiment_factory) -> None:
    import io
    import sys as _sys

    original = _sys.stdout
    exp = experiment_factory(track_stdout=True).start()
    tee = _sys.stdout
    other = io.StringIO()
    _sys.stdout = other
    try:
        exp.stop()
        assert _sys.stdout is other  # not ours to take back
        tee.write("late\n")  # the tee is now a pass-through
    finally:
        _sys.stdout = original
    assert "late" not in (Path(exp.run_dir) / "output.log").read_text()


def test_a_forked_child_neither_duplicates_nor_adds_lines(tmp_path: Path, python_env: dict[str, str]) -> None:
    code = r"""
import os, sys
from tracelet import Experiment, ExperimentConfig
cfg = ExperimentConfig(track_environment=False, track_args=False, track_git=False, track_system_metrics=False)
exp = Experiment("fork", config=cfg).start()
import time; time.sleep(0.3)  # past the collector's first flush: the lines below stay in the file buffer
for i in range(5):
    print(f"parent line {i}")
pid = os.fork()
if pid == 0:
    print("child line")
    sys.exit(0)  # a normal exit: buffers are flushed
os.waitpid(pid, 0)
print("parent after fork")
exp.stop()
print("RUN_DIR " + str(exp.run_dir))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=python_env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "child line" in out.stdout  # the child's console works as always
    run_dir = next(line[8:] for line in out.stdout.splitlines() if line.startswith("RUN_DIR "))
    lines = (Path(run_dir) / "output.log").read_text().splitlines()
    assert lines == [f"parent line {i}" for i in range(5)] + ["parent after fork"]
