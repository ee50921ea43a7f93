"""The run folder of one experiment, as its owner writes it: the journal, run.json and the owner lock.

The format is documented in `tracelet.core.engine.journal`. Only the process that started the run writes here
(a forked child never does: `tracelet.core.engine.lifecycle`), run.json is replaced atomically on every write, and
the owner lock (`tracelet.core.engine.owner`) is held from the first write until run.json records the end, so a
reader can tell a dead run from a live one.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet.core.contract.records import RunStatus
from tracelet.core.contract.values import plain
from tracelet.core.engine import journal

if TYPE_CHECKING:
    from tracelet.core.contract.records import StopReport

logger = logging.getLogger("tracelet")


class RunRecord:
    """run.json and the journal of one run folder; `identity` holds the fields that never change."""

    def __init__(self, run_dir: Path, identity: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self._meta: dict[str, Any] = {**identity, "status": RunStatus.RUNNING.value}
        self._owner: Any = None  # tracelet.core.engine.owner.Owner while the run is ours
        self.journal: journal.JournalWriter | None = None
        self._lock = threading.Lock()  # progress arrives from the orchestrator's fsync thread
        self._ended = False

    def open(self, metadata: dict[str, Any], backend_configs: dict[str, Any]) -> journal.JournalWriter:
        """Create the folder and the journal, take the owner lock and write run.json (RUNNING).

        `backend_configs` (redacted) is recorded so that `tracelet sync` can finish the same backend runs later.
        Raises OSError when the folder cannot be written.
        """
        from tracelet.core.engine.owner import Owner

        self.journal = journal.JournalWriter(self.run_dir)
        self._owner = Owner(self.run_dir).claim()
        self._meta.update(metadata=metadata, owner=self._owner.info, backend_config=backend_configs)
        self._write()
        return self.journal

    def record_backend_runs(self, runs: dict[str, dict[str, Any]]) -> None:
        """The backends' run ids as soon as they are known, so a crashed run's backend runs can be finished."""
        if not runs:
            return
        try:
            with self._lock:  # the fsync thread may be writing progress
                self._meta["backend_runs"] = plain(runs)
                self._write_locked()
        except OSError as exc:
            logger.error("tracelet: cannot record the backend runs in %s: %s", self.run_dir, exc)

    def record_progress(self, cursors: dict[str, int], failed_artifacts: dict[str, list[str]] | None = None) -> None:
        """How many events each backend has taken so far (`progress`): if the process dies, `tracelet sync`
        resumes each backend's run from there rather than resending the whole run. `failed_artifacts` (backend
        -> tokens of artifact events it failed to take, behind that point) go with it, so a sync of a run
        whose process died sends those too. Raises OSError."""
        with self._lock:
            if self._ended:  # the end record says exactly what was delivered; never overwrite it
                return
            self._meta["progress"] = dict(cursors)
            if failed_artifacts:
                self._meta["failed_artifacts"] = {k: list(v) for k, v in failed_artifacts.items()}
            self._write_locked()

    def end(
        self, status: RunStatus, report: StopReport | None, failed_artifacts: dict[str, list[str]] | None = None
    ) -> None:
        """Record how the run ended (and what each backend received), then give up the owner lock.

        `failed_artifacts`: backend -> tokens of the artifact events it failed to take (an outage); recorded as
        `delivery.<backend>.failed_artifacts`, which `tracelet sync RUN` delivers later.
        """
        with self._lock:
            self._ended = True
        self._meta["status"] = RunStatus(status).value
        if report is not None:
            self._meta["ended_at"] = datetime.now(timezone.utc).isoformat()
            self._meta["events"] = report.events
            self._meta["delivery"] = {
                name: {
                    "delivered": r.delivered,
                    "undelivered": r.undelivered,
                    "dropped": r.dropped,
                    "refused": r.refused,
                    "no_hook": dict(r.no_hook),  # kinds of event this backend takes no hook for
                    "errors": r.errors,
                    "tracebacks": dict(r.tracebacks),  # the first of each kind of error, for the plugin's author
                    "details": plain(r.details),
                }
                for name, r in report.backends.items()
            }
            if report.damage:  # journal damage a backend's catch-up skipped (its events are in `dropped`)
                self._meta["journal_damage"] = list(report.damage)
            for name, tokens in (failed_artifacts or {}).items():
                if tokens and name in self._meta["delivery"]:
                    self._meta["delivery"][name]["failed_artifacts"] = list(tokens)
        self._meta.pop("failed_artifacts", None)  # the running checkpoint's: `delivery` has the final word
        try:
            self._write()
        except OSError as exc:  # the run's data is delivered; a full disk must not crash the script's end
            logger.error("tracelet: cannot record the end of the run in %s: %s", self.run_dir, exc)
        finally:
            if self._owner is not None:
                self._owner.release()  # only once run.json says how the run ended: until then it is ours

    def _write(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        journal.write_meta(self.run_dir, self._meta)
