"""Reading W&B runs for `tracelet import --from wandb SOURCE` (`backend_import_runs`), from their transaction logs.

SOURCE is a run's `.wandb` file, its run folder (``wandb/offline-run-<time>-<id>``) or any folder above run
folders (``wandb/``: every run below it). Online runs through W&B's public API are not read yet: sync them
down with W&B's own tools first, or import the offline folder the run wrote (every W&B run, online or not,
leaves its transaction log in ``wandb/run-<time>-<id>/``).

Guarantees:

- **Read as W&B's own sync would.** The log is read with `txlog.stream`, one 32 KiB block at a time, so memory
  stays at one block plus one journal batch whatever the run's size; a torn tail (a run still writing, or
  killed) ends the run where the log ends.
- **History, every key.** Each numeric value of each history row is a point at the row's ``_timestamp``. Its
  step is the row's value of the key's custom step metric (`define_metric(name or glob, step_metric=...)`, the
  last definition matching the key wins, as in W&B), else the row's ``_step``; out-of-order custom steps stay
  as they were logged. Nested dict values are flattened with ``.`` (W&B's own notation); media, histograms,
  tables and other non-numeric values are counted in `skipped`. W&B's own keys (``_step``, ``_runtime``,
  ``_timestamp``) are not metrics, nor is the step metric of a ``*`` definition (a run's x-axis: Tracelet's
  own ``tracelet/step`` is one).
- **Config** as params, nested dicts kept nested, each config record where it came (``_wandb`` left out);
  **summary** in run metadata (``wandb.summary``); **tags** the run's labels; **status** from the exit record
  (exit code 0: FINISHED, else FAILED; no exit record: KILLED, W&B's "crashed").
- **Artifacts** logged by the run whose files W&B still holds locally (the staging copies an offline run keeps
  until it is synced) are imported with their paths; others are counted in `skipped`.
- **Fingerprint**: the log's size and modification time, so an unchanged run is recognised without reading it.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracelet.plugin import ArtifactType, ConfigurationError, SourceRun, TraceletArtifact
from tracelet_wandb import txlog

TRACKER = "wandb"
_OWN_KEYS = ("_step", "_runtime", "_timestamp", "_wandb")


def import_runs(source: str, config: dict[str, Any]) -> Iterator[SourceRun]:
    if config:
        raise ConfigurationError(
            f"import --from wandb: unknown config {', '.join(sorted(config))} (it takes "
            "none: name a run's .wandb file or folder, or a folder of runs)"
        )
    files = _logs(Path(source))
    for path in files:
        yield _source_run(path)


def _logs(source: Path) -> list[Path]:
    if source.is_file():
        return [source.resolve()]
    if not source.is_dir():
        raise ConfigurationError(f"import --from wandb: {source} is neither a .wandb file nor a folder")
    found = sorted(source.glob("run-*.wandb")) or sorted(source.glob("**/run-*.wandb"))
    unique = list(dict.fromkeys(p.resolve() for p in found))  # wandb/latest-run links to a run folder
    if not unique:
        raise ConfigurationError(f"import --from wandb: no W&B transaction log (run-*.wandb) under {source}")
    return unique


def _source_run(path: Path) -> SourceRun:
    run = None
    for record in txlog.records(path, streamed=True):
        if record.WhichOneof("record_type") == "run":
            run = record.run
            break
    if run is None:
        raise txlog.TransactionLogError(f"{path}: no run record (not a W&B run's log, or torn before it)")
    exit_rec = txlog.exit_record(path)
    if exit_rec is None:
        status = "KILLED"
    else:
        status = "FINISHED" if exit_rec.exit_code == 0 else "FAILED"
    start = run.start_time.seconds + run.start_time.nanos / 1e9 if run.HasField("start_time") else None
    stat = path.stat()
    metadata: dict[str, Any] = {
        "wandb": {
            "run_id": run.run_id,
            "project": run.project,
            "entity": run.entity,
            "group": run.run_group,
            "job_type": run.job_type,
            "exit_code": None if exit_rec is None else exit_rec.exit_code,
        }
    }
    if run.notes:
        metadata["description"] = run.notes
    if run.host:
        metadata["environment"] = {"hostname": run.host}
    src = SourceRun(
        TRACKER,
        run.run_id,
        str(path),
        run.display_name or run.run_id,
        run.project or None,
        lambda: _events(path, src, start),
        status=status,
        created_at=start,
        tags=list(run.tags),
        metadata=metadata,
        fingerprint=[stat.st_size, stat.st_mtime_ns],
    )
    return src


def _events(path: Path, src: SourceRun, start: float | None) -> Iterator[tuple[Any, ...]]:
    step_of: list[tuple[str, bool, str]] = []  # (name or glob, is_glob, step metric), in definition order
    axis: set[str] = set()  # step metrics of "*": a run's x-axis, not data
    resolved: dict[str, str | None] = {}
    summary: dict[str, Any] = {}
    last = start or 0.0
    for record in txlog.records(path, streamed=True):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = _tree(record.history.item)  # nested keys (a logged dict, a histogram's fields) as dicts
            ts = row.get("_timestamp")
            ts = float(ts) if isinstance(ts, (int, float)) else last
            last = ts
            for key, value in _flat(row):
                if key in axis or key.startswith("_"):
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    src.skipped[_kind(value)] = src.skipped.get(_kind(value), 0) + 1
                    continue
                if key not in resolved:
                    resolved[key] = _step_metric(key, step_of)
                step_key = resolved[key]
                step = row.get(step_key) if step_key else None
                if not isinstance(step, (int, float)) or isinstance(step, bool) or math.isnan(step):
                    step = row.get("_step", 0)
                yield ("m", key, float(value), int(step), ts)
        elif kind == "run" or kind == "config":
            items = record.run.config.update if kind == "run" else record.config.update
            params = _tree(items)
            params.pop("_wandb", None)
            if params:
                yield ("p", params, last)
        elif kind == "metric":
            m = record.metric
            if m.step_metric:
                name = m.glob_name or m.name
                step_of.append((name, bool(m.glob_name), m.step_metric))
                if m.glob_name == "*":
                    axis.add(m.step_metric)
                resolved.clear()
        elif kind == "summary":
            for item in record.summary.update:
                key = txlog.item_key(item)
                if not key.startswith("_"):
                    summary[key] = json.loads(item.value_json)
        elif kind == "artifact":
            artifact = _artifact(record.artifact)
            if artifact is None:
                src.skipped["artifact (files not on this machine)"] = (
                    src.skipped.get("artifact (files not on this machine)", 0) + 1
                )
            else:
                yield ("a", artifact, last)
    if summary:
        src.metadata.setdefault("wandb", {})["summary"] = summary


def _tree(items: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in items:
        keys = [item.key] if item.key else list(item.nested_key)
        node = tree
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = json.loads(item.value_json)
    return tree


def _flat(row: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested dicts of a row flattened with '.', as W&B names them; a dict with `_type` is a media value."""
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and "_type" not in value:
            yield from _flat(value, f"{name}.")
        else:
            yield name, value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("_type") or "dict")
    return type(value).__name__


def _step_metric(key: str, definitions: list[tuple[str, bool, str]]) -> str | None:
    for name, is_glob, step_metric in reversed(definitions):
        if (fnmatch.fnmatchcase(key, name) if is_glob else key == name) and step_metric != key:
            return step_metric
    return None


def _artifact(record: Any) -> TraceletArtifact | None:
    entries = list(record.manifest.contents)
    if not entries or not all(e.local_path and os.path.isfile(e.local_path) for e in entries):
        return None
    try:
        kind = ArtifactType(record.type)
    except ValueError:
        kind = ArtifactType.CUSTOM
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in record.name).lstrip(".") or "wandb-artifact"
    artifact = TraceletArtifact(
        name,
        kind,
        record.description or "imported from W&B",
        metadata={"wandb_type": record.type, "wandb_digest": record.digest, "aliases": list(record.aliases)},
    )
    for entry in entries:
        artifact.add_file(entry.local_path, entry.path)
    return artifact
