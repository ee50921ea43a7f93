"""Writing and reading the objects of an artifact: "json", "yaml" and "pickle" (the spec's three), plus
"torch" for a module's state_dict.

Reading "pickle" or "torch" can run code, so callers read them only when the user asked (`load=True`).
torch and PyYAML are imported only when their serializer is used.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

SERIALIZERS = ("json", "yaml", "pickle")  # what add_object accepts
SUFFIXES = {"json": ".json", "yaml": ".yaml", "pickle": ".pkl", "torch": ".pt"}
UNSAFE_SERIALIZERS = frozenset({"pickle", "torch"})  # loading them can run code


def file_name(name: str, serializer: str) -> str:
    """The file an object called `name` is written to."""
    return name + SUFFIXES.get(serializer, ".bin")


def write(value: Any, serializer: str, path: Path, what: str = "object") -> None:
    """Write `value` to `path` with `serializer`; `what` names it in errors ("object 'x' of artifact 'y'")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if serializer == "json":
        try:
            text = json.dumps(value, indent=2, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{what} is not JSON-serialisable ({exc}); use serializer='yaml' or 'pickle'") from None
        path.write_text(text, encoding="utf-8")
    elif serializer == "yaml":
        yaml = _import_yaml()
        try:
            text = yaml.safe_dump(value, sort_keys=False)
        except yaml.YAMLError as exc:
            raise TypeError(f"{what} cannot be written as YAML ({exc}); use 'pickle'") from None
        path.write_text(text, encoding="utf-8")
    elif serializer == "pickle":
        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    elif serializer == "torch":
        torch = sys.modules.get("torch") or __import__("torch")
        state = value.state_dict() if callable(getattr(value, "state_dict", None)) else value
        torch.save(state, path)
    else:
        raise ValueError(f"unknown serializer {serializer!r}")


def read(path: str, serializer: str) -> Any:
    """Read back what `write` wrote."""
    if serializer == "json":
        return json.loads(Path(path).read_text(encoding="utf-8"))
    if serializer == "yaml":
        return _import_yaml().safe_load(Path(path).read_text(encoding="utf-8"))
    if serializer == "pickle":
        with open(path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - only reached when the caller asked for unsafe loading
    if serializer == "torch":
        torch = __import__("torch")
        return torch.load(path, weights_only=True)
    raise ValueError(f"unknown serializer {serializer!r}")


def _import_yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError("the 'yaml' serializer needs PyYAML: pip install pyyaml") from None
    return yaml
