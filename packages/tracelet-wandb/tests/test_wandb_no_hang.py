"""Never prompt, never hang, never phone home: the no-key error, offline with no network at all, and no
socket other than local ones during a full offline run.

Each case runs in a fresh process, so the timing includes nothing imported before, and a prompt would show
up as a process waiting on its terminal."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

NO_KEY = textwrap.dedent(
    """
    import json, sys, time
    import tracelet
    from tracelet.plugin import ConfigurationError
    out = {"errors": [], "seconds": []}
    for attempt in range(2):  # the first pays for Tracelet's own first start (plugin discovery, imports)
        t0 = time.monotonic()
        try:
            tracelet.start_logging("no-key", project="p", backend="wandb", config={"track_system": False})
        except ConfigurationError as exc:
            out["errors"].append(str(exc))
        else:
            out["errors"].append(None)
            tracelet.stop_logging()
        out["seconds"].append(time.monotonic() - t0)
    out["wandb"] = "wandb" in sys.modules
    print(json.dumps(out))
    """
)


def online_env(env: dict[str, str], home: Path) -> dict[str, str]:
    """W&B online (its default) with no credentials anywhere it looks."""
    env = {k: v for k, v in env.items() if k not in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE")}
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    return env


def test_online_without_key_fails_fast_naming_both_fixes(tmp_path: Path, python_env: dict[str, str]) -> None:
    env = online_env(python_env, tmp_path / "home")
    # A terminal on stdin: an interactive prompt would wait on it until the timeout below.
    controller, terminal = pty.openpty()
    try:
        out = subprocess.run(
            [sys.executable, "-c", NO_KEY], stdin=terminal, capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        os.close(controller)
        os.close(terminal)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert None not in result["errors"], out.stderr[-2000:]
    assert result["seconds"][0] < 10.0  # cold: never W&B's 90 s init timeout, never a prompt
    assert result["seconds"][1] < 1.0  # warm: the check itself
    for error in result["errors"]:
        assert "wandb login" in error and "WANDB_API_KEY" in error
        assert "mode" in error and "offline" in error
    assert result["wandb"] is False  # decided before wandb (and its service) was even imported


def test_offline_mode_from_wandbs_settings_file_needs_no_key(
    tmp_path: Path, python_env: dict[str, str], offline_wandb: dict[str, str]
) -> None:
    env = online_env(python_env, tmp_path / "home")
    # what `wandb offline` writes
    Path(offline_wandb["WANDB_CONFIG_DIR"], "settings").write_text("[default]\nmode = offline\n")
    out = subprocess.run([sys.executable, "-c", NO_KEY], capture_output=True, text=True, env=env, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == [None, None] and result["wandb"] is True, out.stderr[-2000:]


FULL_RUN = textwrap.dedent(
    """
    import json, socket, sys, threading, time
    seen = []

    def audit(event, args):
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            seen.append([event, repr(args[1] if len(args) > 1 else args)])
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
            seen.append([event, repr(args[0])])

    sys.addaudithook(audit)
    import psutil
    import tracelet
    from tracelet.plugin import ArtifactType

    conns, done = [], threading.Event()

    def sample():  # every socket of this process and of W&B's service processes
        me = psutil.Process()
        while not done.is_set():
            for proc in [me, *me.children(recursive=True)]:
                try:
                    for c in proc.net_connections(kind="inet"):
                        conns.append([proc.name(), c.laddr.ip if c.laddr else None, c.raddr.ip if c.raddr else None])
                except psutil.Error:
                    pass
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    exp = tracelet.start_logging("net", project="p", backend="wandb", config={"track_system": False})
    for i in range(2000):
        exp.log_metric("loss", 1.0 / (i + 1), i)
    exp.log_params({"lr": 0.1})
    open("w.bin", "wb").write(b"x" * 1000)
    art = exp.create_artifact("model", ArtifactType.MODEL).add_file("w.bin").add_reference("https://example.com/x.bin")
    result = exp.log_artifact(art, wait=60)["wandb"]
    report = exp.stop()
    time.sleep(0.2)
    done.set()
    print(json.dumps({"seen": seen, "conns": conns, "artifact": result.status,
                      "undelivered": report.backends["wandb"].undelivered,
                      "log": report.backends["wandb"].details["transaction_log"]}))
    """
)

LOCAL_ADDRESSES = {"127.0.0.1", "::1", "localhost", "0.0.0.0", "::"}


def test_offline_run_opens_no_socket_but_local_ones(tmp_path: Path, python_env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", FULL_RUN], capture_output=True, text=True, env=python_env, cwd=tmp_path, timeout=180
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["artifact"] == "ok" and result["undelivered"] == 0 and Path(result["log"]).stat().st_size > 0
    assert any(event == "socket.connect" for event, _ in result["seen"])  # the hook sees W&B's service connection
    for event, target in result["seen"]:
        # unix-socket paths, or a loopback host; never a name to resolve or a remote address
        assert target.startswith(("'/", "'\\x00", "b'")) or any(a in target for a in LOCAL_ADDRESSES), (event, target)
    for name, local, remote in result["conns"]:
        assert remote in (None, *LOCAL_ADDRESSES), (name, local, remote)
        assert local in (None, *LOCAL_ADDRESSES), (name, local, remote)


def _network_namespace() -> list[str] | None:
    """A command prefix that runs a program with no network at all (only a down loopback), if allowed here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for prefix in ([unshare, "--net"], [unshare, "--map-root-user", "--net"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return None


def test_offline_run_works_with_no_network_at_all(tmp_path: Path, python_env: dict[str, str]) -> None:
    prefix = _network_namespace()
    if prefix is None:
        pytest.skip("this machine does not allow a network namespace (unshare); the socket test above still runs")
    t0 = time.monotonic()
    out = subprocess.run(
        [*prefix, sys.executable, "-c", FULL_RUN], capture_output=True, text=True, env=python_env, cwd=tmp_path,
        timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["artifact"] == "ok" and result["undelivered"] == 0
    assert time.monotonic() - t0 < 150  # no network timeout was waited out
