"""The `lightning` framework plugin: a plain `Trainer` inside an active run, without `TraceletLogger`.

Metrics of Lightning's default `TensorBoardLogger` arrive through TensorBoard capture (`tensorboard` plugin);
this plugin adds what does not go through a SummaryWriter call:

- hyperparameters: `TensorBoardLogger.log_hyperparams` (what `save_hyperparameters` hands it) → parameters,
  nested dicts flattened to `a/b`;
- checkpoints: each file a `ModelCheckpoint` saves → a `checkpoint` artifact (metadata: monitor, score), when
  the run has artifacts on (`Experiment(artifacts=True)`, `enable_artifacts`).
- metrics without a logger: what `self.log` / `log_dict` hand the trainer's logger connector (Lightning's
  internal `_LoggerConnector.log_metrics`, patched) reaches the run
  at the step Lightning would give a logger (the trainer's optimizer steps, or a logged `step` value; plus
  `epoch`, as Lightning adds for its loggers) when no logger records it already: with `logger=False`, or
  only loggers Tracelet does not read (`CSVLogger`). With a `TraceletLogger`, or a `TensorBoardLogger` while
  TensorBoard capture is on for the run, those record each point, so it is not logged again (exactly once).

Hyperparameters and checkpoints are skipped for a trainer that also has a `TraceletLogger` (it logs them
itself: no duplicates). Patched
on import for `lightning.pytorch`, `pytorch_lightning` and `lightning_fabric`; nothing is imported at start;
patches are removed when the last run stops; failures are logged once and never reach training.
"""

from __future__ import annotations

import os
import sys
import threading
from types import ModuleType
from typing import Any

from tracelet.plugin import PluginMetadata, hookimpl
from tracelet_torch import tensorboard
from tracelet_torch._hooks import Patcher, PatchingFramework, Undo, patch_attr
from tracelet_torch.params import flatten_params

LOGGER_MODULE = "tracelet_torch.lightning"


def has_tracelet_logger(trainer: Any) -> bool:
    """Whether `trainer` has a TraceletLogger, or a subclass of it (which logs checkpoints itself)."""
    module = sys.modules.get(LOGGER_MODULE)  # not imported: no trainer can have one
    if module is None:
        return False
    return any(isinstance(logger, module.TraceletLogger) for logger in getattr(trainer, "loggers", None) or [])


def _is_tensorboard_logger(logger: Any) -> bool:
    for cls in type(logger).__mro__:
        if cls.__name__ == "TensorBoardLogger" and (cls.__module__ or "").startswith(
            ("lightning.", "pytorch_lightning.", "lightning_fabric.")
        ):
            return True
    return False


def recorded_by_logger(trainer: Any, experiment: Any) -> bool:
    """Whether the points `trainer`'s loggers get already reach `experiment` (TraceletLogger, or a
    TensorBoardLogger whose writer TensorBoard capture reads for this run)."""
    loggers = list(getattr(trainer, "loggers", None) or [])
    if not loggers:
        return False
    if has_tracelet_logger(trainer):
        return True
    return tensorboard.sink_for(experiment) is not None and any(_is_tensorboard_logger(lg) for lg in loggers)


def artifacts_on(experiment: Any) -> bool:
    return bool(getattr(getattr(experiment, "config", None), "enable_artifacts", False))


def log_checkpoint(experiment: Any, path: str, callback: Any, best: bool | None = None) -> None:
    """Log one checkpoint file as a `checkpoint` artifact named after the file (one version per save)."""
    filename = os.path.basename(path)
    artifact = experiment.create_artifact(filename, "checkpoint", description="Lightning ModelCheckpoint")
    artifact.add_file(path, artifact_path=filename)
    score = (getattr(callback, "best_k_models", None) or {}).get(path)
    artifact.metadata.update(
        {
            "source": "lightning",
            "monitor": getattr(callback, "monitor", None),
            "score": float(score) if score is not None else None,
            "best": (path == getattr(callback, "best_model_path", None)) if best is None else best,
        }
    )
    experiment.log_artifact(artifact)


class _Local(threading.local):
    inner = 0  # Lightning's TensorBoardLogger.log_hyperparams calls its base class's (also patched): log once


_local = _Local()


