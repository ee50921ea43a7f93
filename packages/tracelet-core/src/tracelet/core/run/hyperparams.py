"""Which of a frame's variables look like hyperparameters (`capture_hyperparams()`, automagic at `start()`).

Taken, under the variable's name:

- numbers, booleans and strings up to `AutomagicConfig.max_value_length` characters;
- `argparse.Namespace`, dataclass and attrs instances, and dicts with string keys, flattened to `name/field`
  keys (nested ones too, up to `MAX_DEPTH` levels);
- lists and tuples of up to `MAX_ITEMS` numbers/booleans/short strings, as one list value;
- what a framework plugin's `framework_detect_hyperparams` hook finds in an object it knows (an optimizer's
  learning rate and momentum, ...), under `name/key`.

Left out: private names (`_x`), `AutomagicConfig.ignore_names`, Tracelet's own objects (`ExperimentConfig`,
`AutomagicConfig`, settings, the experiment), None, modules, classes, functions, arrays and
tensors (anything with `shape` and `dtype`), containers of more than `MAX_ITEMS` entries, and any other object.
Reading never calls user code beyond attribute access on configs: no `__len__` of a dataset, no iteration.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from collections.abc import Callable, Mapping
from typing import Any

import attrs

MAX_ITEMS = 32  # a container bigger than this is data, not a setting
MAX_DEPTH = 4

_NOT_SETTINGS = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)

Detector = Callable[[Any], "dict[str, Any] | None"]


def collect(
    variables: Mapping[str, Any],
    max_value_length: int = 500,
    ignore_names: set[str] | frozenset[str] = frozenset(),
    detect: Detector | None = None,
) -> dict[str, Any]:
    """The hyperparameter-looking entries of `variables` (a frame's locals), flattened to `a/b` keys.

    :param variables: name -> value, as in `frame.f_locals`.
    :param max_value_length: longest string taken.
    :param ignore_names: names never taken.
    :param detect: called with an object none of the rules above takes; returns its hyperparameters or None.
    """
    found: dict[str, Any] = {}
    for name, value in list(variables.items()):
        if not isinstance(name, str) or name.startswith("_") or name in ignore_names:
            continue
        _take(found, name, value, max_value_length, detect, 0)
    return found


def _scalar(value: Any, max_len: int) -> bool:
    return isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= max_len)


def _fields(value: Any) -> dict[str, Any] | None:
    """The fields of a config-like object, or None when `value` is not one."""
    if isinstance(value, argparse.Namespace):
        return dict(vars(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if attrs.has(type(value)):
        return {f.name: getattr(value, f.name) for f in attrs.fields(type(value))}
    if isinstance(value, Mapping) and len(value) <= MAX_ITEMS and all(isinstance(k, str) for k in value):
        return dict(value)
    return None


def _tracelets_own(value: Any) -> bool:
    """Tracelet's own objects (its ExperimentConfig, AutomagicConfig, settings, experiment, plugins): the
    tracker's plumbing, never the user's hyperparameters."""
    root = type(value).__module__.partition(".")[0]
    return root == "tracelet" or root.startswith("tracelet_")


def _take(found: dict[str, Any], key: str, value: Any, max_len: int, detect: Detector | None, depth: int) -> None:
    if value is None or isinstance(value, _NOT_SETTINGS) or _tracelets_own(value):
        return
    if _scalar(value, max_len):
        found[key] = value
        return
    if isinstance(value, (list, tuple)):
        if len(value) <= MAX_ITEMS and all(_scalar(v, max_len) for v in value):
            found[key] = list(value)
        return
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # arrays and tensors are data
        return
    fields = _fields(value)
    if fields is not None:
        if depth >= MAX_DEPTH:
            return
        for name, item in fields.items():
            if not str(name).startswith("_"):
                _take(found, f"{key}/{name}", item, max_len, detect, depth + 1)
        return
    if detect is None or type(value).__module__ in ("builtins", "types"):
        return
    try:
        detected = detect(value)
    except Exception:  # a detector's failure leaves the value out, never the capture
        return
    for name, item in (detected or {}).items():
        if _scalar(item, max_len) or isinstance(item, list):
            found[f"{key}/{name}"] = item
