"""Building the distributions and installing them into fresh virtual environments (the packaging tests).

The wheels are built once per test session (`wheelhouse`), with `hatch build` as a release builds them, and
every test that installs or inspects a wheel takes them from there: building is the same work each time, and
what a test proves is what the wheel does once built. Each test still installs into its own fresh virtual
environment, resolving third-party dependencies from the registry as a user's `pip install` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tracelet_testsupport.shared import made_once

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
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "MLFLOW_TRACKING_URI", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")
    # HATCH_ENV_ACTIVE & co. (set under `hatch test`) would make `hatch build` look for a builder there.
    prefixes = ("TRACELET_", "HATCH_ENV")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(prefixes)}


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{cmd}\n--- stdout\n{out.stdout[-6000:]}\n--- stderr\n{out.stderr[-4000:]}"
    return out


def distributions(repo: Path) -> dict[str, Path]:
    """Every distribution the repository holds, by folder name: packages/*, the plugin template, the test plugins."""
    found = {p.parent.name: p.parent for p in sorted(repo.glob("packages/*/pyproject.toml"))}
    for extra in (repo / "examples" / "tracelet-backend-template", repo / "tests" / "testplugin"):
        found[extra.name] = extra
    return found


def build_wheels(repo: Path, into: Path) -> None:
    """`hatch build -t wheel` of every distribution: `into/<folder name>/<its wheel>`."""
    for name, folder in distributions(repo).items():
        run([*hatch_command(), "build", "-t", "wheel", str(into / name)], cwd=folder, env=clean_env(), timeout=300)


def wheelhouse(repo: Path, root: Path) -> Path:
    """`build_wheels` made once under `root` (the run's shared folder) for every test of the session."""
    return made_once(root / "wheelhouse", lambda into: build_wheels(repo, into))


def pick(wheelhouse: Path, names: list[str], into: Path) -> Path:
    """A find-links folder holding only the wheels of the distributions `names` (folder names), linked from the
    session's wheelhouse: what pip sees there is exactly what the test chose."""
    into.mkdir(parents=True, exist_ok=True)
    for name in names:
        (wheel,) = (wheelhouse / name).glob("*.whl")
        os.link(wheel, into / wheel.name)
    return into


def fresh_venv(venv: Path) -> Path:
    """A new virtual environment (with its own pip); its interpreter."""
    run([sys.executable, "-m", "venv", str(venv)], env=clean_env(), timeout=180)
    return venv / ("Scripts" if os.name == "nt" else "bin") / "python"


def pip_install(python: Path, wheels: Path, requirement: str, pins: list[str], constraints: Path) -> None:
    """`pip install <requirement>` into `python`'s environment, ours from `wheels` (--find-links), third-party
    distributions from the registry with `pins` as constraints. `--no-compile`: byte-compiling the trackers'
    thousands of modules is pip's work, not ours (a test process compiles what it imports)."""
    constraints.write_text("".join(f"{pin}\n" for pin in pins))
    run(
        [
            str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-compile",
            "--find-links", str(wheels), "-c", str(constraints), requirement,
        ],
        env=clean_env(), timeout=900,
    )  # fmt: skip


def last_json(python: Path, script: str, *args: str, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run `script` with `python`; the JSON object it printed last."""
    out = run([str(python), "-c", script, *args], cwd=cwd, env=env, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict), result
    return result
