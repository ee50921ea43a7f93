"""The template plugin package passes the conformance kit: from source here, and (slow) built into a wheel and
installed with the built `tracelet` wheel into a fresh virtual environment, where its own tests run; and (slow)
installed into a fresh virtual environment by the plugin guide's own install lines, run as written.

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

from tracelet_testsupport.packaging import VERSION, clean_env, fresh_venv, pick, run

REPO = Path(__file__).resolve().parents[4]
TEMPLATE = REPO / "examples" / "tracelet-backend-template"
GUIDE = REPO / "docs" / "plugins.md"
INSTALL_MARKER = "<!-- install-lines:"


def test_template_passes_the_conformance_kit_from_source(tmp_path: Path) -> None:
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join([str(TEMPLATE / "src"), *(p for p in sys.path if p)])}
    out = run(
        [sys.executable, "-m", "pytest", "tests/test_conformance.py", "tests/test_config.py", "-q", "-p",
         "no:cacheprovider", "--basetemp", str(tmp_path / "t")],
        cwd=TEMPLATE, env=env, timeout=600,
    )  # fmt: skip
    assert re.search(r"\b11 passed\b", out.stdout), out.stdout  # 9 + 2 config; artifacts: skipped (none declared)
    assert "failed" not in out.stdout


@pytest.mark.slow
def test_template_wheel_installs_next_to_the_tracelet_wheel_and_passes_its_tests(
    tmp_path: Path, wheelhouse: Path
) -> None:
    wheels = pick(wheelhouse, ["tracelet-core", TEMPLATE.name], tmp_path / "wheels")
    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert built == [f"tracelet-{VERSION}-py3-none-any.whl", f"tracelet_backend_template-{VERSION}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    python = fresh_venv(venv)
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
    assert re.search(r"\b13 passed\b", out.stdout), out.stdout  # 9 conformance + 2 entry point + 2 config
    where = run(
        [str(python), "-c", "import tracelet, tracelet_backend_template as t; print(tracelet.__file__, t.__file__)"],
        cwd=work,
        env=clean_env(),
    ).stdout.split()
    assert all(p.startswith(str(venv)) for p in where), where


def guide_install_lines() -> list[str]:
    """The shell lines of the guide's install block (the fenced block after its `install-lines` marker)."""
    text = GUIDE.read_text(encoding="utf-8")
    assert INSTALL_MARKER in text, f"docs/plugins.md lost its {INSTALL_MARKER!r} marker above the install lines"
    block = text[text.index(INSTALL_MARKER) :].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_template_readme_gives_the_guides_install_lines() -> None:
    lines = guide_install_lines()
    assert any("--find-links" in line and '-e ".[test]"' in line for line in lines), lines
    readme = (TEMPLATE / "README.md").read_text(encoding="utf-8")
    assert "```bash\n" + "\n".join(lines) + "\n```" in readme, "the template's README and the guide disagree"
    # The lower bound that keeps pip off the unrelated `tracelet` 0.0.x of the public index.
    assert 'dependencies = ["tracelet>=0.1.0,<0.2"]' in (TEMPLATE / "pyproject.toml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_guides_install_lines_install_the_template_in_a_fresh_venv_and_pass_the_kit(
    tmp_path: Path, wheelhouse: Path
) -> None:
    """The guide's lines, run as written in a copy of the template; the only input is `WHEELS`, the folder of
    Tracelet's wheels the guide tells the author to fetch or build (here: built from this checkout)."""
    wheels = pick(wheelhouse, ["tracelet-core"], tmp_path / "wheels")
    assert sorted(w.name for w in wheels.glob("*.whl")) == [f"tracelet-{VERSION}-py3-none-any.whl"]

    work = tmp_path / "tracelet-backend-template"
    shutil.copytree(
        TEMPLATE, work, ignore=shutil.ignore_patterns(".venv", "__pycache__", ".pytest_cache", "*.egg-info")
    )
    # `python` is this interpreter (the author's own Python); pip reads the machine's usual configuration.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**clean_env(), "WHEELS": str(wheels), "PATH": path}

    lines = guide_install_lines()
    outputs = []
    for i, line in enumerate(lines):
        if i == 1:
            # Without Tracelet's wheels the requirement finds nothing, rather than the unrelated `tracelet` 0.0.x.
            bare = subprocess.run(
                [str(work / ".venv" / "bin" / "python"), "-m", "pip", "install", "--dry-run", "-e", ".[test]"],
                cwd=work, env=env, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            assert bare.returncode != 0, bare.stdout
            assert "No matching distribution found for tracelet" in bare.stderr, bare.stderr[-3000:]
            assert "tracelet-0.0" not in bare.stdout + bare.stderr
        outputs.append(run(["bash", "-c", line], cwd=work, env=env, timeout=900).stdout)
    assert re.search(r"\b13 passed\b", outputs[-1]), outputs[-1]  # 9 conformance + 2 entry point + 2 config
    assert "failed" not in outputs[-1]

    python = work / ".venv" / "bin" / "python"
    probe = "import importlib.metadata as m, tracelet; print(m.version('tracelet'), tracelet.__file__)"
    version, where = run([str(python), "-c", probe], cwd=work, env=env).stdout.split()
    assert version == VERSION and where.startswith(str(work / ".venv")), (version, where)
