"""Reading MLflow runs out of a tracking store for `tracelet import --from mlflow URI` (`backend_import_runs`).

Guarantees:

- **Which runs.** SOURCE is a tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``, a file store). Config
  ``run_ids`` (a list, or ids separated by commas) takes those runs; ``experiment`` (a name or id) all runs of
  that experiment; neither: every run of every active experiment. Runs are listed a page at a time.
- **Every point as stored.** Metrics keep their step and their timestamp (MLflow's milliseconds, as seconds);
  NaN is NaN; ±inf comes back as MLflow stores it (±1.797e308). Points are emitted in time order (then step,
  then key). From a SQL store (sqlite, postgres, ...) they are read with one streamed query on the store's own
  engine (`SqlAlchemyStore.engine`), a batch at a time, which is faster than
  `MlflowClient.get_metric_history` (benchmarks/import_mlflow.py); from a server, each metric's history is read
  page by page (`max_results`), the keys merged in time order: memory holds one page per key.
- **Params and tags.** Params as MLflow stores them (strings) at the run's start time. Tags not in MLflow's
  ``mlflow.*`` namespace are tags; the system tags become run metadata: ``mlflow.runName`` the name,
  ``mlflow.user`` `environment.user`, ``mlflow.source.name`` `source`, ``mlflow.source.git.*`` `git.*`,
  ``mlflow.note.content`` `description`, ``mlflow.parentRunId`` the parent (a nested run stays in its group);
  any other ``mlflow.*`` tag is kept under metadata `mlflow`.
- **Status and times** from the run's info (SCHEDULED reads RUNNING).
- **Artifacts.** Each top-level entry of the run's artifact root is one Tracelet artifact of that name
  (a directory keeps its files' paths below it), downloaded into a temporary folder only while the core
  copies it into the run.
"""

from __future__ import annotations

import heapq
import math
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracelet.plugin import ConfigurationError, SourceRun, TraceletArtifact

TRACKER = "mlflow"
CONFIG_KEYS = {"experiment", "run_ids", "page_size"}
PAGE = 10_000  # metric points per page read from a server
SEARCH_PAGE = 500  # runs per search_runs page
STATUS = {"FINISHED": "FINISHED", "FAILED": "FAILED", "KILLED": "KILLED", "RUNNING": "RUNNING", "SCHEDULED": "RUNNING"}
_META_TAGS = {
    "mlflow.user": ("environment", "user"),
    "mlflow.source.name": ("source", None),
    "mlflow.source.git.commit": ("git", "commit"),
    "mlflow.source.git.branch": ("git", "branch"),
    "mlflow.source.git.repoURL": ("git", "remote"),
    "mlflow.note.content": ("description", None),
}


def import_runs(source: str, config: dict[str, Any]) -> Iterator[SourceRun]:
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ConfigurationError(
            f"import --from mlflow: unknown config {', '.join(unknown)} (it takes {', '.join(sorted(CONFIG_KEYS))})"
        )
    from mlflow import MlflowClient

    uri = _normalise(source)
    client = MlflowClient(tracking_uri=uri)
    page = int(config.get("page_size") or PAGE)
    experiments: dict[str, str] = {}
    for run in _runs(client, config):
        exp_id = run.info.experiment_id
        if exp_id not in experiments:
            experiments[exp_id] = client.get_experiment(exp_id).name
        yield _source_run(client, uri, run, experiments[exp_id], page)


