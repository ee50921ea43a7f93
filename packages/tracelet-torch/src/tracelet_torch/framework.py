"""The `pytorch` framework plugin: model and dataset facts, optimizers, LR schedulers and `torch.save`.

Guarantees:

- `framework_describe_model` / `framework_describe_dataset` answer only for torch objects, and only when the
  script has imported torch (this module never imports it at start).
- With automagic on (`Experiment(automagic=True)`, `enable_automagic`): every optimizer created during the run
  logs its type and param groups as parameters `optimizer/...` (a second optimizer `optimizer1/...`, and so
  on), and every LR scheduler step that changes a learning rate logs metric `lr` (`lr/group<i>` with several
  param groups; a second scheduler `lr1`, ...) at the scheduler's own step count (`last_epoch`). Both are
  patched once for all runs and removed when the last run stops.
- With `automagic_artifacts` on: `torch.save(obj, path)` of a state dict becomes a `weights` artifact, of a
  checkpoint dict (a dict holding more than tensors, e.g. `model_state_dict` and `epoch`) a `checkpoint`
  artifact, of a whole module a `model` artifact, named after the file. What `torch.save` writes is not
  changed; the file is copied into the run after it was written. Saves to file objects (no path to copy) and
  Tracelet's own saves (inside the run folder or artifact staging) are not captured. A checkpoint dict is
  captured only while the run's `ExperimentConfig.track_checkpoints` is on (the default). Files under a
  folder an integration logs itself (`Experiment.skip_capture`: Trainer checkpoints) are left to it.
- Nothing captured ever raises into training: a failure is logged once per kind and skipped.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any

from tracelet.plugin import ArtifactType, PluginMetadata, captured_file_type, hookimpl
from tracelet_torch import describe
from tracelet_torch._hooks import Patcher, PatchingFramework, Sink, Undo, feed, patch_attr

logger = logging.getLogger("tracelet")

_local = threading.local()  # `saving`: inside a captured torch.save's artifact logging


def _switch(experiment: Any, name: str) -> bool:
    """A per-run switch: the experiment's config when it has the field, else the settings."""
    config = getattr(experiment, "config", None)
    if config is not None and hasattr(config, name):
        return bool(getattr(config, name))
    return bool(getattr(getattr(experiment, "settings", None), name, False))


