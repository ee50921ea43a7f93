"""What a backend is told about a multi-process job, and the one group label every rank of it agrees on.

The core describes a rank's place in its job in `RunContext.metadata["distributed"]` (`tracelet.core.run.distributed`
decides it): ``rank``, ``local_rank``, ``world_size``, ``node_rank``, ``node``, ``launcher``, ``mode``, and for
grouped runs ``group`` (one id per launch, shared by every rank), ``group_name`` (the run's name) and ``role``
(``main``, ``member`` or ``attach``). Backends that group runs by a name use `group_label` (exported as
`tracelet.plugin.group_label`), so every tracker shows the same label for one launch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

GROUP_LABEL_MAX = 128  # W&B's limit on a group name; a longer run name is cut, never the group id
GROUP_ID_CHARS = 24  # a group id up to this long appears whole in a group label (run ids, digests)


def digest(*parts: Any) -> str:
    """16 hex digits standing for `parts` (joined with a unit separator): the same on every rank."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def group_label(metadata: Mapping[str, Any] | None) -> str | None:
    """A readable name for the group of a ``per_rank`` job, the same on every rank of one launch.

    For backends that group runs by a name (W&B's ``group``, a ClearML tag): ``<group_name>-<group id>``, an
    id longer than ``GROUP_ID_CHARS`` replaced by a digest of it (never a prefix: ids that are run ids start
    with the date). None when `metadata` (a run's ``RunContext.metadata``) is not one rank's run of a
    ``per_rank`` job.
    """
    meta = (metadata or {}).get("distributed") or {}
    group = str(meta.get("group") or "")
    if not group or meta.get("role") != "member":
        return None
    short = group if len(group) <= GROUP_ID_CHARS else digest(group)[:GROUP_ID_CHARS]
    name = str(meta.get("group_name") or "run")[: GROUP_LABEL_MAX - len(short) - 1]
    return f"{name}-{short}"
