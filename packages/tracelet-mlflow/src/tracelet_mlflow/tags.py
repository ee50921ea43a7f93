"""Run tags: MLflow's own (so its UI shows source, user and commit natively), Tracelet's, and the user's."""

from __future__ import annotations

import os
from typing import Any

from tracelet.plugin import RunContext

RUN_ID_TAG = "tracelet.run_id"


def native_tags(run: RunContext) -> dict[str, str]:
    """`mlflow.*` system tags from the run's (already redacted) metadata, plus Tracelet's own."""
    meta: dict[str, Any] = run.metadata or {}
    env = meta.get("environment") or {}
    git = meta.get("git") or {}
    tags: dict[str, str] = {
        "mlflow.source.type": "LOCAL",
        RUN_ID_TAG: run.run_id,
        "tracelet.project": run.project,
    }
    source = meta.get("source")
    if source:
        tags["mlflow.source.name"] = str(source)
    if env.get("user"):
        tags["mlflow.user"] = str(env["user"])
    if git.get("commit"):
        tags["mlflow.source.git.commit"] = str(git["commit"])
    if git.get("branch"):
        tags["mlflow.source.git.branch"] = str(git["branch"])
    if git.get("remote"):
        tags["mlflow.source.git.repoURL"] = str(git["remote"])
    if "dirty" in git:
        tags["tracelet.git.dirty"] = str(bool(git["dirty"])).lower()
    if env.get("hostname"):
        tags["tracelet.hostname"] = str(env["hostname"])
    if run.run_dir:
        # Absolute: someone reading the tag in MLflow's UI does not know the directory the script ran in.
        tags["tracelet.run_dir"] = os.path.abspath(os.fspath(run.run_dir))
    return tags


def experiment_tags(tags: list[str]) -> dict[str, str]:
    """The experiment's list of tags: `"k=v"` becomes tag k = v, a plain `"word"` becomes tag word = ""."""
    out: dict[str, str] = {}
    for item in tags:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not key:
            continue
        out[key] = value.strip() if sep else ""
    return out
