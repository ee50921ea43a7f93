"""One typed option parser for every plugin: a backend's config block (and its `<name>_<key>` entries, which
the core folds into the same dict) becomes an attrs object, converted by cattrs.

A plugin subclasses `BackendOptions` with `@attrs.define` fields that all have defaults, and calls
`Options.from_config(config)` in `plugin_setup`. Guarantees:

- Values are converted the way people write them in configs, environment variables and command lines:
  booleans from `"true"/"false"/"1"/"0"/"yes"/"no"` (a string such as `"false"` is never truthy), numbers
  from strings, `str` fields from numbers. A union such as `bool | str` reads a boolean-looking string as the
  boolean and keeps any other string; `None` means "not set" (the field keeps its default).
- A value that cannot be converted is a ConfigurationError (a `ValueError`) naming the plugin, the key, what
  was expected and what was given; fields' attrs validators run too.
- An unknown key is warned about once per plugin and key, with the closest valid name; it never fails the
  run (a config shared by several Tracelet versions keeps working). `aliases` maps other accepted names
  (upstream documentation's, say) to fields; `accepted` lists keys read elsewhere (the core's
  `stop_timeout` and `max_in_flight`) that need no field.

Adding an option is adding a field (with its type and default) to the plugin's class.
"""

from __future__ import annotations

import difflib
import logging
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import attrs
import cattrs

from tracelet.exceptions import ConfigurationError

logger = logging.getLogger("tracelet")

T = TypeVar("T", bound="BackendOptions")
_V = TypeVar("_V")

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


class _Mismatch(ValueError):
    pass


def _bool(value: Any, _: Any = None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Mismatch("a boolean (true/false, 1/0, yes/no)")


def _parsed(value: Any, parse: Callable[[str], _V], what: str) -> _V:
    """`value` as a string `parse` accepts (surrounding spaces ignored); anything else does not match `what`."""
    if isinstance(value, str):
        try:
            return parse(value.strip())
        except ValueError:
            pass
    raise _Mismatch(what)


def _int(value: Any, _: Any = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return _parsed(value, int, "a whole number")


def _float(value: Any, _: Any = None) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return _parsed(value, float, "a number")


def _str(value: Any, _: Any = None) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Mismatch("a string")


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _union(value: Any, tp: Any) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    members = [a for a in args if a is not type(None)]
    if bool in members and isinstance(value, str):  # "false" is the boolean, not a truthy string
        try:
            return _bool(value)
        except _Mismatch:
            pass
    for member in members:  # a value already of one of the types stays as it is
        origin = typing.get_origin(member) or member
        if (
            isinstance(origin, type)
            and isinstance(value, origin)
            and not (isinstance(value, bool) and origin is not bool)
        ):
            return _converter.structure(value, member)
    wanted: list[str] = []
    for member in members:
        try:
            return _converter.structure(value, member)
        except _Mismatch as exc:
            wanted.append(str(exc))
        except Exception:
            wanted.append(getattr(member, "__name__", str(member)))
    raise _Mismatch(" or ".join(dict.fromkeys(wanted)))


def _is_list(tp: Any) -> bool:
    return typing.get_origin(tp) is list


def _list(value: Any, tp: Any) -> list[Any]:
    (item,) = typing.get_args(tp) or (Any,)
    if isinstance(value, str):  # "a, b" from an environment variable or a command line
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise _Mismatch("a list (or a comma-separated string)")
    return [_converter.structure(v, item) for v in value]


_converter = cattrs.Converter()
_converter.register_structure_hook(bool, _bool)
_converter.register_structure_hook(int, _int)
_converter.register_structure_hook(float, _float)
_converter.register_structure_hook(str, _str)
_converter.register_structure_hook_func(_is_union, _union)
_converter.register_structure_hook_func(_is_list, _list)

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


class BackendOptions:
    """Base of a plugin's typed options: subclass with ``@attrs.define`` and fields with defaults.

    Class attributes a subclass may set:

    - ``plugin``: the name messages start with (``"tracelet-mlflow"``).
    - ``aliases``: other accepted key -> field name (the field's own name wins when both are given).
    - ``accepted``: keys taken without a field and without a warning (read elsewhere).
    """

    plugin: ClassVar[str] = "tracelet plugin"
    aliases: ClassVar[Mapping[str, str]] = {}
    accepted: ClassVar[frozenset[str]] = frozenset({"stop_timeout", "max_in_flight"})  # read by the core

    @classmethod
    def from_config(cls: type[T], config: Mapping[str, Any] | None) -> T:
        """The typed options of `config` (the backend's block with its prefixed keys folded in).

        :param config: key -> value as the user gave them (strings from the environment or a command line
            included).
        :raises ConfigurationError: a value that cannot be converted to its field's type, or that its
            field's validator refuses.
        """
        fields = attrs.fields_dict(cls)  # type: ignore[arg-type]  # subclasses are attrs classes
        hints = typing.get_type_hints(cls)
        given: dict[str, Any] = {}
        for key, value in dict(config or {}).items():
            name = key if key in fields else cls.aliases.get(key)
            if name is None:
                if key not in cls.accepted:
                    cls._warn_unknown(key, fields)
                continue
            if value is None or (name in given and key != name):  # not set / the field's own name won
                continue
            given[name] = value
        values: dict[str, Any] = {}
        for name, value in given.items():
            try:
                values[name] = _converter.structure(value, hints.get(name, Any))
            except _Mismatch as exc:
                raise ConfigurationError(f"{cls.plugin}: config key {name!r} must be {exc}, got {value!r}") from None
            except Exception as exc:
                raise ConfigurationError(
                    f"{cls.plugin}: config key {name!r}: {value!r} does not fit {hints.get(name)}: {exc}"
                ) from None
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:  # attrs validators
            raise ConfigurationError(f"{cls.plugin}: {exc}") from None

    @classmethod
    def _warn_unknown(cls, key: str, fields: Mapping[str, Any]) -> None:
        with _warned_lock:
            if (cls.plugin, key) in _warned:
                return
            _warned.add((cls.plugin, key))
        names = sorted({*fields, *cls.aliases})
        close = difflib.get_close_matches(str(key), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        logger.warning(
            "tracelet: %s: config key %r is not supported and is ignored%s (options: %s)",
            cls.plugin,
            key,
            hint,
            ", ".join(n for n in sorted(fields) if not n.startswith("_")),
        )

    def as_config(self) -> dict[str, Any]:
        """The options as a plain dict of converted values (field name -> value)."""
        return attrs.asdict(self, recurse=False)  # type: ignore[arg-type]