def _normalise(uri: str) -> str:
    """The same store always reads the same URI (the run identity includes it): sqlite paths made absolute."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if path and not path.startswith("/") and ":memory:" not in path:
            return "sqlite:///" + str(Path(path).resolve())
    elif "://" not in uri:
        return str(Path(uri).resolve())
    return uri.rstrip("/")


def _runs(client: Any, config: dict[str, Any]) -> Iterator[Any]:
    ids = config.get("run_ids")
    if ids:
        for run_id in [i.strip() for i in ids.split(",")] if isinstance(ids, str) else [str(i) for i in ids]:
            if run_id:
                yield client.get_run(run_id)
        return
    wanted = config.get("experiment")
    if wanted is not None:
        exp = client.get_experiment_by_name(str(wanted))
        if exp is None and str(wanted).isdigit():
            exp = client.get_experiment(str(wanted))
        if exp is None:
            raise ConfigurationError(f"import --from mlflow: no experiment {wanted!r} in {client.tracking_uri}")
        exp_ids = [exp.experiment_id]
    else:
        exp_ids = [e.experiment_id for e in client.search_experiments()]
    for exp_id in exp_ids:
        token = None
        while True:
            runs = client.search_runs(
                [exp_id], max_results=SEARCH_PAGE, page_token=token, order_by=["attributes.start_time ASC"]
            )
            yield from runs
            token = runs.token
            if not token:
                break


def _source_run(client: Any, uri: str, run: Any, experiment: str, page: int) -> SourceRun:
    info, data = run.info, run.data
    metadata: dict[str, Any] = {
        "mlflow": {"experiment_id": info.experiment_id, "experiment": experiment, "artifact_uri": info.artifact_uri}
    }
    tags: dict[str, str] = {}
    parent = None
    name = info.run_name or data.tags.get("mlflow.runName") or info.run_id
    for key, value in data.tags.items():
        if not key.startswith("mlflow."):
            tags[key] = value
        elif key == "mlflow.parentRunId":
            parent = value
        elif key == "mlflow.runName":
            continue
        elif key in _META_TAGS:
            branch, leaf = _META_TAGS[key]
            if leaf is None:
                metadata[branch] = value
            else:
                metadata.setdefault(branch, {})[leaf] = value
        else:
            metadata["mlflow"].setdefault("tags", {})[key] = value
    if parent:
        metadata["mlflow"]["parent_run_id"] = parent
    start = info.start_time / 1000.0 if info.start_time else None
    end = info.end_time / 1000.0 if info.end_time else None
    params = dict(data.params)
    keys = sorted(data.metrics)

    def events() -> Iterator[tuple[Any, ...]]:
        at = start if start is not None else 0.0
        if params:
            yield ("p", params, at)
        if tags:
            yield ("t", tags, at)
        yield from _metrics(client, info.run_id, keys, page)
        yield from _artifacts(client, info.run_id, end if end is not None else at)

    return SourceRun(
        TRACKER,
        info.run_id,
        uri,
        name,
        experiment,
        events,
        status=STATUS.get(info.status, "FINISHED"),
        created_at=start,
        ended_at=end,
        metadata=metadata,
        parent=parent,
    )


def _metrics(client: Any, run_id: str, keys: list[str], page: int) -> Iterator[tuple[Any, ...]]:
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    engine = getattr(store, "engine", None)
    if engine is not None:
        yield from _sql_metrics(engine, run_id)
        return
    streams = [_paged_history(client, run_id, key, page) for key in keys]
    for ts, step, key, value in heapq.merge(*streams):
        yield ("m", key, value, step, ts)


def _sql_metrics(engine: Any, run_id: str) -> Iterator[tuple[Any, ...]]:
    """One query over the store's `metrics` table, streamed a batch at a time (MLflow keeps NaN as 0 with
    `is_nan` set)."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlMetric

    m = SqlMetric
    query: Any = (
        sa.select(m.key, m.value, m.step, m.timestamp, m.is_nan)
        .where(m.run_uuid == run_id)
        .order_by(m.timestamp, m.step, m.key, m.value)
    )
    nan = math.nan
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=PAGE).execute(query)
        for rows in result.partitions(PAGE):
            for key, value, step, ts, is_nan in rows:
                yield ("m", key, nan if is_nan else value, step, ts / 1000.0)


def _paged_history(client: Any, run_id: str, key: str, page: int) -> Iterator[tuple[float, int, str, float]]:
    """One metric's history from a server, a page at a time, as (timestamp s, step, key, value) sorted the
    way the merge needs them."""
    store = client._tracking_client.store
    token = None
    while True:
        points = store.get_metric_history(run_id, key, max_results=page, page_token=token)
        batch = sorted((m.timestamp / 1000.0, int(m.step), key, float(m.value)) for m in points)
        yield from batch
        token = getattr(points, "token", None)
        if not token or not batch:
            return


def _artifacts(client: Any, run_id: str, at: float) -> Iterator[tuple[Any, ...]]:
    entries = client.list_artifacts(run_id)
    for entry in entries:
        work = Path(tempfile.mkdtemp(prefix="tracelet-mlflow-import-"))
        try:
            local = Path(client.download_artifacts(run_id, entry.path, str(work)))
            name = _artifact_name(entry.path)
            artifact = TraceletArtifact(name, "custom", "imported from MLflow", metadata={"mlflow_path": entry.path})
            if local.is_dir():
                for f in sorted(p for p in local.rglob("*") if p.is_file()):
                    artifact.add_file(str(f), f.relative_to(local).as_posix())
            else:
                artifact.add_file(str(local), local.name)
            if artifact.files:
                yield ("a", artifact, at)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _artifact_name(path: str) -> str:
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(path).name).lstrip(".")
    return name or "mlflow-artifact"
