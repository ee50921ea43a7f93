"""A fork while the collector thread is importing must not leave the child an import lock nobody releases.

The collector thread imports NVML's bindings lazily, in its first sample, right after start(). A process that
forks in that moment (DataLoader workers start early) would hand its child the module's import lock held by a
thread the child does not have: the child's own import of that module (or its own run's collectors) would hang.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("pynvml")

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time

    class SlowFinder:
        # Holds the import of pynvml for a while on whichever thread imports it (the collector thread).
        def find_spec(self, name, path=None, target=None):
            if name == "pynvml" and threading.current_thread().name == "tracelet-collectors":
                time.sleep(1.0)
            return None

    sys.meta_path.insert(0, SlowFinder())
    import tracelet

    exp = tracelet.start_logging("fork-import", backend="local", config={"track_system": True})
    time.sleep(0.3)  # the collector thread is inside `import pynvml` now
    pid = os.fork()
    if pid == 0:
        signal.alarm(8)  # a hung import ends the child with SIGALRM instead of hanging the test
        import pynvml  # noqa: F401
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    exp.stop()
    print("child", os.waitstatus_to_exitcode(status))
    """
)


def test_a_child_forked_during_the_collectors_import_can_import_the_module(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "child 0", out.stdout + out.stderr  # -14: hung, killed by SIGALRM