class _Sink(Sink):
    def __init__(self, experiment: Any) -> None:
        super().__init__(experiment)
        self.optimizers: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self.schedulers: weakref.WeakKeyDictionary[Any, tuple[str, list[float] | None]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def optimizer_prefix(self, optimizer: Any) -> str:
        with self._lock:
            prefix = self.optimizers.get(optimizer)
            if prefix is None:
                n = len(self.optimizers)
                prefix = self.optimizers[optimizer] = "optimizer" if n == 0 else f"optimizer{n}"
            return prefix

    def scheduler_state(self, scheduler: Any) -> tuple[str, list[float] | None]:
        with self._lock:
            state = self.schedulers.get(scheduler)
            if state is None:
                n = len(self.schedulers)
                state = self.schedulers[scheduler] = ("lr" if n == 0 else f"lr{n}", None)
            return state


# -- optimizers and LR schedulers ----------------------------------------------------------------------------------
def log_optimizer(sink: _Sink, optimizer: Any) -> None:
    prefix = sink.optimizer_prefix(optimizer)
    params = {f"{prefix}/{k}": v for k, v in describe.optimizer_params(optimizer).items()}
    sink.experiment.log_params(params)


def _wrap_optimizer_init(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        feed(OPTIM.targets, "optimizer param groups", log_optimizer, self)

    return __init__


def _current_lrs(scheduler: Any) -> list[float]:
    optimizer = getattr(scheduler, "optimizer", None)
    groups = getattr(optimizer, "param_groups", [])
    return [float(g["lr"]) for g in groups if "lr" in g]


def log_scheduler(sink: _Sink, scheduler: Any) -> None:
    name, last = sink.scheduler_state(scheduler)
    lrs = _current_lrs(scheduler)
    if lrs == last:
        return
    sink.schedulers[scheduler] = (name, lrs)
    step = getattr(scheduler, "last_epoch", None)
    step = step if isinstance(step, int) and step >= 0 else None
    if len(lrs) == 1:
        sink.experiment.log_metric(name, lrs[0], step)
    else:
        for i, lr in enumerate(lrs):
            sink.experiment.log_metric(f"{name}/group{i}", lr, step)


def _wrap_scheduler_step(original: Any) -> Any:
    def step(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        feed(OPTIM.targets, "learning rate", log_scheduler, self)
        return result

    return step


def _patch_optimizer(module: ModuleType) -> list[Undo]:
    return patch_attr(module.Optimizer, "__init__", _wrap_optimizer_init)


def _patch_lr_scheduler(module: ModuleType) -> list[Undo]:
    undo: list[Undo] = []
    base = getattr(module, "LRScheduler", None) or getattr(module, "_LRScheduler", None)
    if base is not None:
        undo += patch_attr(base, "step", _wrap_scheduler_step)
    plateau = getattr(module, "ReduceLROnPlateau", None)
    if plateau is not None and "step" in plateau.__dict__:  # it does not call the base class's step
        undo += patch_attr(plateau, "step", _wrap_scheduler_step)
    return undo


OPTIM = Patcher("pytorch", {"torch.optim.optimizer": _patch_optimizer, "torch.optim.lr_scheduler": _patch_lr_scheduler})


# -- torch.save -----------------------------------------------------------------------------------------------------
def save_kind(obj: Any) -> str | None:
    """`weights` for a state dict, `checkpoint` for a dict holding more, `model` for a module, else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if isinstance(obj, torch.nn.Module):
        return "model"
    if isinstance(obj, dict) and obj:
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return "weights"
        return "checkpoint"
    return None


def _own_path(sink: _Sink, path: Path) -> bool:
    """A file in the run folder is Tracelet's own (its artifact copies and journal), never the script's."""
    run_dir = getattr(sink.experiment, "run_dir", None)
    return run_dir is not None and Path(run_dir).resolve() in path.parents


def _tracelet_module(name: str) -> bool:
    """Whether module `name` is Tracelet's code: the core or a plugin package (`tracelet_mlflow`, ...).

    This package is left out: its wrappers are not callers, and TraceletLogger never saves. A plugin must be a
    package, so a user's script module that happens to be called `tracelet_demo` is still the user's.
    """
    top = name.partition(".")[0]
    if top == "tracelet":
        return True
    if not top.startswith("tracelet_") or top == "tracelet_torch":
        return False
    return hasattr(sys.modules.get(top), "__path__")


def called_by_tracelet(frame: Any) -> bool:
    """Whether a `torch.save` call comes from Tracelet itself (an artifact's state dict, an MLflow model copy).

    Decided by the calling code, not by where the file goes: a folder's name (a project checkout called
    `tracelet-demo`) says nothing about who saves into it. Only walked when a run captures saves, and a
    `torch.save` is rare next to the cost of walking its caller's stack.
    """
    while frame is not None:
        if _tracelet_module(frame.f_globals.get("__name__", "")):
            return True
        frame = frame.f_back
    return False


def capture_save(sink: _Sink, obj: Any, target: Any) -> None:
    if not isinstance(target, (str, os.PathLike)):
        return
    kind = save_kind(obj)
    if kind is None:
        return
    path = Path(os.fspath(target)).resolve()
    if not path.is_file() or _own_path(sink, path):
        return
    skipped = getattr(sink.experiment, "capture_skipped", None)
    if skipped is not None and skipped(path):
        return  # an integration logs this folder itself (a Trainer checkpoint): not twice
    exp = sink.experiment
    if kind == "checkpoint" and captured_file_type(exp, path, ArtifactType.CHECKPOINT) is None:
        return  # the run's `track_checkpoints` is off: checkpoints are not logged
    name = path.name.replace(os.sep, "_").lstrip(".") or "checkpoint"
    artifact = exp.create_artifact(name, kind, description="captured torch.save")
    artifact.add_file(str(path), artifact_path=path.name)
    artifact.metadata.update({"source": "torch.save", "path": str(path)})
    exp.log_artifact(artifact)


def _wrap_save(original: Any) -> Any:
    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(obj, f, *args, **kwargs)
        if SAVE.targets and not getattr(_local, "saving", False) and not called_by_tracelet(sys._getframe(1)):
            _local.saving = True  # the artifact's own snapshot must not be captured again
            try:
                feed(SAVE.targets, "torch.save artifact", capture_save, obj, f)
            finally:
                _local.saving = False
        return result

    return save


def _patch_torch(module: ModuleType) -> list[Undo]:
    return patch_attr(module, "save", _wrap_save)


SAVE = Patcher("pytorch-save", {"torch": _patch_torch})


def is_torch(obj: Any, *names: str) -> bool:
    """Whether `obj` is an instance of one of torch's classes `names` (dotted, from `torch`), torch imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    for dotted in names:
        cls: Any = torch
        for part in dotted.split("."):
            cls = getattr(cls, part, None)
        if isinstance(cls, type) and isinstance(obj, cls):
            return True
    return False


class PyTorchFramework(PatchingFramework):
    """The `pytorch` framework plugin (one instance per run)."""

    sink_type = _Sink

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="PyTorch models, datasets, optimizers, LR schedulers and torch.save",
            capabilities=["describe_model", "describe_dataset", "optimizers", "lr_schedulers", "torch.save"],
        )

    def patchers_for(self, experiment: Any) -> tuple[Patcher, ...]:
        """Optimizers and schedulers with automagic on, torch.save with automagic_artifacts on."""
        switches = (("enable_automagic", OPTIM), ("automagic_artifacts", SAVE))
        return tuple(patcher for name, patcher in switches if _switch(experiment, name))

    @hookimpl
    def framework_describe_model(self, model: Any) -> dict[str, Any] | None:
        """Facts about an `nn.Module`; None for anything else.

        :param model: what the script passed to `capture_model`.
        """
        if not is_torch(model, "nn.Module"):
            return None
        return describe.describe_model(model)

    @hookimpl
    def framework_describe_dataset(self, dataset: Any) -> dict[str, Any] | None:
        """Facts about a torch `Dataset` or `DataLoader`; None for anything else.

        :param dataset: what the script passed to `capture_dataset`.
        """
        if not is_torch(dataset, "utils.data.Dataset", "utils.data.DataLoader"):
            return None
        return describe.describe_dataset(dataset)

    @hookimpl
    def framework_detect_hyperparams(self, value: Any) -> dict[str, Any] | None:
        """Hyperparameters held by an optimizer, an LR scheduler or a DataLoader found by `capture_hyperparams`.

        :param value: a variable of the frame `capture_hyperparams` looks at.
        """
        if is_torch(value, "optim.Optimizer"):
            return describe.optimizer_params(value)
        if is_torch(value, "optim.lr_scheduler.LRScheduler", "optim.lr_scheduler.ReduceLROnPlateau"):
            return describe.scheduler_params(value)
        if is_torch(value, "utils.data.DataLoader"):
            return {k: getattr(value, k) for k in ("batch_size", "num_workers", "drop_last") if hasattr(value, k)}
        return None
