"""`tracelet import --from TRACKER SOURCE...`: runs of another tracker → local runs (then `tracelet sync`).

The journal is the hub: a run imported from MLflow, W&B or ClearML is a local run like any other, and
`tracelet sync --to X` delivers it to any tracker. Reading a tracker is a backend plugin's job (the optional
hook `backend_import_runs`, handing over `tracelet.core.contract.sources.SourceRun`s); TensorBoard is read by the core
(`tracelet.transfer.tbimport`).

Guarantees:

- **Original steps and timestamps.** Events are written as the source gives them, through the journal writer
  the live run uses (`tracelet.core.engine.journal.JournalWriter`), a batch (`journal.FRAME_EVENTS` events) at a
  time: memory is bounded by one batch plus what the plugin reads per page, not by the run's size.
- **Source identity.** The local run id is derived from (tracker, uri, tracker's run id); run.json's `import`
  entry records all three (and the parent's local run id for a nested run, so groups stay groups).
- **Idempotent.** Importing the same source again writes nothing when it is unchanged: either its
  fingerprint (when the plugin gives one: file size and time) matches, or it is read again into a scratch
  folder and compared event by event with the run on disk. A source that gained data since replaces the
  run's journal in place; the backend runs it was synced to are kept, and the next `tracelet sync` replays
  it into them from the first event (MLflow keeps one copy of a repeated point).
- **One bad run does not stop the rest.** A run (or a whole source) that cannot be read is reported in its
  `ImportedRun.error` naming it; nothing of it is left behind (run.json is written last, and a failed
  import's folder is removed), and the next runs are imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import attrs

from tracelet.core.contract.records import ARTIFACT, METRIC
from tracelet.core.contract.sources import STATUSES, SourceRun
from tracelet.core.engine import journal
from tracelet.exceptions import ConfigurationError
from tracelet.transfer.progress import Progress
from tracelet.transfer.state import SYNC_KEY

CHUNK = journal.FRAME_EVENTS  # events per journal append
SCRATCH = ".importing"  # under the store root: re-imports are written here first, then compared
TENSORBOARD = "tensorboard"
HOOK = "backend_import_runs"


@attrs.define
class ImportedRun:
    """One source run's import: the local run it is, and what was written."""

    run_id: str
    name: str
    path: Path
    events: int = 0  # journal events written (0 for an existing run, or a dry run)
    existing: bool = False  # recognised from an earlier import: nothing written
    updated: bool = False  # an earlier import of it was replaced (the source gained data)
    skipped: dict[str, int] = attrs.field(factory=dict)  # data not imported, by kind
    source: str | None = None  # "<tracker> <uri> <run id>", for messages
    error: str | None = None  # why this run (or source) could not be imported


def local_run_id(tracker: str, uri: str, source_id: str) -> str:
    digest = hashlib.sha256(f"{tracker}\0{uri}\0{source_id}".encode()).hexdigest()[:12]
    return f"{_safe(tracker)[:12]}-{digest}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._") or "default"


def import_runs(
    sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    source: str,
    project: str | None = None,
    config: dict[str, Any] | None = None,
    dir: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    progress: bool | None = False,
    out: TextIO | None = None,
) -> list[ImportedRun]:
    """Import every run found in `sources` of tracker `source` into the local store `dir`.

    `source` names an installed backend plugin that implements `backend_import_runs` (``mlflow``, ``wandb``,
    ``clearml``) or ``tensorboard``. `config` is handed to the plugin (``experiment``, ``run_ids`` for
    MLflow; for TensorBoard ``with_media``). `project` overrides the source's project. `dry_run`: list what
    would be imported (runs already imported are marked `existing`), write nothing. Returns one `ImportedRun`
    per source run, in source order; a run that failed carries `error`. Raises ConfigurationError when
    `source` is no installed tracker or cannot import.
    """
    from tracelet import store

    paths = [os.fspath(sources)] if isinstance(sources, (str, os.PathLike)) else [os.fspath(s) for s in sources]
    if not paths:
        raise ConfigurationError("import: give at least one SOURCE (a tracking URI, a run folder or file)")
    root = Path(dir) if dir is not None else store.default_root()
    config = dict(config or {})
    if source == TENSORBOARD:
        return _tensorboard(paths, project, config, root, dry_run, progress, out)
    plugin = _importer(source)
    results: list[ImportedRun] = []
    for path in paths:
        try:
            found = plugin.backend_import_runs(source=path, config=config)
            if found is None:
                raise ConfigurationError(f"import: the {source} plugin found nothing it can read in {path}")
            for src in found:
                results.append(_import_one(src, project, root, dry_run, progress, out))
        except Exception as exc:  # a source that cannot be read: say which, and go on with the next
            results.append(
                ImportedRun(
                    "", "", Path(path), source=f"{source} {path}", error=f"{source} {path}: {type(exc).__name__}: {exc}"
                )
            )
    return results


