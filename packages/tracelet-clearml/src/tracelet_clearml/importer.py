"""Reading ClearML offline sessions for `tracelet import --from clearml SOURCE` (`backend_import_runs`).

SOURCE is an offline session folder (``<CLEARML_CACHE_DIR>/offline/<task id>/``), the session's zip (what
``Task.import_offline_session`` takes), or a folder holding sessions (``.../offline/``: each session once, its
folder preferred to its zip). The files are read as ClearML wrote them (`task.json`, `metrics.jsonl`, `data/`);
ClearML itself is not imported. Online tasks (a ClearML server) are not read yet: import the offline session, or
export the task with ClearML's own tools first.

Guarantees:

- **Scalars** (`training_stats_scalar` events) become points with their iteration as step and ClearML's
  millisecond timestamp, in the order ClearML wrote them; names go back the way Tracelet's ClearML backend
  splits them (`tracelet_clearml.names`): title ``train`` / series ``loss`` is ``train/loss``, a series named
  like its title is that name alone. `metrics.jsonl` is read a line (one ClearML flush) at a time. Other
  events (plots, images, histograms, console) are counted in `skipped`.
- **Hyperparameters**: the ``General`` section's entries are top-level params, every other section a nested
  dict of its entries (the inverse of `tracelet_clearml.params`), values converted back by their recorded
  type (int, float, bool; others as stored). **User properties** (the ``properties`` section) are key/value
  tags; the task's tags are the run's labels.
- **Status**: ``task.json``'s status when recorded (completed, failed, stopped...), as Tracelet's ClearML
  backend records it. ClearML's own client drops status changes in offline mode, so a session without one
  reads FINISHED once it was closed (its zip exists), else KILLED.
- **Artifacts** registered on the task (`execution.artifacts` with a file in the session's ``data/``) are
  imported with their file names; others (remote URIs) are counted in `skipped`.
- **Fingerprint**: the session files' sizes and modification times.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tracelet.plugin import ConfigurationError, SourceRun, TraceletArtifact

TRACKER = "clearml"
GENERAL = "General"
PROPERTIES = "properties"
STATUS = {
    "completed": "FINISHED",
    "published": "FINISHED",
    "closed": "FINISHED",
    "failed": "FAILED",
    "stopped": "KILLED",
    "in_progress": "RUNNING",
    "queued": "RUNNING",
    "created": "RUNNING",
}


def import_runs(source: str, config: dict[str, Any]) -> Iterator[SourceRun]:
    if config:
        raise ConfigurationError(
            f"import --from clearml: unknown config {', '.join(sorted(config))} (it takes "
            "none: name an offline session folder or zip, or a folder of sessions)"
        )
    for session in _sessions(Path(source)):
        yield _source_run(session)


class _Session:
    """One offline session, as a folder or a zip: its files by their names inside the session."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self.is_zip = path.is_file()

    def exists(self, name: str) -> bool:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf:
                return name in zf.namelist()
        return (self.path / name).is_file()

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf, zf.open(name) as member:
                yield member
        else:
            with open(self.path / name, "rb") as f:
                yield f

    def task(self) -> dict[str, Any]:
        with self.open("task.json") as f:
            data: dict[str, Any] = json.load(f)
        return data

    def closed(self) -> bool:
        """ClearML writes the zip when the task is closed."""
        return (
            self.is_zip
            or self.path.with_suffix(".zip").is_file()
            or (self.path.parent / f"{self.path.name}.zip").is_file()
        )

    def fingerprint(self) -> list[Any]:
        paths = [self.path] if self.is_zip else [self.path / n for n in ("task.json", "metrics.jsonl")]
        return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths if p.exists()]


def _sessions(source: Path) -> list[_Session]:
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise ConfigurationError(f"import --from clearml: {source} is not an offline session zip")
        return [_Session(source)]
    if not source.is_dir():
        raise ConfigurationError(f"import --from clearml: {source} is neither a session folder nor a zip")
    if (source / "task.json").is_file():
        return [_Session(source)]
    folders = sorted(p for p in source.iterdir() if (p / "task.json").is_file())
    names = {p.name for p in folders}
    zips = sorted(p for p in source.glob("*.zip") if p.stem not in names)
    found = [_Session(p) for p in folders] + [_Session(p) for p in zips]
    if not found:
        raise ConfigurationError(f"import --from clearml: no offline session (task.json or its zip) in {source}")
    return found


