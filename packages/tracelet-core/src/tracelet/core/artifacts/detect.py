"""Recognising models by duck typing, without importing torch or sklearn."""

from __future__ import annotations

import json
from typing import Any


def detect_framework(model: Any) -> str:
    """ "pytorch" for a torch nn.Module (Lightning included), "sklearn" for an estimator, else "unknown"."""
    for klass in type(model).__mro__:
        if klass.__name__ == "Module" and (klass.__module__ or "").startswith("torch.nn"):
            return "pytorch"
    if all(callable(getattr(model, a, None)) for a in ("fit", "predict", "get_params")):
        return "sklearn"
    return "unknown"


def normalise_framework(framework: str) -> str:
    f = framework.lower()
    return {"torch": "pytorch", "pytorch": "pytorch", "lightning": "pytorch", "scikit-learn": "sklearn"}.get(f, f)


def qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def torch_parameter_count(model: Any) -> int | None:
    try:
        return int(sum(p.numel() for p in model.parameters()))
    except Exception:
        return None


def describe_example(example: Any) -> dict[str, Any]:
    """Class, shape and dtype of a model's input example, as far as it has them."""
    info: dict[str, Any] = {"class": qualname(example)}
    shape = getattr(example, "shape", None)
    if shape is not None:
        try:
            info["shape"] = [int(d) for d in shape]
        except TypeError:
            pass
    dtype = getattr(example, "dtype", None)
    if dtype is not None:
        info["dtype"] = str(dtype)
    return info


def example_serializer(example: Any, framework: str) -> str:
    if framework == "pytorch" and hasattr(example, "shape"):
        return "torch"
    try:
        json.dumps(example)
        return "json"
    except (TypeError, ValueError):
        return "pickle"
