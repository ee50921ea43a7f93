"""Tracelet: one experiment-tracking API that fans out to every tracker a team uses."""

from tracelet.core.artifacts import ArtifactResult, ArtifactType, TraceletArtifact
from tracelet.core.config import AutomagicConfig, ExperimentConfig
from tracelet.core.experiment import Experiment
from tracelet.core.plugins import hookimpl
from tracelet.exceptions import BackendError, ConfigurationError, TraceletException
from tracelet.interface import get_active_experiment, start_logging, stop_logging
from tracelet.settings import TraceletSettings

__version__ = "0.1.0"

__all__ = [
    "ArtifactResult",
    "ArtifactType",
    "AutomagicConfig",
    "BackendError",
    "ConfigurationError",
    "Experiment",
    "ExperimentConfig",
    "TraceletArtifact",
    "TraceletException",
    "TraceletSettings",
    "get_active_experiment",
    "hookimpl",
    "start_logging",
    "stop_logging",
]
