"""The `clearml` config block: `config={"clearml": {...}}` or `clearml_<key>` entries of the experiment config.

Every key acts; an unknown key is warned about once (it would otherwise silently do nothing).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import attrs

from tracelet.plugin import ConfigurationError, parse_bool

logger = logging.getLogger("tracelet.clearml")

# Every framework ClearML 2.1 binds when `auto_connect_frameworks` is True (keys missing from a dict default
# to True there, so "all off" must name each one).
FRAMEWORK_KEYS = (
    "hydra", "scikit", "joblib", "matplotlib", "tensorflow", "tensorboard", "tfdefines", "pytorch",
    "megengine", "xgboost", "catboost", "fastai", "lightgbm", "gradio", "jsonargparse",
)  # fmt: skip

# Keys the core reads from the same block (the stop timeout, max_in_flight) are accepted without a warning.
CORE_KEYS = frozenset({"stop_timeout", "max_in_flight"})


def _optional_bool(value: Any, key: str) -> bool | None:
    if value is None:
        return None
    try:
        return parse_bool(value)
    except ValueError as exc:
        raise ConfigurationError(f"tracelet-clearml: config key {key!r}: {exc}") from exc


def _bool(value: Any, key: str) -> bool:
    got = _optional_bool(value, key)
    return bool(got)


def env_offline() -> bool:
    """ClearML's own switch, `CLEARML_OFFLINE_MODE` (also `TRAINS_OFFLINE_MODE`), read as ClearML reads it."""
    for name in ("CLEARML_OFFLINE_MODE", "TRAINS_OFFLINE_MODE"):
        raw = os.environ.get(name)
        if raw is not None and raw.strip():
            try:
                return parse_bool(raw)
            except ValueError:
                return False
    return False


@attrs.define
class Options:
    """What a run's ClearML task is made of. Defaults: a new task per run, every ClearML auto-capture off."""

    project_name: str | None = None
    task_name: str | None = None
    task_type: str = "training"
    output_uri: str | bool | None = None
    offline: bool = False
    reuse_last_task_id: bool | str = False
    # A task to continue (ClearML's `continue_last_task`); `tracelet sync` sets it to finish a run's own task in
    # place. Online only: offline, ClearML cannot reopen a session, so a new task is made.
    run_id: str | None = None
    auto_connect_frameworks: bool | dict[str, Any] = False
    auto_connect_arg_parser: bool | dict[str, bool] = False
    auto_connect_streams: bool | dict[str, bool] = False
    auto_resource_monitoring: bool | dict[str, Any] = False
    detect_repository: bool = False
    close_timeout: float | None = None
    stop_timeout: float | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Options:
        config = dict(config or {})
        known = {f.name for f in attrs.fields(cls)}
        for key in sorted(set(config) - known - CORE_KEYS):
            logger.warning(
                "tracelet-clearml: config key %r is not supported (known: %s)", key, ", ".join(sorted(known))
            )
        offline = _optional_bool(config.get("offline"), "offline")
        reuse = config.get("reuse_last_task_id", False)
        if not isinstance(reuse, str) or reuse.strip().lower() in ("true", "false", "1", "0", "yes", "no", ""):
            reuse = _bool(reuse, "reuse_last_task_id")
        opts = cls(
            project_name=_text(config.get("project_name")),
            task_name=_text(config.get("task_name")),
            task_type=str(config.get("task_type") or "training"),
            output_uri=config.get("output_uri"),
            offline=env_offline() if offline is None else offline,
            reuse_last_task_id=reuse,
            run_id=_text(config.get("run_id")),
            auto_connect_frameworks=_switch(config.get("auto_connect_frameworks", False), "auto_connect_frameworks"),
            auto_connect_arg_parser=_switch(config.get("auto_connect_arg_parser", False), "auto_connect_arg_parser"),
            auto_connect_streams=_switch(config.get("auto_connect_streams", False), "auto_connect_streams"),
            auto_resource_monitoring=_switch(config.get("auto_resource_monitoring", False), "auto_resource_monitoring"),
            detect_repository=_bool(config.get("detect_repository", False), "detect_repository"),
            close_timeout=_seconds(config.get("close_timeout"), "close_timeout"),
            stop_timeout=_seconds(config.get("stop_timeout"), "stop_timeout"),
        )
        return opts

    def frameworks_argument(self) -> dict[str, Any]:
        """`auto_connect_frameworks` for `Task.init`: always a dict, so `detect_repository` is honoured (a bare
        bool leaves ClearML's repository detection, a `git` subprocess plus an update check, on)."""
        value = self.auto_connect_frameworks
        if isinstance(value, dict):
            # Only the frameworks named are switched on (ClearML itself would switch on every one not named).
            out = {**dict.fromkeys(FRAMEWORK_KEYS, False), **value}
        elif value:
            out = {}
        else:
            out = dict.fromkeys(FRAMEWORK_KEYS, False)
        out.setdefault("detect_repository", self.detect_repository)
        return out

    def streams_captured(self) -> bool:
        value = self.auto_connect_streams
        return bool(value) if not isinstance(value, dict) else any(bool(v) for v in value.values())


def _text(value: Any) -> str | None:
    return None if value is None or str(value) == "" else str(value)


def _switch(value: Any, key: str) -> Any:
    """A ClearML auto-capture switch: a bool (also "true"/"0"...) or ClearML's own fine-grained dict."""
    if isinstance(value, Mapping):
        return dict(value)
    return _bool(value, key)


def _seconds(value: Any, key: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"tracelet-clearml: config key {key!r} must be seconds, got {value!r}") from exc
    if seconds <= 0:
        raise ConfigurationError(f"tracelet-clearml: config key {key!r} must be positive, got {value!r}")
    return seconds
