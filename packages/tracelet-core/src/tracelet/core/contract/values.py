"""Turning what training code hands us into values the journal and every backend can take.

Nothing here imports numpy or torch: scalars of either are recognised by duck typing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tracelet.core.contract.redact import redact_mapping

lazy_seen = False


def to_float(value: Any) -> Any:
    """A metric value as float; NaN and ±inf are kept. Raises TypeError for anything not a real scalar.

    A 0-d tensor on an accelerator is returned as it is, detached: converting it here would synchronise
    the device on the training thread, so the dispatcher converts it instead.
    """
    t = type(value)
    if t is float:
        return value
    if t is int or t is bool:
        return float(value)
    if isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"metric value must be a real number, got {t.__name__} {value!r}")
    device = getattr(value, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu" and getattr(value, "ndim", None) == 0:
        global lazy_seen
        lazy_seen = True  # tells the dispatcher to look for values to convert
        detach = getattr(value, "detach", None)
        return detach() if detach is not None else value
    if hasattr(t, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metric value must be a real scalar, got {t.__name__}: {exc}") from None
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 0) == 0:
        return to_float(item())
    raise TypeError(f"metric value must be a real number, got {t.__name__}")


def to_step(value: Any) -> int:
    """An iteration number as int (numpy/torch integer scalars included)."""
    if type(value) is int:
        return value
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"iteration must be an integer, got {type(value).__name__} {value!r}")
    return value.__index__()


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a parameter value: scalars unwrapped, containers copied, the rest as str."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", None) == 0:
        try:
            return plain(item())
        except Exception:
            pass
    return str(value)


def normalize_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with string keys, plain values and secrets redacted."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}")
    return redact_mapping({str(k): plain(v) for k, v in params.items()})


def summary_values(values: Mapping[str, Any]) -> dict[str, float]:
    """`log_summary`'s values as name -> float (NaN and ±inf kept); TypeError names the first bad entry.

    Converted here, on the caller's thread (a device tensor too): summaries are a few values per run, and a
    bad one must fail the call that logged it rather than reach a backend.
    """
    if not isinstance(values, Mapping):
        raise TypeError(f"summary values must be a mapping of name -> number, got {type(values).__name__}")
    out: dict[str, float] = {}
    for key, value in values.items():
        try:
            number = to_float(value)
            out[str(key)] = number if type(number) is float else float(number)
        except TypeError as exc:
            raise TypeError(f"summary value {key!r}: {exc} (log text as a tag or a param)") from None
    return out
