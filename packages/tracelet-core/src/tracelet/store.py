"""Reading runs back from the local store (format: `tracelet.core.journal`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracelet.core import journal
from tracelet.core.records import ARTIFACT, METRIC, PARAMS, SUMMARY, TAGS, Metric


def default_root() -> Path:
    return Path(os.environ.get("TRACELET_DIR", "./tracelet-runs"))


class LocalRun:
    """One run folder, read lazily."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = journal.read_meta(self.path)

    id = property(lambda self: self.meta["run_id"])
    name = property(lambda self: self.meta.get("name"))
    project = property(lambda self: self.meta.get("project"))
    created_at = property(lambda self: self.meta.get("created_at"))

    @property
    def status(self) -> str | None:
        """The recorded status, except that a RUNNING run whose process died reads KILLED (`tracelet.core.owner`)."""
        from tracelet.core import owner

        return owner.effective_status(self.path, self.meta)

    @property
    def dead(self) -> bool:
        """True when run.json says RUNNING but the process that owned the run is gone."""
        from tracelet.core import owner

        return owner.is_dead(self.path, self.meta)

    def behind(self) -> dict[str, int]:
        """Backend -> events the run's journal holds that the backend has not received (live run and syncs)."""
        from tracelet.transfer.state import behind

        return behind(self.path, self.meta, self.dead)

    def events(self) -> Iterator[tuple]:
        """Every event in logging order, as journalled."""
        for _, event in journal.read_events(self.path / journal.EVENTS_FILE):
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


def list_runs(root: str | os.PathLike[str] | None = None) -> list[LocalRun]:
    """Every run under `root` (default TRACELET_DIR or ./tracelet-runs), oldest first."""
    base = Path(root) if root is not None else default_root()
    found = [LocalRun(p.parent) for p in base.glob(f"*/*/{journal.META_FILE}")]
    return sorted(found, key=lambda r: (r.created_at or "", r.id))


def open_run(ref: str, root: str | os.PathLike[str] | None = None) -> LocalRun:
    """A run by folder path, run id, or unique run-id prefix."""
    if (Path(ref) / journal.META_FILE).exists():
        return LocalRun(ref)
    matches = [r for r in list_runs(root) if r.id == ref] or [r for r in list_runs(root) if r.id.startswith(ref)]
    if len(matches) != 1:
        raise LookupError(f"no run matches {ref!r}" if not matches else f"{ref!r} matches {len(matches)} runs")
    return matches[0]
