"""`tracelet runs` / `show` piped into a reader that is gone (`| head -1` after its line) end quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tracelet_testsupport.sync import local_run


def test_runs_and_show_into_a_closed_pipe_end_without_a_traceback(runs_dir: Path) -> None:
    run = local_run(runs_dir, "piped", 20)
    for args in (["runs"], ["show", run.id]):
        read, write = os.pipe()
        os.close(read)  # the reader has already left: every write of the command meets a closed pipe
        proc = subprocess.Popen(
            [sys.executable, "-m", "tracelet.cli", *args, "--dir", str(runs_dir)], stdout=write, stderr=subprocess.PIPE
        )
        os.close(write)
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
        assert proc.returncode == 141, (args, proc.returncode)  # 128 + SIGPIPE, as a shell reports it
