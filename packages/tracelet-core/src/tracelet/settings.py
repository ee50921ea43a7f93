"""Global settings, resolved as: explicit argument > `config` dict > `TRACELET_*` environment > default."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    import cattrs

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def parse_bool(value: Any) -> bool:
    """`true/false/1/0/yes/no` (any case) and real booleans."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use true/false, 1/0 or yes/no)")


def parse_list(value: Any) -> list[str]:
    """A comma-separated string or an iterable of strings."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


@functools.cache
def _converter() -> cattrs.Converter:
    # Built on first use: settings are resolved when a run starts, not at `import tracelet`.
    import cattrs

    conv = cattrs.Converter()
    conv.register_structure_hook(bool, lambda v, _: parse_bool(v))
    conv.register_structure_hook_func(lambda t: t == list[str], lambda v, _: parse_list(v))
    conv.register_structure_hook_func(lambda t: t == set[str], lambda v, _: set(parse_list(v)))
    conv.register_structure_hook(float, lambda v, _: float(v))
    conv.register_structure_hook(int, lambda v, _: int(v))
    return conv


def _structure(value: Any, kind: Any) -> Any:
    import cattrs

    try:
        return _converter().structure(value, kind)
    except cattrs.BaseValidationError as exc:
        raise ValueError(str(exc.exceptions[0]) if exc.exceptions else str(exc)) from exc


def _env_default(name: str, default: Any, kind: type) -> Any:
    """An attrs default that reads `TRACELET_<NAME>` when the instance is created."""

    def factory() -> Any:
        raw = os.environ.get(f"TRACELET_{name.upper()}")
        if raw is None:
            return default() if callable(default) else default
        try:
            return _structure(raw, kind)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"TRACELET_{name.upper()}={raw!r}: {exc}") from exc

    return attrs.Factory(factory)


def _field(name: str, default: Any, kind: type) -> Any:
    return attrs.field(default=_env_default(name, default, kind), metadata={"env": f"TRACELET_{name.upper()}"})


@attrs.define
class TraceletSettings:
    """Settings shared by every run of the process. Each field reads `TRACELET_<FIELD>` when not given."""

    project: str = _field("project", "default", str)
    backend: list[str] = _field("backend", lambda: ["local"], list[str])
    track_system: bool = _field("track_system", True, bool)
    track_git: bool = _field("track_git", True, bool)
    track_env: bool = _field("track_env", True, bool)
    metrics_interval: float = _field("metrics_interval", 10.0, float)

    enable_automagic: bool = _field("enable_automagic", False, bool)
    automagic_frameworks: set[str] = _field("automagic_frameworks", set, set[str])

    enable_artifacts: bool = _field("enable_artifacts", False, bool)
    automagic_artifacts: bool = _field("automagic_artifacts", False, bool)
    watch_filesystem: bool = _field("watch_filesystem", False, bool)
    artifact_watch_dirs: list[str] = _field("artifact_watch_dirs", list, list[str])

    # Beyond the spec's table: where the local store lives and how the orchestrator behaves.
    dir: str = _field("dir", "./tracelet-runs", str)
    local_store: bool = _field("local_store", True, bool)
    stop_timeout: float = _field("stop_timeout", 30.0, float)
    start_timeout: float = _field("start_timeout", 30.0, float)
    max_buffered: int = _field("max_buffered", 200_000, int)
    # Console tee (tracelet.collectors.stdout): off unless asked for; an ExperimentConfig defaults it on.
    track_stdout: bool = _field("track_stdout", False, bool)
    # Environment variables recorded beyond tracelet.collectors.environment.DEFAULT_ENV_ALLOWLIST (names or
    # shell-style patterns); no other variable is ever read into a run.
    env_allowlist: list[str] = _field("env_allowlist", list, list[str])
    # With track_env: the installed distributions as the `environment` config artifact (requirements.txt form).
    env_packages: bool = _field("env_packages", True, bool)
    # Multi-process jobs (tracelet.core.run.distributed): rank0 / per_rank / off, and whether ranks that do not
    # report under rank0 keep a local store of their own.
    distributed: str = _field("distributed", "rank0", str)
    distributed_local_store: bool = _field("distributed_local_store", False, bool)

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in attrs.fields(cls)}

    @classmethod
    def resolve(cls, config: Mapping[str, Any] | None = None, **explicit: Any) -> TraceletSettings:
        """Settings from explicit values (None means not given) over `config` keys over the environment."""
        names = cls.field_names()
        given: dict[str, Any] = {k: v for k, v in (config or {}).items() if k in names}
        given.update({k: v for k, v in explicit.items() if v is not None})
        unknown = set(given) - names
        if unknown:
            raise ConfigurationError(f"unknown settings: {sorted(unknown)}")
        kinds = {f.name: f.type for f in attrs.fields(cls)}
        try:
            values = {k: _structure(v, _resolve_type(kinds[k])) for k, v in given.items()}
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"invalid setting: {exc}") from exc
        return cls(**values)


def _resolve_type(annotation: Any) -> Any:
    # Annotations are strings under `from __future__ import annotations`.
    return {"str": str, "bool": bool, "float": float, "int": int, "list[str]": list[str], "set[str]": set[str]}.get(
        annotation, annotation
    )
