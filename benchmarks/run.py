"""Run Tracelet's benchmark scripts one after another (`hatch run bench`), each in its own interpreter.

    python benchmarks/run.py                 # every benchmarks/*.py script
    python benchmarks/run.py logging mlflow  # only those whose file name contains one of the words

Each script measures its subject side by side with a baseline in one run and prints medians (see its
docstring); this runner only finds them, runs them with their defaults and reports which failed. A script
whose optional dependency is not installed in this environment (torch, wandb, ...) is reported as skipped,
naming the missing module; any other failure makes the runner exit 1.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(words: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))
    return [p for p in found if not words or any(w in p.stem for w in words)]


def main(argv: list[str]) -> int:
    chosen = scripts(argv)
    if not chosen:
        print(f"no benchmark matches {argv}; there are: {', '.join(p.stem for p in scripts([]))}", file=sys.stderr)
        return 2
    failed = []
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
        else:
            outcome = f"failed (exit {proc.returncode})"
            failed.append(script.stem)
        print(f"== {script.stem}: {outcome} in {time.perf_counter() - t0:.0f} s\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
