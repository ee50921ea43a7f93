"""Run Tracelet's benchmark scripts one after another (`hatch run bench`), each in its own interpreter.

    python benchmarks/run.py                 # every benchmarks/*.py script
    python benchmarks/run.py logging mlflow  # only those whose file name contains one of the words

Each script measures its subject side by side with a baseline in one run and prints medians (see its
docstring); this runner only finds them, runs them with their defaults and reports which failed. A script
whose optional dependency is not installed in this environment (torch, wandb, ...) is reported as skipped,
naming the missing module, and so is one that exits with status 77 (`SKIPPED`) after saying on stderr what
it needs (distributed.py without PostgreSQL). A script that ran and delivered everything but missed one of
its targets exits with status 3 (`TARGET_MISSED`; its output marks the figure MISSED): listed at the end, not
a failure, since on small shared machines a ratio can miss by noise alone. Any other non-zero exit (a crash,
lost points) is a failure and makes the runner exit 1.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIPPED = 77  # a script's "cannot run here" status (automake's convention), e.g. no PostgreSQL installed
TARGET_MISSED = 3  # a script ran, every point landed, but a ratio missed its target


def scripts(words: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))
    return [p for p in found if not words or any(w in p.stem for w in words)]


def main(argv: list[str]) -> int:
    chosen = scripts(argv)
    if not chosen:
        print(f"no benchmark matches {argv}; there are: {', '.join(p.stem for p in scripts([]))}", file=sys.stderr)
        return 2
    failed, missed = [], []
    for script in chosen:
        print(f"== {script.stem}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], stderr=subprocess.PIPE, text=True)
        sys.stderr.write(proc.stderr)
        missing = re.search(r"ModuleNotFoundError: No module named '([^']+)'", proc.stderr)
        if proc.returncode == 0:
            outcome = "ok"
        elif missing and not missing.group(1).startswith("tracelet"):  # Tracelet itself missing is a failure
            outcome = f"skipped: needs {missing.group(1)}, not installed here"
        elif proc.returncode == TARGET_MISSED:
            outcome = "ran, a target missed (MISSED above)"
            missed.append(script.stem)
        elif proc.returncode == SKIPPED:  # the script's last stderr line says why ("skipped: ...")
            lines = proc.stderr.strip().splitlines()
            outcome = lines[-1] if lines and lines[-1].startswith("skipped") else "skipped"
        else:
            outcome = f"failed (exit {proc.returncode})"
            failed.append(script.stem)
        print(f"== {script.stem}: {outcome} in {time.perf_counter() - t0:.0f} s\n", flush=True)
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
