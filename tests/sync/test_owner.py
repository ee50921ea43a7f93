"""Telling a dead run from a live one (`tracelet.core.engine.owner`): the lock, the pid and its start time."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tracelet.core.engine import owner


def test_the_lock_decides_for_an_owner_on_another_host(tmp_path: Path) -> None:
    held = owner.Owner(tmp_path).claim()
    meta = {"status": "RUNNING", "owner": {**held.info, "host": "elsewhere-node-7"}}
    assert owner.liveness(tmp_path, meta) == "alive"  # pid and start time mean nothing on another host
    held.release()
    assert owner.liveness(tmp_path, meta) == "dead"
    assert owner.effective_status(tmp_path, meta) == "KILLED" and owner.is_dead(tmp_path, meta)
    assert owner.effective_status(tmp_path, {**meta, "status": "FINISHED"}) == "FINISHED"


def test_a_recycled_pid_is_not_taken_for_the_owner(tmp_path: Path) -> None:
    info = {"host": socket.gethostname(), "pid": os.getpid(), "process_started": 12.0, "lock": None}
    assert owner.liveness(tmp_path, {"status": "RUNNING", "owner": info}) == "dead"  # this pid started later
    info["process_started"] = owner.Owner(tmp_path).info["process_started"]
    assert owner.liveness(tmp_path, {"status": "RUNNING", "owner": info}) == "alive"


def test_without_an_owner_record_nothing_is_guessed(tmp_path: Path) -> None:
    meta = {"status": "RUNNING"}
    assert owner.liveness(tmp_path, meta) == "unknown" and owner.effective_status(tmp_path, meta) == "RUNNING"
