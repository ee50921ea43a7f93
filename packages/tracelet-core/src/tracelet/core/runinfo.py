"""Where a run comes from: git state, host and interpreter, command line. Redacted before anyone sees it."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from typing import Any

from tracelet.core.redact import redact_argv, redact_mapping, redact_text


def _git(*args: str, cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(cwd: str | None = None) -> dict[str, Any]:
    """Commit, branch, remote (credentials masked) and whether the tree has uncommitted changes."""
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if not commit:
        return {}
    remote = _git("config", "--get", "remote.origin.url", cwd=cwd)
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    return {
        "commit": commit,
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd),
        "remote": redact_text(remote) if remote else None,
        "root": _git("rev-parse", "--show-toplevel", cwd=cwd),
        "dirty": bool(status),
    }


def environment_info() -> dict[str, Any]:
    """Interpreter, host, user, command line and environment variables, secrets masked."""
    try:
        user = getpass.getuser()
    except Exception:
        user = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "user": user,
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "argv": redact_argv(sys.argv),
        "env": redact_mapping(dict(os.environ)),
    }


def collect(track_git: bool, track_env: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"source": redact_argv(sys.argv[:1])[0] if sys.argv and sys.argv[0] else None}
    if track_git:
        meta["git"] = git_info()
    if track_env:
        meta["environment"] = environment_info()
    return meta
