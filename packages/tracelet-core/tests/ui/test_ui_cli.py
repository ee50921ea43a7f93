"""The `tracelet ui` and `tracelet report` commands as a user types them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import tracelet
from tracelet.cli import main


def _start(args: list[str], store: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracelet.cli", "ui", "--dir", str(store), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


@pytest.mark.slow  # starts servers
def test_ui_serves_on_localhost_by_default_and_warns_for_another_host(tmp_path: Path) -> None:
    proc, line = _start([], tmp_path)
    try:
        assert "http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "api/runs") as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0  # Ctrl-C ends it cleanly
    proc, line = _start(["--host", "0.0.0.0"], tmp_path)
    try:
        assert "http://0.0.0.0:" in line
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert "warning: serving on 0.0.0.0" in err and "--host 127.0.0.1" in err


def test_ui_on_a_busy_port_says_so(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "tracelet.cli", "ui", "--dir", str(tmp_path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1 and "choose another with --port" in out.stderr


def test_report_of_an_unknown_run_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "nope", "-o", "r.html"]) == 1
    assert "no run matches 'nope'" in capsys.readouterr().err
    assert not os.path.exists("r.html")


def test_report_writes_one_file_with_everything_inline(capsys: pytest.CaptureFixture[str]) -> None:
    with tracelet.start_logging("rep", project="p", backend="local") as exp:
        exp.log_params({"lr": 0.5})
        for i in range(10):
            exp.log_metric("loss", 1.0 / (i + 1), i)
    assert main(["report", exp.id[:17], "-o", "out.html"]) == 0
    assert "wrote out.html" in capsys.readouterr().out
    html = Path("out.html").read_text()
    assert 'src="/static/' not in html and 'href="/static/' not in html  # nothing to fetch
    assert "uPlot" in html and "window.TRACELET_REPORT" in html and f"series:{exp.id}:step:loss" in html
    assert "Content-Security-Policy" in html


@pytest.mark.slow  # starts a server
def test_open_opens_the_app_in_the_browser(tmp_path: Path) -> None:
    # webbrowser runs $BROWSER with the URL: a script that writes it down stands in for the user's browser.
    opener = tmp_path / "opener.py"
    opened = tmp_path / "opened.txt"
    opener.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    env = {**os.environ, "BROWSER": f"{sys.executable} {opener} %s"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracelet.cli", "ui", "--dir", str(tmp_path), "--port", "0", "--open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ")[1].split()[0]
        for _ in range(100):
            if opened.exists() and opened.read_text():
                break
            time.sleep(0.1)
        assert opened.read_text() == url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
