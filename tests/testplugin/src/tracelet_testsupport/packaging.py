"""Building the distributions and installing them into fresh virtual environments (the packaging tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "0.1.0"


def hatch_command() -> list[str]:
    found = shutil.which("hatch")
    if found:
        return [found]
    beside = Path(sys.executable).parent / "hatch"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "hatch"]


def clean_env() -> dict[str, str]:
    """The parent's environment minus anything that would make the child see the dev environment."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "MLFLOW_TRACKING_URI", "PYTEST_CURRENT_TEST")
    # HATCH_ENV_ACTIVE & co. (set under `hatch test`) would make `hatch build` look for a builder there.
    prefixes = ("TRACELET_", "HATCH_ENV")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(prefixes)}


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{cmd}\n--- stdout\n{out.stdout[-4000:]}\n--- stderr\n{out.stderr[-4000:]}"
    return out
