"""`tracelet verify`: check run folders (journal and run.json), and write clean copies of damaged ones.

Guarantees:

- Checking only reads. A run is damaged when its journal has damaged, refused or duplicated frames
  (`tracelet.core.engine.journal.Damage`), a last frame cut short (unless the run is still live: then its writer is
  writing it), fewer events than run.json counted at stop, or a run.json that cannot be read.
- Repairing never destroys data: the damaged file is renamed `<name>.damaged-<UTC time>` beside the clean copy,
  which takes its name, so the run reads, lists and syncs as before. The clean journal holds every good frame
  with its sequence numbers unchanged (backends' cursors in run.json stay valid; the lost events stay a gap).
  A run.json that cannot be read is rebuilt from the folder (run id, project) and the journal (event count),
  with status KILLED (how the run ended is unknown). run.json's `repaired` records what was done, so a
  repaired run verifies clean.
- A live run (RUNNING, its process alive) is never repaired: its writer still appends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tracelet.core.contract.records import RunStatus
from tracelet.core.engine import journal

REPAIRED_KEY = "repaired"


@dataclass
class Verdict:
    """What `check` found in one run folder: `problems` (empty: sound), `events` readable in its journal."""

    path: Path
    run_id: str
    problems: list[str] = field(default_factory=list)
    events: int = 0
    end_seq: int = 0
    live: bool = False
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(run: Any) -> Verdict:
    """Check one run (`tracelet.store.LocalRun`)."""
    from tracelet.core.engine import owner

    path = Path(run.path)
    verdict = Verdict(path, run.id)
    meta = run.meta
    if run.meta_error is not None:
        verdict.problems.append(run.meta_error)
    elif not isinstance(meta.get("run_id"), str) or meta.get("status") not in {s.value for s in RunStatus}:
        verdict.problems.append(f"{journal.META_FILE} lacks a run id or a known status")
    verdict.live = meta.get("status") == RunStatus.RUNNING.value and owner.liveness(path, meta) == "alive"
    reader = journal.JournalReader(path / journal.EVENTS_FILE, warn=False)
    for _ in reader.events():
        verdict.events += 1
    verdict.end_seq = reader.end_seq
    for damage in reader.damage:
        verdict.problems.append(f"{journal.EVENTS_FILE} {damage.describe()}")
    if reader.torn is not None and not verdict.live:
        verdict.problems.append(f"{journal.EVENTS_FILE} {reader.torn.describe()}")
    recorded = meta.get("events")
    known_end = (meta.get(REPAIRED_KEY) or {}).get("journal_end") if isinstance(meta.get(REPAIRED_KEY), dict) else None
    expected = known_end if isinstance(known_end, int) else recorded
    if isinstance(expected, int) and not isinstance(expected, bool) and reader.end_seq < expected:
        missing = expected - reader.end_seq
        verdict.problems.append(
            f"{journal.EVENTS_FILE} ends at event #{reader.end_seq:,}: {missing:,} of the {expected:,} events "
            f"{journal.META_FILE} counts are missing at its end"
        )
    return verdict


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def repair(run: Any, verdict: Verdict) -> list[str]:
    """Write clean copies of what `verdict` found damaged in `run`; returns what was done (one line each).

    Raises OSError when the folder cannot be written (nothing is renamed before the clean copy is complete)."""
    if verdict.ok:
        return []
    if verdict.live:
        return ["not repaired: the run is live (its process is still writing it); verify it once it ends"]
    path = Path(run.path)
    stamp = _stamp()
    done: list[str] = []
    events_path = path / journal.EVENTS_FILE
    reader = journal.JournalReader(events_path, warn=False)
    journal_damaged = any(p.startswith(journal.EVENTS_FILE) for p in verdict.problems)
    if journal_damaged and events_path.exists():
        tmp = path / f".{journal.EVENTS_FILE}.repair.tmp"
        with open(tmp, "wb") as out:
            count = _copy_good_frames(reader, out)
            out.flush()
            os.fsync(out.fileno())
        kept = events_path.with_name(f"{journal.EVENTS_FILE}.damaged-{stamp}")
        os.replace(events_path, kept)
        os.replace(tmp, events_path)
        lost = reader.events_lost
        done.append(
            f"{journal.EVENTS_FILE}: clean copy with {count:,} events ({lost:,} known lost); the "
            f"original is kept as {kept.name}"
        )
    else:
        for _ in reader.events():  # the count, for the record below
            pass
    meta = dict(run.meta)
    if run.meta_error is not None:
        meta_path = path / journal.META_FILE
        if meta_path.exists():
            kept = meta_path.with_name(f"{journal.META_FILE}.damaged-{stamp}")
            os.replace(meta_path, kept)
            done.append(
                f"{journal.META_FILE}: rebuilt from the folder and the journal (status KILLED); the "
                f"original is kept as {kept.name}"
            )
        else:
            done.append(f"{journal.META_FILE}: rebuilt from the folder and the journal (status KILLED)")
        created = datetime.fromtimestamp(events_path.stat().st_mtime if events_path.exists() else 0, timezone.utc)
        meta = {
            "run_id": path.name,
            "name": path.name,
            "project": path.parent.name,
            "created_at": created.isoformat(),
            "status": RunStatus.KILLED.value,
            "tags": [],
            "metadata": {},
            "events": reader.end_seq,
        }
    meta[REPAIRED_KEY] = {
        "at": datetime.now(timezone.utc).isoformat(),
        "journal_end": reader.end_seq,
        "events_lost": reader.events_lost,
        "problems": list(verdict.problems),
    }
    journal.write_meta(path, {k: v for k, v in meta.items() if k not in ("format", "version")})
    return done


def _copy_good_frames(reader: journal.JournalReader, out: Any) -> int:
    """Write every event `reader` yields as version-2 frames, sequence numbers unchanged; returns the count."""
    count = 0
    first = 0
    frame: list[tuple] = []
    for seq, event in reader.events():
        if frame and (seq != first + len(frame) or len(frame) >= journal.FRAME_EVENTS):
            out.write(journal.encode_frame(first, frame))
            frame = []
        if not frame:
            first = seq
        frame.append(event)
        count += 1
    if frame:
        out.write(journal.encode_frame(first, frame))
    return count
