"""Moved: where a run comes from is now told by the collectors (`tracelet.collectors.git`, `.environment`,
`.args`), each behind its own switch; these names stay importable for code that used them."""

from __future__ import annotations

import sys
from typing import Any

from tracelet.collectors.environment import environment_info
from tracelet.collectors.git import git_info
from tracelet.core.redact import redact_argv

__all__ = ["collect", "environment_info", "git_info"]


def collect(track_git: bool, track_env: bool) -> dict[str, Any]:
    """The run metadata of the git and environment collectors plus the command line, without plugins."""
    argv = redact_argv(sys.argv)
    meta: dict[str, Any] = {"source": argv[0] if argv and argv[0] else None, "argv": argv}
    if track_git and (git := git_info()):
        meta["git"] = git
    if track_env:
        meta["environment"] = environment_info()
    return meta
