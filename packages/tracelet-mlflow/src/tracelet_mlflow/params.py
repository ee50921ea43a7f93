"""Parameter values as MLflow takes them: strings of at most 6000 characters, each key set once.

Rules (documented in README.md):
- values are stringified: strings as they are, mappings and sequences as JSON, everything else with `str()`;
- a value over 6000 characters is cut and ends with a marker naming the file that holds the full value: the
  `config` artifact `long-params` of the run (`long-params/v<N>/files/<key>.txt`, one version per batch of
  params that had long values);
- MLflow refuses to change a logged param. The first value stays the param; a later, different value goes to
  the run tag `tracelet.param.<key>` (tags can change), so the latest value is always visible and nothing
  raises in the training loop.
"""

from __future__ import annotations

import json
from typing import Any

MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
LONG_PARAMS_ARTIFACT = "long-params"
CHANGED_TAG_PREFIX = "tracelet.param."


def stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def is_long(value: str) -> bool:
    return len(value) > MAX_PARAM_VALUE_LENGTH


def truncate(value: str, where: str) -> str:
    """`value` cut to MLflow's limit, ending with a marker that says where the full value is."""
    if not is_long(value):
        return value
    marker = f"...[truncated {len(value)} chars; full value: artifact {where}]"
    return value[: MAX_PARAM_VALUE_LENGTH - len(marker)] + marker


def fit_tag_value(value: str) -> str:
    if len(value) <= MAX_TAG_VALUE_LENGTH:
        return value
    marker = f"...[truncated {len(value)} chars]"
    return value[: MAX_TAG_VALUE_LENGTH - len(marker)] + marker
