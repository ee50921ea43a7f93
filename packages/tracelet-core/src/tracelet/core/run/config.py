"""Per-experiment configuration (the spec's `ExperimentConfig`) and how it overlays the global settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tracelet.exceptions import ConfigurationError
from tracelet.settings import TraceletSettings, parse_bool


@attrs.define
class AutomagicConfig:
    """What automagic capture looks at."""

    detect_hyperparameters: bool = True
    max_value_length: int = 500
    ignore_names: set[str] = attrs.field(factory=lambda: {"self", "cls"})


@attrs.define
class ExperimentConfig:
    """Detailed settings for one experiment; when given, its fields win over the global settings."""

    # Core tracking settings
    track_metrics: bool = True
    track_environment: bool = True
    track_args: bool = True
    track_stdout: bool = True
    track_checkpoints: bool = True
    track_system_metrics: bool = True
    track_git: bool = True

    # Automagic instrumentation settings
    enable_automagic: bool = False
    automagic_frameworks: set[str] | None = None

    # Artifact tracking settings
    enable_artifacts: bool = False
    automagic_artifacts: bool = False
    artifact_watch_dirs: list[str] | None = None
    watch_filesystem: bool = False

    @classmethod
    def from_settings(cls, settings: TraceletSettings) -> ExperimentConfig:
        return cls(
            track_environment=settings.track_env,
            track_system_metrics=settings.track_system,
            track_git=settings.track_git,
            track_stdout=settings.track_stdout,
            enable_automagic=settings.enable_automagic,
            automagic_frameworks=set(settings.automagic_frameworks) or None,
            enable_artifacts=settings.enable_artifacts,
            automagic_artifacts=settings.automagic_artifacts,
            artifact_watch_dirs=list(settings.artifact_watch_dirs) or None,
            watch_filesystem=settings.watch_filesystem,
        )

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None, settings: TraceletSettings) -> ExperimentConfig | None:
        """The config a `start_logging`-style `config` dict asks for: its keys that only ExperimentConfig has
        (`track_metrics`, `track_args`, `track_checkpoints`, `track_environment`, `track_system_metrics`) over
        `settings`; None when it names none of them (the settings it names are in `settings` already)."""
        only = {f.name for f in attrs.fields(cls)} - TraceletSettings.field_names()
        given = {k: v for k, v in (config or {}).items() if k in only}
        if not given:
            return None
        out = cls.from_settings(settings)
        for key, value in given.items():
            setattr(out, key, _flag(key, value))
        return out

    def overlay(self, settings: TraceletSettings) -> TraceletSettings:
        """The settings with this config's fields in their place."""
        changes: dict[str, Any] = {
            "track_env": self.track_environment,
            "track_system": self.track_system_metrics,
            "track_git": self.track_git,
            "enable_automagic": self.enable_automagic,
            "enable_artifacts": self.enable_artifacts,
            "automagic_artifacts": self.automagic_artifacts,
            "watch_filesystem": self.watch_filesystem,
        }
        if self.automagic_frameworks is not None:
            changes["automagic_frameworks"] = set(self.automagic_frameworks)
        if self.artifact_watch_dirs is not None:
            changes["artifact_watch_dirs"] = list(self.artifact_watch_dirs)
        return attrs.evolve(settings, **changes)


def _flag(key: str, value: Any) -> bool:
    try:
        return parse_bool(value)
    except ValueError as exc:
        raise ConfigurationError(f"config {key}: {exc}") from None


# Knobs the spec documents whose behaviour is not built yet: knob -> (the value that needs no support, the
# issue that builds it). Setting a knob to anything else logs one "not supported yet" warning per process.
# One small table on purpose: whoever implements a knob deletes its line (and the settings test then
# demands that the knob act).
NOT_SUPPORTED_YET: dict[str, tuple[Any, str]] = {}
_warned: set[str] = set()


def warn_unsupported(config: ExperimentConfig | None, settings: TraceletSettings) -> list[str]:
    """Warn once per process for each knob in NOT_SUPPORTED_YET set to a value that would need it.

    `config` is the ExperimentConfig the user gave (None when there is none: then the global settings are
    what the user chose). Returns the knobs warned about now.
    """
    import logging

    chosen: dict[str, Any] = {}
    for knob in NOT_SUPPORTED_YET:
        if config is not None and hasattr(config, knob):
            chosen[knob] = getattr(config, knob)
        elif hasattr(settings, knob):
            chosen[knob] = getattr(settings, knob)
    warned = []
    for knob, value in chosen.items():
        inert, owner = NOT_SUPPORTED_YET[knob]
        if value != inert and knob not in _warned:
            _warned.add(knob)
            warned.append(knob)
            logging.getLogger("tracelet").warning(
                "tracelet: %s=%r is not supported yet and has no effect (%s builds it)", knob, value, owner
            )
    return warned
