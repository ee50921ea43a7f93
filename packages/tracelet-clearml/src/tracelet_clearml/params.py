"""Tracelet params to ClearML hyperparameters (`"Section/name"` keys) and user properties.

ClearML shows hyperparameters in sections. Nested dicts become sections, top-level plain values go to the
`General` section ClearML itself uses for connected dicts:

    {"lr": 0.1, "optimizer": {"name": "adam", "betas": {"b1": 0.9}}}
    -> {"General/lr": 0.1, "optimizer/name": "adam", "optimizer/betas/b1": 0.9}

Deeper levels stay inside the section's parameter name, joined with `/` (ClearML splits a key at its first
`/` only). A top-level key that itself contains `/` stays whole under `General` (`"train/lr"` ->
`"General/train/lr"`), so a flat name never invents a section. An empty nested dict records nothing.

Values ClearML can type (str, int, float, bool, None, lists/tuples of those) pass as they are; numpy and
torch scalars become Python numbers; anything else is stored as `str(value)`. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GENERAL_SECTION = "General"
_PLAIN = (str, int, float, bool, type(None))


def plain_value(value: Any) -> Any:
    """A value ClearML stores with its type, or its string form."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            got = item()
        except Exception:  # not a one-element array: fall back to its text
            return str(value)
        if isinstance(got, _PLAIN):
            return got
    return str(value)


def _flatten(prefix: str, value: Mapping[Any, Any], out: dict[str, Any]) -> None:
    for key, inner in value.items():
        name = f"{prefix}/{key}"
        if isinstance(inner, Mapping):
            _flatten(name, inner, out)
        else:
            out[name] = plain_value(inner)


def hyperparameters(params: Mapping[Any, Any]) -> dict[str, Any]:
    """`{"Section/name": value}` for ClearML's `Task.update_parameters`."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        key = str(key)
        if isinstance(value, Mapping) and "/" not in key and key:
            _flatten(key, value, out)
        elif isinstance(value, Mapping):
            _flatten(f"{GENERAL_SECTION}/{key}", value, out)
        else:
            out[f"{GENERAL_SECTION}/{key}"] = plain_value(value)
    return out


def properties(tags: Mapping[Any, Any]) -> dict[str, str]:
    """`set_tags` values as ClearML user properties (strings, shown in the task's "properties" section)."""
    return {str(k): str(v) for k, v in tags.items() if str(k)}
