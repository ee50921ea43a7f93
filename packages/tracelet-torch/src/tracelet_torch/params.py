"""Hyperparameter containers (dicts, `argparse.Namespace`, dataclasses) as flat parameter dicts."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any


def _is_namespace(value: Any) -> bool:
    argparse = sys.modules.get("argparse")  # not imported: no Namespace can exist (and start stays cheap)
    return argparse is not None and isinstance(value, argparse.Namespace)


def flatten_params(params: Any, prefix: str = "") -> dict[str, Any]:
    """A dict, `argparse.Namespace` or dataclass as flat `a/b` keys (Lightning's AttributeDict is a dict)."""
    if _is_namespace(params):
        params = vars(params)
    elif dataclasses.is_dataclass(params) and not isinstance(params, type):
        params = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    out: dict[str, Any] = {}
    for key, value in dict(params).items():
        name = f"{prefix}{key}"
        if (
            isinstance(value, Mapping)
            or _is_namespace(value)
            or (dataclasses.is_dataclass(value) and not isinstance(value, type))
        ):
            out.update(flatten_params(value, f"{name}/"))
        elif callable(value) and not isinstance(value, type):
            out[name] = getattr(value, "__name__", repr(value))
        else:
            out[name] = value
    return out
