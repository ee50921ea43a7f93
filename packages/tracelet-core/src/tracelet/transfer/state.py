"""What each backend has received of a local run: the `sync` record in run.json, and `behind()`.

run.json gains one key, `sync`, written by `tracelet sync` (never by a live run):

    "sync": {"<backend>": {"run_id": backend's run id or null, "details": what its start_run returned,
                            "config": the non-secret config it was synced with, "cursor": events delivered
                            (sequence numbers 0 .. cursor-1), "events": events in the journal, "ended": whether
                            its run was ended, "status": the status it was ended with, "artifacts": tokens of
                            the artifact events delivered, "refused_artifacts": tokens the backend refused
                            for good when sent again, "updated_at": ISO 8601}}

Where a backend has no `sync` entry, what the live run recorded stands: `delivery` (at stop: `undelivered`
events, and `details` with the backend's run id) or, for a run whose process died, `backend_runs` (run ids
recorded at start) with nothing known to be delivered.

An artifact the live run failed to deliver (`delivery.<backend>.failed_artifacts`: the worker moved past it)
is pending until its token is in `sync.<backend>.artifacts` (or `refused_artifacts`): the backend counts as a
leftover, one event behind per pending artifact, and a sync sends it into the same backend run.
"""

from __future__ import annotations

from typing import Any

from tracelet.core.contract.records import RunStatus
from tracelet.core.engine import journal

SYNC_KEY = "sync"
SOURCE_BACKEND = "local"  # the journal itself: never a sync target
ENDED = tuple(s.value for s in RunStatus if s is not RunStatus.RUNNING)


def count_events(run_dir: Any) -> int:
    """Events in a run's journal (up to a torn last frame): the sequence number after its last readable event,
    so events lost to damage in the middle count too (backends' cursors are sequence numbers)."""
    reader = journal.JournalReader(journal.Path(run_dir) / journal.EVENTS_FILE)
    for _ in reader.events():
        pass
    return reader.end_seq


def pending_artifacts(meta: dict[str, Any], name: str) -> list[str]:
    """Tokens of the artifact events the live run failed to deliver to `name` that no sync has delivered since."""
    failed = ((meta.get("delivery") or {}).get(name) or {}).get("failed_artifacts") or []
    if not meta.get("delivery"):  # the process died: the last checkpoint's list (see RunRecord.record_progress)
        failed = ((meta.get("failed_artifacts") or {}).get(name)) or []
    if not failed:
        return []
    entry = (meta.get(SYNC_KEY) or {}).get(name) or {}
    done = set(entry.get("artifacts") or []) | set(entry.get("refused_artifacts") or [])
    return [str(t) for t in failed if str(t) not in done]


def starting_point(meta: dict[str, Any], name: str, dead: bool) -> dict[str, Any]:
    """Where delivery to backend `name` stands before this sync: its sync entry, else what the live run left;
    `pending_artifacts` lists the artifacts to send again into that backend run (`pending_artifacts()`)."""
    point = _starting_point(meta, name, dead)
    if not point.get("fresh"):
        point["pending_artifacts"] = pending_artifacts(meta, name)
    return point


def _starting_point(meta: dict[str, Any], name: str, dead: bool) -> dict[str, Any]:
    entry = (meta.get(SYNC_KEY) or {}).get(name)
    if isinstance(entry, dict):
        return dict(entry)
    delivery = (meta.get("delivery") or {}).get(name)
    if isinstance(delivery, dict):
        details = dict(delivery.get("details") or {})
        events = int(meta.get("events") or 0)
        return {
            "run_id": details.get("run_id"),
            "details": details,
            "config": _stored_config(meta, name),
            "cursor": max(events - int(delivery.get("undelivered") or 0), 0),
            "events": events,
            "ended": int(delivery.get("undelivered") or 0) == 0 and not delivery.get("dropped"),
            "status": meta.get("status"),
            "artifacts": [],
            "live": True,
        }
    if dead and name in (meta.get("backends") or []):
        details = dict((meta.get("backend_runs") or {}).get(name) or {})
        # Resume from the live run's last progress checkpoint (a lower bound of what the backend took, a
        # couple of seconds old: those last events may reach it twice, none is lost), else from the start.
        cursor = max(int((meta.get("progress") or {}).get(name) or 0), 0)
        return {
            "run_id": details.get("run_id"),
            "details": details,
            "config": _stored_config(meta, name),
            "cursor": cursor,
            "events": None,
            "ended": False,
            "status": None,
            "artifacts": [],
            "live": True,
        }
    return {
        "run_id": None,
        "details": {},
        "config": {},
        "cursor": 0,
        "events": None,
        "ended": False,
        "status": None,
        "artifacts": [],
        "fresh": True,
    }


def _stored_config(meta: dict[str, Any], name: str) -> dict[str, Any]:
    """The live run's config for `name`, without the values redaction masked (those must come from the user)."""
    from tracelet.core.contract.redact import MASK

    config = (meta.get("backend_config") or {}).get(name) or {}
    return {k: v for k, v in config.items() if v != MASK}


def leftover_backends(meta: dict[str, Any], dead: bool) -> list[str]:
    """Backends that have not received the whole run: the live run's (undelivered events at stop, or every
    backend of a run whose process died) and those of an interrupted sync."""
    names = [n for n in meta.get("backends") or [] if n != SOURCE_BACKEND]
    names += [n for n in meta.get(SYNC_KEY) or {} if n not in names and n != SOURCE_BACKEND]
    out = []
    for name in names:
        point = starting_point(meta, name, dead)
        if point.get("fresh"):
            continue
        events = point.get("events")
        behind = events is not None and point["cursor"] < events
        if not point.get("ended") or behind or point.get("pending_artifacts"):
            out.append(name)
    return out


def behind(run_dir: Any, meta: dict[str, Any], dead: bool) -> dict[str, int]:
    """Backend -> how many journaled events it has not received (a failed artifact counts as one), for
    `tracelet runs` (`LocalRun.behind`)."""
    if meta.get("status") == RunStatus.RUNNING.value and not dead:
        return {}  # a live run's workers are delivering now
    out: dict[str, int] = {}
    total: int | None = None
    for name in leftover_backends(meta, dead):
        point = starting_point(meta, name, dead)
        events = point.get("events")
        if events is None:
            if total is None:
                total = count_events(run_dir)
            events = total
        missing = max(int(events) - int(point.get("cursor") or 0), 0) + len(point.get("pending_artifacts") or [])
        if missing or not point.get("ended"):
            out[name] = missing
    return out
