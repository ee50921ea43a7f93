"""The template plugin package passes the conformance kit: from source here, and (slow) built into a wheel and
installed with the built `tracelet` wheel into a fresh virtual environment, where its own tests run.

Installs pin our versions and use --find-links to the wheels just built (an unrelated `tracelet` exists on the
public index); third-party dependencies (pluggy, attrs, cattrs, psutil, pytest) come from the registry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
TEMPLATE = REPO / "examples" / "tracelet-backend-template"
VERSION = "0.1.0"


def clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("TRACELET_", "HATCH_ENV"))}


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{cmd}\n--- stdout\n{out.stdout[-6000:]}\n--- stderr\n{out.stderr[-4000:]}"
    return out


def hatch_command() -> list[str]:
    found = shutil.which("hatch") or (
        str(Path(sys.executable).parent / "hatch") if (Path(sys.executable).parent / "hatch").exists() else None
    )
    return [found] if found else [sys.executable, "-m", "hatch"]


def test_template_passes_the_conformance_kit_from_source(tmp_path: Path) -> None:
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join([str(TEMPLATE / "src"), *(p for p in sys.path if p)])}
    out = run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "-q", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "t")],
        cwd=TEMPLATE, env=env, timeout=600,
    )  # fmt: skip
    assert re.search(r"\b9 passed\b", out.stdout), out.stdout  # artifacts: skipped, the template declares none
    assert "failed" not in out.stdout


@pytest.mark.slow
def test_template_wheel_installs_next_to_the_tracelet_wheel_and_passes_its_tests(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    for package in (REPO / "packages" / "tracelet-core", TEMPLATE):
        run([*hatch_command(), "build", "-t", "wheel", str(wheels)], cwd=package, env=clean_env(), timeout=300)
    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert built == [f"tracelet-{VERSION}-py3-none-any.whl", f"tracelet_backend_template-{VERSION}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env=clean_env(), timeout=120)
    python = venv / "bin" / "python"
    run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--find-links", str(wheels),
         f"tracelet=={VERSION}", f"tracelet-backend-template[test]=={VERSION}", f"pytest=={pytest.__version__}"],
        env=clean_env(), timeout=900,
    )  # fmt: skip

    # The template's tests, outside its source tree: they import the installed distributions only.
    work = tmp_path / "work"
    shutil.copytree(TEMPLATE / "tests", work / "tests")
    out = run(
        [str(python), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t")],
        cwd=work, env=clean_env(), timeout=600,
    )  # fmt: skip
    assert re.search(r"\b11 passed\b", out.stdout), out.stdout  # 9 conformance + 2 entry point, 1 skipped
    where = run(
        [str(python), "-c", "import tracelet, tracelet_backend_template as t; print(tracelet.__file__, t.__file__)"],
        cwd=work,
        env=clean_env(),
    ).stdout.split()
    assert all(p.startswith(str(venv)) for p in where), where
