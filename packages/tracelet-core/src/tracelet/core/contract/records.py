"""The records that travel from the calling thread to the backends, and what the run reports of them at stop.

Events are plain tuples on the hot path (cheapest to build and append); the first element names the kind.
Backends receive them as the named tuples and attrs classes below.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

import attrs

METRIC = "m"
PARAMS = "p"
TAGS = "t"
ARTIFACT = "a"
SUMMARY = "s"  # a run's single values: ("s", {name: float}, step or None, timestamp)

#: One event of a run, as the calling thread appends it and the journal keeps it: a plain tuple whose first
#: element is its kind: ``(METRIC, name, value, step, timestamp)``, ``(PARAMS, {params}, timestamp)``,
#: ``(TAGS, {tags}, timestamp)``, ``(ARTIFACT, payload, timestamp)``, ``(SUMMARY, {name: value}, step, timestamp)``.
Event: TypeAlias = tuple[Any, ...]
#: Where the calling thread hands its events: the orchestrator's queue (`deque.append`), or a sink.
Append: TypeAlias = Callable[[Event], None]


class Metric(NamedTuple):
    """One scalar point: wall-clock `timestamp` (seconds since the epoch) is taken at the call."""

    name: str
    value: float
    step: int
    timestamp: float


class RunStatus(str, enum.Enum):
    """How a run ended."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@attrs.define
class RunContext:
    """What a backend is told about the run it delivers.

    `config` holds the keys addressed to this backend: a `config={"<backend>": {...}}` block, overlaid with
    `<backend>_<key>` entries of the experiment's config dict (prefix removed). `metadata` is the redacted
    description of where the run comes from (git, host, argv, python).
    """

    run_id: str
    name: str
    project: str
    created_at: datetime
    tags: list[str] = attrs.field(factory=list)
    config: dict[str, Any] = attrs.field(factory=dict)
    metadata: dict[str, Any] = attrs.field(factory=dict)
    run_dir: str | None = None
    settings: Any = None


@attrs.define
class BackendReport:
    """What one backend received by the end of the run."""

    name: str
    delivered: int
    undelivered: int
    dropped: int
    errors: dict[str, int]
    finished: bool
    details: dict[str, Any]
    refused: int = 0  # events the backend refused for good (kept in the journal, not in `delivered`)
    # kind of event the backend implements no hook for ("metrics", "params", ...) -> events it was not given
    no_hook: dict[str, int] = attrs.field(factory=dict)
    tracebacks: dict[str, str] = attrs.field(factory=dict)  # error kind -> the traceback of its first occurrence


@attrs.define
class StopReport:
    """How a run ended and what each backend received: `complete` only when every event reached every backend."""

    status: RunStatus
    events: int
    backends: dict[str, BackendReport]
    # what a backend catching up from the journal found damaged and skipped (`journal.Damage.describe()`: byte
    # offset, size, reason, events lost); those events count in its `dropped`
    damage: list[str] = attrs.field(factory=list)

    @property
    def complete(self) -> bool:
        return all(b.undelivered == 0 and b.dropped == 0 and b.refused == 0 for b in self.backends.values())
