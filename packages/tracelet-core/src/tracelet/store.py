"""Reading runs back from the local store (format: `tracelet.core.engine.journal`).

Nothing a run folder holds makes these raise: damaged or refused journal frames are skipped (a warning each,
and `LocalRun.damage()` lists them), and a run whose run.json is missing or damaged is still listed, with
`meta_error` saying what is wrong, its id taken from its folder, and its events readable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracelet.core.contract.records import ARTIFACT, METRIC, PARAMS, SUMMARY, TAGS, Metric
from tracelet.core.engine import journal


def default_root() -> Path:
    return Path(os.environ.get("TRACELET_DIR", "./tracelet-runs"))


class LocalRun:
    """One run folder, read lazily."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta_error: str | None = None  # why run.json could not be read (the run is listed as damaged)
        try:
            self.meta: dict[str, Any] = journal.read_meta(self.path)
        except (OSError, ValueError, RecursionError) as exc:
            self.meta = {}
            self.meta_error = f"{journal.META_FILE} is damaged or missing ({type(exc).__name__}: {exc})"
        wrong = [k for k, kinds in _SHAPE.items() if k in self.meta and not isinstance(self.meta[k], kinds)]
        wrong += [
            k
            for k in ("delivery", "sync", "backend_runs")
            if isinstance(self.meta.get(k), dict) and not all(isinstance(v, dict) for v in self.meta[k].values())
        ]
        if wrong:  # a record edited by hand or damaged: what cannot be trusted is left out
            self.meta_error = f"{journal.META_FILE} is damaged: wrong types for {', '.join(sorted(set(wrong)))}"
            for k in wrong:
                self.meta.pop(k, None)
        self.reader = journal.JournalReader(self.path / journal.EVENTS_FILE)  # the last read's account

    id = property(lambda self: _text(self.meta.get("run_id")) or self.path.name)
    name = property(lambda self: _text(self.meta.get("name")))
    project = property(lambda self: _text(self.meta.get("project")) or (self.path.parent.name or None))
    created_at = property(lambda self: _text(self.meta.get("created_at")))

    @property
    def status(self) -> str | None:
        """The recorded status, except that a RUNNING run whose process died reads KILLED (`tracelet.core.engine.owner`),
        and a run whose run.json cannot be read reads DAMAGED."""
        from tracelet.core.engine import owner

        if self.meta_error is not None:
            return DAMAGED
        return _text(owner.effective_status(self.path, self.meta))

    def damage(self) -> list[journal.Damage]:
        """What reading the whole journal skipped (`tracelet.core.engine.journal.Damage`); empty for a sound one."""
        reader = journal.JournalReader(self.path / journal.EVENTS_FILE)
        for _ in reader.events():
            pass
        self.reader = reader
        return list(reader.damage)

    @property
    def dead(self) -> bool:
        """True when run.json says RUNNING but the process that owned the run is gone."""
        from tracelet.core.engine import owner

        return owner.is_dead(self.path, self.meta)

    def behind(self) -> dict[str, int]:
        """Backend -> events the run's journal holds that the backend has not received (live run and syncs)."""
        from tracelet.transfer.state import behind

        try:
            return behind(self.path, self.meta, self.dead)
        except (TypeError, ValueError, AttributeError) as exc:  # a record edited by hand: nothing to tell
            self.meta_error = self.meta_error or f"{journal.META_FILE} is damaged ({type(exc).__name__}: {exc})"
            return {}

    def events(self) -> Iterator[tuple]:
        """Every event in logging order, as journalled."""
        reader = self.reader = journal.JournalReader(self.path / journal.EVENTS_FILE)
        for _, event in reader.events():
            yield event

    def metrics(self) -> dict[str, list[Metric]]:
        """Metric name -> its points in logging order."""
        out: dict[str, list[Metric]] = {}
        for e in self.events():
            if e[0] == METRIC:
                name = e[1] if type(e[1]) is str else str(e[1])
                out.setdefault(name, []).append(Metric(name, e[2], e[3], e[4]))
        return out

    def params(self) -> dict[str, Any]:
        return self._merged(PARAMS)

    def tags(self) -> dict[str, Any]:
        return self._merged(TAGS)

    def summary(self) -> dict[str, float]:
        """The run's single values (`Experiment.log_summary`): name -> the last value logged."""
        return self._merged(SUMMARY)

    def artifacts(self, type_filter: Any = None) -> list[Any]:
        """Stored artifact versions (TraceletArtifact), optionally of one ArtifactType."""
        from tracelet.core.artifacts import folder

        return folder.list_all(journal.artifacts_root(self.path), type_filter)

    def artifact(self, name: str, version: str = "latest") -> Any:
        """One stored artifact version, or None."""
        from tracelet.core.artifacts import folder

        return folder.get(journal.artifacts_root(self.path), name, version)

    def artifact_events(self) -> list[dict[str, Any]]:
        return [e[1] for e in self.events() if e[0] == ARTIFACT]

    def _merged(self, kind: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for e in self.events():
            if e[0] == kind:
                merged.update(e[1])
        return merged

    def __repr__(self) -> str:
        return f"<LocalRun {self.id} {self.project}/{self.name} {self.status}>"


DAMAGED = "DAMAGED"  # the status of a run whose run.json cannot be read
# run.json's keys that readers rely on, and the JSON types they must have.
_SHAPE: dict[str, type | tuple[type, ...]] = {
    "run_id": str,
    "name": (str, type(None)),
    "project": (str, type(None)),
    "created_at": (str, type(None)),
    "ended_at": (str, type(None)),
    "status": str,
    "tags": list,
    "metadata": dict,
    "events": int,
    "delivery": dict,
    "sync": dict,
    "owner": dict,
    "progress": dict,
    "backend_runs": dict,
    "backends": list,
    "backend_config": dict,
    "failed_artifacts": dict,
}


def _text(value: Any) -> str | None:
    return None if value is None else value if type(value) is str else str(value)


def list_runs(root: str | os.PathLike[str] | None = None) -> list[LocalRun]:
    """Every run under `root` (default TRACELET_DIR or ./tracelet-runs), oldest first; a folder with a journal
    but no readable run.json is listed too (status DAMAGED)."""
    base = Path(root) if root is not None else default_root()
    folders = {p.parent for p in base.glob(f"*/*/{journal.META_FILE}")}
    folders |= {p.parent for p in base.glob(f"*/*/{journal.EVENTS_FILE}")}
    found = [LocalRun(p) for p in folders]
    return sorted(found, key=lambda r: (r.created_at or "", r.id))


def open_run(ref: str, root: str | os.PathLike[str] | None = None) -> LocalRun:
    """A run by folder path, run id, or unique run-id prefix."""
    if (Path(ref) / journal.META_FILE).exists() or (Path(ref) / journal.EVENTS_FILE).exists():
        return LocalRun(ref)
    matches = [r for r in list_runs(root) if r.id == ref] or [r for r in list_runs(root) if r.id.startswith(ref)]
    if len(matches) != 1:
        raise LookupError(f"no run matches {ref!r}" if not matches else f"{ref!r} matches {len(matches)} runs")
    return matches[0]
