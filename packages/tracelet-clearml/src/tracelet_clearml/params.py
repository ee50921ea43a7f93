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
    if type(value) in _PLAIN:
        return value
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    # numpy / torch scalars; also those subclassing a Python type (numpy.float64 is a float), which ClearML
    # would otherwise record with their own type name ("float64")
    item = getattr(value, "item", None)
    if callable(item):
        try:
            got = item()
        except Exception:  # not a one-element array: fall back to its text
            return str(value)
        if isinstance(got, _PLAIN):
            return got
    if isinstance(value, _PLAIN):  # another subclass of a plain type (an enum on str or int, say)
        return value
    return str(value)


def _flatten(prefix: str, value: Mapping[Any, Any], out: dict[str, Any]) -> None:
    for key, inner in value.items():
        name = f"{prefix}/{key}"
        if isinstance(inner, Mapping):
            _flatten(name, inner, out)
        else:
            out[name] = plain_value(inner)


def safe_name(name: str) -> str:
    """A parameter or property name ClearML can hold. ClearML builds each section with `SectionParams(**params)`,
    so a parameter named `self` raises a TypeError in every later edit of the task's parameters (and a
    retried batch would never get through): it is stored as `_self`, the way ClearML itself escapes names
    it cannot take (`type` -> `_type`)."""
    return "_self" if name == "self" else name


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
    renamed = {}
    for key, value in out.items():
        section, _, name = key.partition("/")  # ClearML splits at the first `/` too
        renamed[f"{section}/{safe_name(name)}"] = value
    return renamed


def properties(tags: Mapping[Any, Any]) -> dict[str, str]:
    """`set_tags` values as ClearML user properties (strings, shown in the task's "properties" section)."""
    return {safe_name(str(k)): str(v) for k, v in tags.items() if str(k)}