def _importer(name: str) -> Any:
    """The named backend plugin, registered checked, answering `backend_import_runs`."""
    from tracelet.core.contract import discovery
    from tracelet.core.engine.backend import instantiate
    from tracelet.core.plugins import PluginType, new_plugin_manager, register_checked

    spec = discovery.find(PluginType.BACKEND, name)
    pm = new_plugin_manager()
    register_checked(pm, instantiate(spec.load()), spec.name)
    if not pm.hook.backend_import_runs.get_hookimpls():
        raise ConfigurationError(
            f"import: backend {spec.name!r} ({spec.distribution}) cannot import runs (it implements no "
            f"`{HOOK}`); trackers that can: see `tracelet plugins` (capability 'import')"
        )
    return pm.hook


def _import_one(
    src: SourceRun, project: str | None, root: Path, dry_run: bool, progress: bool | None, out: TextIO | None
) -> ImportedRun:
    run_id = local_run_id(src.tracker, src.uri, src.id)
    proj = project or src.project or src.tracker
    dest = root / _safe(proj) / run_id
    result = ImportedRun(run_id, src.name, dest, source=f"{src.tracker} {src.uri} run {src.id}")
    old = journal.read_meta(dest) if (dest / journal.META_FILE).exists() else None
    if (
        old is not None
        and src.fingerprint is not None
        and (old.get("import") or {}).get("fingerprint") == _plain(src.fingerprint)
    ):
        result.existing = True
        return result
    if dry_run:
        result.existing = old is not None
        return result
    bar = Progress.create(progress, out, f"import {src.tracker} {src.name or src.id}", src.size)
    try:
        if old is None:
            _write(src, proj, run_id, dest, result, bar, {})
            return result
        scratch = root / SCRATCH / f"{os.getpid()}-{uuid.uuid4().hex[:8]}" / run_id
        try:
            _write(src, proj, run_id, scratch, result, bar, _replayed(old))
            if _same_events(dest, scratch):
                result.existing, result.events, result.skipped = True, 0, {}
                meta = dict(old)
                meta["import"] = {**(old.get("import") or {}), "fingerprint": _plain(src.fingerprint)}
                journal.write_meta(dest, meta)
                return result
            shutil.rmtree(dest)
            os.replace(scratch, dest)
            result.updated = True
        finally:
            shutil.rmtree(scratch.parent, ignore_errors=True)
            _remove_if_empty(root / SCRATCH)
    except Exception as exc:
        result.error = f"{result.source}: {type(exc).__name__}: {exc}"
    finally:
        bar.close()
    return result


def _replayed(old: dict[str, Any]) -> dict[str, Any]:
    """The sync entries of a run being imported again: same backend runs, delivered again from event 0."""
    synced = {}
    for backend, entry in (old.get(SYNC_KEY) or {}).items():
        if isinstance(entry, dict) and entry.get("run_id"):
            synced[backend] = {**entry, "cursor": 0, "ended": False, "status": None, "artifacts": []}
    return synced


def _write(
    src: SourceRun, project: str, run_id: str, out: Path, result: ImportedRun, bar: Progress, synced: dict[str, Any]
) -> None:
    """Stream `src`'s events into a fresh run folder `out`; run.json last (a folder without it is no run)."""
    if out.exists():
        shutil.rmtree(out)
    writer = journal.JournalWriter(out)
    pending: list[tuple[Any, ...]] = []
    count = 0
    first = last = None
    try:
        events: Iterator[tuple[Any, ...]] = iter(src.events())
        for event in events:
            if event[0] == ARTIFACT:
                event = _artifact_event(out, event, src.tracker)
            ts = event[-1]
            if isinstance(ts, (int, float)):
                first = ts if first is None or ts < first else first
                last = ts if last is None or ts > last else last
            pending.append(event)
            if len(pending) >= CHUNK:
                writer.append(count, pending)
                count += len(pending)
                pending = []
                bar.update(count)
        if pending:
            writer.append(count, pending)
            count += len(pending)
            bar.update(count)
        writer.close()
    except BaseException:
        if not writer.closed:
            writer.close()
        shutil.rmtree(out, ignore_errors=True)
        raise
    status = src.status if src.status in STATUSES else "FINISHED"
    created = src.created_at if src.created_at is not None else first
    ended = src.ended_at if src.ended_at is not None else last
    result.events = count
    result.skipped = dict(src.skipped)
    record = {"source": src.tracker, "uri": src.uri, "run_id": src.id, "fingerprint": _plain(src.fingerprint)}
    if src.parent:
        record["parent_run_id"] = src.parent
        record["parent"] = local_run_id(src.tracker, src.uri, src.parent)
    journal.write_meta(
        out,
        {
            "run_id": run_id,
            "name": src.name or src.id,
            "project": project,
            "created_at": _iso(created),
            "ended_at": _iso(ended) if status != "RUNNING" else None,
            "status": status,
            "tags": list(src.tags),
            "backends": ["local"],
            "events": count,
            "metadata": _plain({**src.metadata, "imported_from": src.tracker}),
            "import": {**record, "skipped": result.skipped} if result.skipped else record,
            **({SYNC_KEY: synced} if synced else {}),
        },
    )


