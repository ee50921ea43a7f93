"""The benchmark scripts can be run as documented: `hatch run bench`, the README's and the docstrings' command
lines name scripts and options that exist, and the runner tells "cannot run here" from a failure.

The measurements themselves are not run here (minutes each, on noisy machines); these are the cheap checks
that keep the documented commands true.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "run.py")
COMMAND = re.compile(r"python3? (benchmarks/\w+\.py)((?: \[?--[\w-]+(?: [\w.]+)?\]?)*)")


def declared_options(script: Path) -> dict[str, object]:
    """`--flag` -> its default, from the script's `add_argument` calls (read with ast: nothing is imported)."""
    options: dict[str, object] = {}
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            flag = node.args[0]
            if isinstance(flag, ast.Constant) and str(flag.value).startswith("--"):
                default = next((ast.literal_eval(k.value) for k in node.keywords if k.arg == "default"), None)
                options[str(flag.value)] = default
    return options


def documented_options(flags: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(r"(--[\w-]+)(?: ([\w.]+))?", flags)]


def test_hatch_bench_runs_an_existing_script() -> None:
    # The [envs.default.scripts] line, read as text: tomllib is not in Python 3.10, which Tracelet supports.
    line = re.search(r'^bench = "([^"]+)"$', (ROOT / "hatch.toml").read_text(), re.M)
    assert line is not None, "hatch.toml defines no `bench` script"
    command = line.group(1).split()
    assert command[0] == "python"
    assert (ROOT / command[1]).is_file(), f"`hatch run bench` runs {command[1]}, which does not exist"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_docstring_usage_line_matches_the_options_and_their_defaults(script: Path) -> None:
    usage = COMMAND.search(ast.get_docstring(ast.parse(script.read_text())) or "")
    assert usage is not None and usage.group(1) == f"benchmarks/{script.name}", "no usage line in the docstring"
    options = declared_options(script)
    for flag, value in documented_options(usage.group(2)):
        assert flag in options, f"{script.name}'s docstring shows {flag}, which the script does not take"
        if value is not None:  # shown as `[--flag N]`: N is the default the script runs with
            assert float(value) == float(options[flag]), f"{script.name}: {flag} defaults to {options[flag]}"


def test_readme_benchmark_commands_name_existing_scripts_and_options() -> None:
    commands = COMMAND.findall((ROOT / "README.md").read_text())
    assert {Path(path).name for path, _ in commands} >= {p.name for p in SCRIPTS}, "a script missing from README"
    for path, flags in commands:
        assert (ROOT / path).is_file(), f"README runs {path}, which does not exist"
        options = declared_options(ROOT / path)
        for flag, _ in documented_options(flags):
            assert flag in options, f"README runs {path} with {flag}, which it does not take"


def test_runner_tells_skipped_and_missed_targets_from_failures(tmp_path: Path) -> None:
    # run.py runs the scripts beside it: a copy in a folder of stand-ins exercises the real runner.
    shutil.copy(BENCH / "run.py", tmp_path / "run.py")
    (tmp_path / "a_ok.py").write_text("print('measured')\n")
    (tmp_path / "b_nopg.py").write_text(
        "import sys\nprint('skipped: PostgreSQL binaries not found', file=sys.stderr)\nsys.exit(77)\n"
    )
    (tmp_path / "c_nomodule.py").write_text("import benchdep_no_such_module\n")
    (tmp_path / "d_broken.py").write_text("raise SystemExit('a worker failed')\n")
    (tmp_path / "e_slow.py").write_text("import sys\nprint('  ratio 0.80x  (target >= 0.9x)  MISSED')\nsys.exit(3)\n")
    out = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=60)
    outcomes = dict(re.findall(r"^== (\w+): (.*) in \d+ s$", out.stdout, re.M))
    assert outcomes["a_ok"] == "ok"
    assert outcomes["b_nopg"] == "skipped: PostgreSQL binaries not found"
    assert outcomes["c_nomodule"] == "skipped: needs benchdep_no_such_module, not installed here"
    assert outcomes["d_broken"] == "failed (exit 1)"
    assert outcomes["e_slow"] == "ran, a target missed (MISSED above)"
    assert "targets missed: e_slow" in out.stderr
    assert out.returncode == 1 and "failed: d_broken\n" in out.stderr  # the missed target is no failure
    (tmp_path / "d_broken.py").unlink()
    out = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "targets missed: e_slow" in out.stderr and "failed:" not in out.stderr


@pytest.mark.parametrize("script", ["mlflow_throughput", "clearml_throughput", "wandb_throughput"])
def test_a_missed_target_exits_with_its_own_status_and_lost_points_with_1(script: str) -> None:
    # The final exit of each script that checks its targets, read from its source (running it takes minutes).
    text = (BENCH / f"{script}.py").read_text()
    assert "TARGET_MISSED = 3" in text
    assert "sys.exit(0 if ok else TARGET_MISSED if all_landed else 1)" in text


def test_distributed_without_postgresql_is_skipped_before_any_work(tmp_path: Path) -> None:
    pytest.importorskip("psycopg2")  # without the driver the script stops at its import: skipped by run.py too
    # The script's own PostgreSQL lookup, made to fail as it does on a machine without PostgreSQL installed.
    driver = tmp_path / "no_pg.py"
    driver.write_text(
        "import runpy, sys\n"
        "import tracelet_testsupport.distributed as dist_helpers\n"
        "def missing():\n"
        "    raise RuntimeError('PostgreSQL binaries (initdb, pg_ctl) not found: install PostgreSQL 15')\n"
        "dist_helpers.pg_bindir = missing\n"
        f"sys.argv = [{str(BENCH / 'distributed.py')!r}]\n"
        f"runpy.run_path({str(BENCH / 'distributed.py')!r}, run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 77, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith("skipped: PostgreSQL binaries (initdb, pg_ctl) not found")
    assert out.stdout == "", "it measured something before finding PostgreSQL missing"
