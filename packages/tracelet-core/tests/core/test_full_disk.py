"""A disk that fills up mid-run (a small tmpfs as TRACELET_DIR): one error, delivery to the other backends goes
on to the last point, and what the journal holds stays readable.

The tmpfs is mounted by the test; that needs Linux and root (CI runs as root). Where mounting is impossible
the test is skipped saying so: a platform limit, not a default skip.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracelet
from tracelet import store
from tracelet.core.engine import journal
from tracelet_testplugin.backends import RECORDS


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if not sys.platform.startswith("linux"):
        pytest.skip("a tmpfs can only be mounted on Linux")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=384k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_mid_run_is_one_error_and_loses_nothing_elsewhere(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRACELET_DIR", str(small_disk))
    caplog.set_level(logging.WARNING, logger="tracelet")
    points = 60_000  # about 1.5 MB of journal: four times the disk
    exp = tracelet.start_logging("full", project="disk", backend=["local", "recorder"])
    exp.log_params({"lr": 0.1})
    for i in range(points):
        exp.log_metric("loss", float(i), i)
    report = exp.stop()
    assert report is not None
    recorded = RECORDS[f"recorder:{exp.id}"]
    assert [m.value for m in recorded["metrics"]] == [float(i) for i in range(points)]
    assert report.backends["recorder"].undelivered == 0 and report.backends["recorder"].dropped == 0
    journal_errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "cannot write the journal" in r.getMessage()
    ]
    assert len(journal_errors) == 1 and "No space left on device" in journal_errors[0].getMessage()
    # What was written reads back: a prefix of the run, nothing invented, no traceback.
    run = store.open_run(str(exp.run_dir))
    reader = journal.JournalReader(Path(exp.run_dir) / journal.EVENTS_FILE, warn=False)
    got = list(reader.events())
    assert 1000 < len(got) < points and [seq for seq, _ in got] == list(range(len(got)))
    assert got[0][1][0] == "p" and all(e == ("m", "loss", float(s - 1), s - 1, e[4]) for s, e in got[1:])
    assert not reader.damage
    assert len(run.metrics()["loss"]) == len(got) - 1