def _artifact_event(run_dir: Path, event: tuple[Any, ...], tracker: str) -> tuple[Any, ...]:
    """A plugin's ("a", TraceletArtifact, ts) as the journal's artifact event: files snapshotted into the
    run's staging folder and stored as a local version, as `log_artifact` does in a live run."""
    from tracelet.core.artifacts import TraceletArtifact
    from tracelet.core.artifacts import folder as local_folder

    _, given, ts = event
    if not isinstance(given, TraceletArtifact):
        raise TypeError(f"an artifact event holds a TraceletArtifact, not {type(given).__name__}")
    token = uuid.uuid4().hex
    staging = journal.staging_root(run_dir) / token
    artifact = TraceletArtifact(
        given.name,
        given.type,
        given.description or f"imported from {tracker}",
        metadata=dict(given.metadata),
        created_at=datetime.fromtimestamp(float(ts), timezone.utc),
    )
    for f in given.files:
        dst = staging / "files" / f.artifact_path
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.local_path, dst)
        artifact.add_file(str(dst), f.artifact_path, f.description)
    local_folder.store(journal.artifacts_root(run_dir), artifact)
    payload = {
        "token": token,
        "targets": ["local"],
        "staging": str(staging),
        "artifact": artifact.to_dict(),
        "snapshots": {},
    }
    return (ARTIFACT, payload, float(ts))


def _same_events(a: Path, b: Path) -> bool:
    """Whether two runs' journals hold the same events (artifacts by name, type, paths and checksums)."""
    left = journal.read_events(a / journal.EVENTS_FILE)
    right = journal.read_events(b / journal.EVENTS_FILE)
    for x, y in zip(left, right, strict=False):
        if _comparable(x[1]) != _comparable(y[1]):
            return False
    # zip stops at the shorter one: both must be exhausted
    return next(left, None) is None and next(right, None) is None


def _comparable(event: tuple[Any, ...]) -> Any:
    if event[0] == METRIC:
        value = event[2]
        return event[:2] + (("nan",) if value != value else (value,)) + event[3:]  # NaN != NaN
    if event[0] != ARTIFACT:
        return event
    art = event[1].get("artifact") or {}
    files = sorted((f.get("artifact_path"), f.get("size_bytes"), f.get("checksum")) for f in art.get("files") or [])
    return (ARTIFACT, art.get("name"), art.get("type"), files, event[2])


def _tensorboard(
    paths: list[str],
    project: str | None,
    config: dict[str, Any],
    root: Path,
    dry_run: bool,
    progress: bool | None,
    out: TextIO | None,
) -> list[ImportedRun]:
    from tracelet.settings import parse_bool
    from tracelet.transfer.tbimport import import_tb

    unknown = sorted(set(config) - {"with_media"})
    if unknown:
        raise ConfigurationError(
            f"import --from tensorboard: unknown config {', '.join(unknown)} (it takes with_media=true)"
        )
    if dry_run:
        raise ConfigurationError("import --from tensorboard: --dry-run is not supported yet for TensorBoard")
    results = []
    for path in paths:
        try:
            runs = import_tb(
                path,
                project=project,
                dir=root,
                with_media=parse_bool(config.get("with_media", False)),
                progress=progress,
                out=out,
            )
        except Exception as exc:
            results.append(
                ImportedRun(
                    "",
                    "",
                    Path(path),
                    source=f"tensorboard {path}",
                    error=f"tensorboard {path}: {type(exc).__name__}: {exc}",
                )
            )
            continue
        results.extend(
            ImportedRun(r.run_id, r.name, r.path, r.events, r.existing, skipped=r.skipped, source=f"tensorboard {path}")
            for r in runs
        )
    return results


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(float(ts), timezone.utc).isoformat() if ts is not None else None


def _plain(value: Any) -> Any:
    """JSON-plain copy (tuples become lists), so a fingerprint compares equal to the one read from run.json."""
    import json

    return json.loads(json.dumps(value, default=str))


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
