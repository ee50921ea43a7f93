"""Where a run's data goes: the tracking URI, the experiment's artifact location, and the file-store trap."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tracelet.plugin import ConfigurationError

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def resolve_tracking_uri(config: dict[str, Any]) -> str:
    """`mlflow_tracking_uri` / the `{"mlflow": {...}}` block (both arrive as `config["tracking_uri"]`), else
    `MLFLOW_TRACKING_URI`, else whatever MLflow itself would use (`mlflow.set_tracking_uri` or its default)."""
    uri = config.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return str(uri)
    import mlflow

    return str(mlflow.get_tracking_uri())


def is_file_store(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")  # "C:\..." parses as scheme "c"


def check_store(uri: str, explicit: bool) -> None:
    """Refuse, with a clear message, the file store that MLflow 3 itself would refuse on the first write.

    MLflow 3 defaults to `sqlite:///mlflow.db`, but silently switches to `./mlruns` (the file store, in
    maintenance mode and refusing writes unless `MLFLOW_ALLOW_FILE_STORE=true`) when that folder holds an
    old experiment. Saying so here beats an MlflowException from deep inside the first write.
    """
    if not is_file_store(uri):
        return
    from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE

    if MLFLOW_ALLOW_FILE_STORE.get():
        return
    if explicit:
        why = f"the tracking URI {uri!r} is MLflow's file store"
    else:
        why = (
            f"no tracking URI was given, and because {os.path.abspath('mlruns')!r} holds MLflow file-store data, "
            f"MLflow 3 falls back to the file store ({uri!r}) instead of its sqlite default"
        )
    raise ConfigurationError(
        f"tracelet-mlflow: {why}, which MLflow 3 refuses to write to. Set a database URI, e.g. "
        "config={'mlflow_tracking_uri': 'sqlite:///mlflow.db'} or MLFLOW_TRACKING_URI, "
        "migrate the folder with `mlflow migrate-filestore`, or set MLFLOW_ALLOW_FILE_STORE=true to keep it."
    )


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///") :])
    if path in ("", ":memory:"):
        return None
    return Path(os.path.abspath(path))


def local_artifact_location(uri: str, experiment: str) -> str | None:
    """For a local sqlite store: artifacts next to the database (`<db dir>/mlartifacts/<experiment>`), instead
    of MLflow's default `./mlruns` in whatever the working directory happens to be. None elsewhere."""
    db = sqlite_path(uri)
    if db is None:
        return None
    folder = _SAFE.sub("_", experiment).strip("._") or "default"
    return (db.parent / "mlartifacts" / folder).as_uri()
