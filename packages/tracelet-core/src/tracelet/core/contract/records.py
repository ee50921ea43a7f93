"""The records that travel from the calling thread to the backends.

Events are plain tuples on the hot path (cheapest to build and append); the first element names the kind.
Backends receive them as the named tuples and attrs classes below.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, NamedTuple

import attrs

METRIC = "m"
PARAMS = "p"
TAGS = "t"
ARTIFACT = "a"
SUMMARY = "s"  # a run's single values: ("s", {name: float}, step or None, timestamp)


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
