"""Tracelet: one experiment-tracking API that fans out to every tracker a team uses."""

from typing import TYPE_CHECKING, Any

from tracelet.core.contract.discovery import register_plugin, unregister_plugin
from tracelet.core.experiment import Experiment
from tracelet.core.plugins import hookimpl
from tracelet.core.run.config import AutomagicConfig, ExperimentConfig
from tracelet.exceptions import BackendError, ConfigurationError, TraceletException
from tracelet.interface import get_active_experiment, start_logging, stop_logging
from tracelet.settings import TraceletSettings

if TYPE_CHECKING:
    from tracelet.core.artifacts import ArtifactResult, ArtifactType, TraceletArtifact

__version__ = "0.1.0"

_LAZY = {"ArtifactResult", "ArtifactType", "TraceletArtifact"}


def __getattr__(name: str) -> Any:
    # The artifact model (hashing, serializers) is loaded on first use, keeping `import tracelet` light.
    if name in _LAZY:
        from tracelet.core import artifacts

        return getattr(artifacts, name)
    raise AttributeError(f"module 'tracelet' has no attribute {name!r}")


def sync(run: Any, to: Any = None, **kwargs: Any) -> Any:
    """Deliver a local run to backends `to` later, resumably and without duplicates (`tracelet.transfer.sync`)."""
    from tracelet.transfer.sync import sync as _sync

    return _sync(run, to, **kwargs)


def import_runs(sources: Any, source: str, **kwargs: Any) -> Any:
    """Import runs of another tracker (`source`: "mlflow", "wandb", "clearml", "tensorboard", ...) into the
    local store, losslessly and idempotently (`tracelet.transfer.importer.import_runs`)."""
    from tracelet.transfer.importer import import_runs as _import_runs

    return _import_runs(sources, source=source, **kwargs)


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
    "import_runs",
    "register_plugin",
    "start_logging",
    "stop_logging",
    "sync",
    "unregister_plugin",
]
