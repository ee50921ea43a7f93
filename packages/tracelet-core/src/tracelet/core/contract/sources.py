"""What a backend plugin hands the core when it imports runs out of its tracker (`backend_import_runs`).

A `SourceRun` describes one run of the tracker (who it is, where it was read, how it ended) and streams its
data as journal events (`tracelet.core.contract.records`): ``("m", name, value, step, timestamp)``,
``("p", {params}, timestamp)``, ``("t", {tags}, timestamp)`` and ``("a", TraceletArtifact, timestamp)``, with
the tracker's own steps and timestamps (seconds since the epoch). The core writes them into a local run through
the journal writer, a batch at a time, so a plugin's `events()` should be a generator that reads the tracker
page by page: memory then stays bounded by one page, however long the run.

An artifact event's files (`TraceletArtifact.files[i].local_path`) must stay readable until the generator is
asked for the next event: the core copies them into the run then (a plugin may download into a temporary
folder and remove it after the `yield`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

# Statuses a source run may end with; the same words as `RunStatus`.
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


@attrs.define
class SourceRun:
    """One run of a tracker, ready to be imported.

    :param tracker: the tracker's name as the plugin is selected (``"mlflow"``).
    :param id: the tracker's own run id.
    :param uri: where the run was read (a tracking URI, an absolute file path): with `tracker` and `id`, the
        run's identity; the same three on a later import name the same local run.
    :param name: the run's display name.
    :param project: the tracker's project (MLflow experiment, W&B project, ClearML project), or None.
    :param events: called once per import; yields the run's journal events in order (see the module doc).
    :param status: how the run ended (`STATUSES`).
    :param created_at: when it started, seconds since the epoch (None: the first event's time).
    :param ended_at: when it ended, seconds since the epoch (None: the last event's time).
    :param tags: the run's plain labels (key/value tags go in ``"t"`` events).
    :param metadata: plain JSON facts about the run kept in run.json's ``metadata`` (the tracker's system
        fields: user, source file, git commit, ...).
    :param parent: the tracker's id of the run this one is nested under (same tracker and uri), or None.
    :param fingerprint: optional plain JSON that changes whenever the run gains data (file size and mtime);
        when it equals the recorded one a re-import reads nothing. None: the run is read again and compared.
    :param size: how many events to expect, for the progress bar (None: unknown).
    :param skipped: what the source held that was not imported, by kind (``{"histogram": 3}``).

    `metadata` and `skipped` may be completed by `events()` while it reads (a summary found at the end of a
    log): the core writes the run's record after the last event.
    """

    tracker: str
    id: str
    uri: str
    name: str
    project: str | None
    events: Callable[[], Iterator[tuple[Any, ...]]] = attrs.field(repr=False)
    status: str = "FINISHED"
    created_at: float | None = None
    ended_at: float | None = None
    tags: list[str] = attrs.field(factory=list)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    parent: str | None = None
    fingerprint: Any = None
    size: int | None = None
    skipped: dict[str, int] = attrs.field(factory=dict)