def _source_run(session: _Session) -> SourceRun:
    task = session.task()
    task_id = str(task.get("id") or session.path.stem)
    raw = str(task.get("status") or "")
    status = STATUS.get(raw) or ("FINISHED" if session.closed() else "KILLED")
    metadata: dict[str, Any] = {
        "clearml": {
            "task_id": task_id,
            "type": task.get("type"),
            "status": raw or None,
            "status_reason": task.get("status_reason"),
        }
    }
    script = task.get("script") or {}
    if script.get("entry_point"):
        metadata["source"] = script["entry_point"]
    git = {
        k: script[s]
        for k, s in (("remote", "repository"), ("branch", "branch"), ("commit", "version_num"))
        if script.get(s)
    }
    if git:
        metadata["git"] = git
    skipped: dict[str, int] = {}
    # The same session read from its folder or its zip is the same run: its identity is the folder path.
    where = session.path.with_suffix("") if session.is_zip else session.path
    return SourceRun(
        TRACKER,
        task_id,
        str(where),
        str(task.get("name") or task_id),
        task.get("project_name") or None,
        lambda: _events(session, task, skipped),
        status=status,
        tags=[str(t) for t in task.get("tags") or []],
        metadata=metadata,
        fingerprint=session.fingerprint(),
        skipped=skipped,
    )


def _events(session: _Session, task: dict[str, Any], skipped: dict[str, int]) -> Iterator[tuple[Any, ...]]:
    params, tags = _hyperparams(task.get("hyperparams") or {})
    first = None
    last = 0.0
    if session.exists("metrics.jsonl"):
        with session.open("metrics.jsonl") as f:
            for line in f:
                if not line.strip():
                    continue
                for ev in json.loads(line):
                    ts = float(ev.get("timestamp") or 0) / 1000.0
                    if first is None:
                        first = ts
                        if params:
                            yield ("p", params, ts)
                        if tags:
                            yield ("t", tags, ts)
                    last = max(last, ts)
                    if ev.get("type") != "training_stats_scalar":
                        kind = str(ev.get("type") or "unknown")
                        skipped[kind] = skipped.get(kind, 0) + 1
                        continue
                    name = _name(str(ev.get("metric", "")), str(ev.get("variant", "")))
                    yield ("m", name, float(ev["value"]), int(ev.get("iter") or 0), ts)
    if first is None:  # no scalars: params and tags at the artifacts' time
        at = max((float(a.get("timestamp") or 0) for a in _artifacts(task)), default=0.0)
        last = at
        if params:
            yield ("p", params, at)
        if tags:
            yield ("t", tags, at)
    offline = str(task.get("offline_folder") or "")
    for entry in _artifacts(task):
        yield from _artifact(session, offline, entry, last, skipped)
    models = len(task.get("offline_output_models") or [])
    if models:
        skipped["output model"] = skipped.get("output model", 0) + models


def _name(title: str, series: str) -> str:
    """The inverse of `names.title_series`: ("train", "loss") -> "train/loss"; ("loss", "loss") -> "loss"."""
    return title if series == title or not series else f"{title}/{series}"


def _typed(entry: dict[str, Any]) -> Any:
    value = entry.get("value")
    kind = entry.get("type")
    if not isinstance(value, str):
        return value
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            return value.strip().lower() == "true"
    except ValueError:
        pass
    return value


def _hyperparams(sections: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    params: dict[str, Any] = {}
    tags: dict[str, str] = {}
    for section, entries in sections.items():
        if not isinstance(entries, dict):
            continue
        if section == PROPERTIES:
            tags.update({str(k): str(e.get("value", "")) for k, e in entries.items() if isinstance(e, dict)})
            continue
        values = {str(k): _typed(e) for k, e in entries.items() if isinstance(e, dict)}
        if section == GENERAL:
            params.update(values)
        elif values:
            params[section] = values
    return params, tags


def _artifacts(task: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in (task.get("execution") or {}).get("artifacts") or [] if isinstance(a, dict)]


def _artifact(
    session: _Session, offline: str, entry: dict[str, Any], at: float, skipped: dict[str, int]
) -> Iterator[tuple[Any, ...]]:
    uri = str(entry.get("uri") or "")
    rel = os.path.relpath(uri, offline) if offline and uri.startswith(offline) else None
    if rel is None or rel.startswith("..") or not session.exists(rel):
        skipped["artifact (not in the session)"] = skipped.get("artifact (not in the session)", 0) + 1
        return
    work = Path(tempfile.mkdtemp(prefix="tracelet-clearml-import-"))
    try:
        local = work / Path(rel).name
        with session.open(rel) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)
        key = str(entry.get("key") or Path(rel).stem)
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in key).lstrip(".") or "clearml-artifact"
        artifact = TraceletArtifact(
            name,
            "custom",
            "imported from ClearML",
            metadata={"clearml_type": entry.get("type"), "sha256": entry.get("hash")},
        )
        artifact.add_file(str(local), local.name)
        yield ("a", artifact, float(entry.get("timestamp") or at))
    finally:
        shutil.rmtree(work, ignore_errors=True)