def _wrap_log_hyperparams(original: Any) -> Any:
    def log_hyperparams(self: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        _local.inner += 1
        try:
            result = original(self, params, *args, **kwargs)
        finally:
            _local.inner -= 1
        if _local.inner:
            return result
        for sink in PATCHER.targets:
            tb_sink = tensorboard.sink_for(sink.experiment)
            if tb_sink is not None and tb_sink.fed_by_logger:
                continue
            try:
                flat = flatten_params(params or {})
                if flat:
                    sink.experiment.log_params(flat)
            except Exception as exc:
                sink.warn("Lightning hyperparameters", exc)
        return result

    return log_hyperparams


def _wrap_save_checkpoint(original: Any) -> Any:
    def _save_checkpoint(self: Any, trainer: Any, filepath: str, *args: Any, **kwargs: Any) -> Any:
        result = original(self, trainer, filepath, *args, **kwargs)
        sinks = PATCHER.targets
        if sinks and getattr(trainer, "is_global_zero", True) and not has_tracelet_logger(trainer):
            for sink in sinks:
                if not artifacts_on(sink.experiment) or not os.path.isfile(filepath):
                    continue
                try:
                    log_checkpoint(sink.experiment, filepath, self)
                except Exception as exc:
                    sink.warn("Lightning checkpoint", exc)
        return result

    return _save_checkpoint


def _logger_step(trainer: Any, metrics: dict[str, Any], step: Any) -> tuple[dict[str, Any], int]:
    """The points and step Lightning's `LoggerConnector.log_metrics` would hand a logger."""
    metrics = dict(metrics)
    if step is None:
        logged_step = metrics.pop("step", None)
        if logged_step is not None:
            step = int(logged_step)
        else:
            metrics.setdefault("epoch", trainer.current_epoch)
            step = trainer.fit_loop.epoch_loop._batches_that_stepped
    return metrics, int(step)


def _wrap_log_metrics(original: Any) -> Any:
    def log_metrics(self: Any, metrics: Any, step: Any = None) -> Any:
        result = original(self, metrics, step)
        sinks = PATCHER.targets
        if not sinks or not metrics:
            return result
        trainer = getattr(self, "trainer", None)
        if trainer is None or not getattr(trainer, "is_global_zero", True):
            return result
        todo = [sink for sink in sinks if not recorded_by_logger(trainer, sink.experiment)]
        if not todo:
            return result
        try:
            points, at = _logger_step(trainer, metrics, step)
        except Exception as exc:
            for sink in todo:
                sink.warn("Lightning self.log step", exc)
            return result
        for sink in todo:
            log = sink.experiment.log_metric
            for name, value in points.items():
                try:
                    log(name, value, at)  # a device tensor is converted on the delivery side
                except Exception as exc:
                    sink.warn(f"Lightning self.log {name!r}", exc)
        return result

    return log_metrics


def _patch_connector_module(module: ModuleType) -> list[Undo]:
    # `_LoggerConnector` is Lightning's internal class (2.x); the one place every `self.log` point passes with
    # its logger step, logger or not. A Lightning without it is reported once by the Patcher, and only this
    # part of the capture is missing then.
    return patch_attr(module._LoggerConnector, "log_metrics", _wrap_log_metrics)


def _patch_logger_module(module: ModuleType) -> list[Undo]:
    return patch_attr(module.TensorBoardLogger, "log_hyperparams", _wrap_log_hyperparams)


def _patch_checkpoint_module(module: ModuleType) -> list[Undo]:
    return patch_attr(module.ModelCheckpoint, "_save_checkpoint", _wrap_save_checkpoint)


PATCHER = Patcher(
    "lightning",
    {
        "lightning.pytorch.loggers.tensorboard": _patch_logger_module,
        "pytorch_lightning.loggers.tensorboard": _patch_logger_module,
        "lightning_fabric.loggers.tensorboard": _patch_logger_module,
        "lightning.fabric.loggers.tensorboard": _patch_logger_module,
        "lightning.pytorch.callbacks.model_checkpoint": _patch_checkpoint_module,
        "pytorch_lightning.callbacks.model_checkpoint": _patch_checkpoint_module,
        "lightning.pytorch.trainer.connectors.logger_connector.logger_connector": _patch_connector_module,
        "pytorch_lightning.trainer.connectors.logger_connector.logger_connector": _patch_connector_module,
    },
)


class LightningFramework(PatchingFramework):
    """The `lightning` framework plugin (one instance per run)."""

    patchers = (PATCHER,)

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="self.log points without a logger, hyperparameters and ModelCheckpoint files of a plain "
            "Lightning Trainer",
            capabilities=["metrics", "hparams", "checkpoints"],
        )
