"""The `clearml` config block: `config={"clearml": {...}}` or `clearml_<key>` entries of the experiment config.

Every key acts; an unknown key is warned about once with the closest valid one (it would otherwise silently do
nothing). Parsing is `tracelet.plugin.BackendOptions`'s, shared by every backend: `"false"`/`"0"`/`"no"` are
booleans, numbers may be strings.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from tracelet.plugin import BackendOptions, ConfigurationError, parse_bool

logger = logging.getLogger("tracelet.clearml")

# Every framework ClearML 2.1 binds when `auto_connect_frameworks` is True (keys missing from a dict default
# to True there, so "all off" must name each one).
FRAMEWORK_KEYS = (
    "hydra", "scikit", "joblib", "matplotlib", "tensorflow", "tensorboard", "tfdefines", "pytorch",
    "megengine", "xgboost", "catboost", "fastai", "lightgbm", "gradio", "jsonargparse",
)  # fmt: skip


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


def _text(value: Any) -> str | None:
    return None if value is None or str(value) == "" else str(value)


def _task_type(value: Any) -> str:
    return str(value or "training")


def _positive(instance: Any, attribute: Any, value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigurationError(f"tracelet-clearml: config key {attribute.name!r} must be positive, got {value!r}")


@attrs.define
class Options(BackendOptions):
    """What a run's ClearML task is made of. Defaults: a new task per run, every ClearML auto-capture off."""

    plugin: ClassVar[str] = "tracelet-clearml"

    project_name: str | None = attrs.field(default=None, converter=_text)
    task_name: str | None = attrs.field(default=None, converter=_text)
    task_type: str = attrs.field(default="training", converter=_task_type)
    output_uri: str | bool | None = None
    offline: bool | None = None  # None: ClearML's own environment switch (`from_config` settles it)
    reuse_last_task_id: bool | str = False
    # A task to continue (ClearML's `continue_last_task`); `tracelet sync` sets it to finish a run's own task in
    # place. Online only: offline, ClearML cannot reopen a session, so a new task is made.
    run_id: str | None = attrs.field(default=None, converter=_text)
    auto_connect_frameworks: bool | dict[str, Any] = False
    auto_connect_arg_parser: bool | dict[str, bool] = False
    auto_connect_streams: bool | dict[str, bool] = False
    auto_resource_monitoring: bool | dict[str, Any] = False
    detect_repository: bool = False
    close_timeout: float | None = attrs.field(default=None, validator=_positive)
    stop_timeout: float | None = attrs.field(default=None, validator=_positive)
    tags: list[str] = attrs.field(factory=list)  # task tags beside the run's own (upstream's docs pass them here)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Options:
        opts = super().from_config(config)
        if opts.offline is None:
            opts.offline = env_offline()
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
