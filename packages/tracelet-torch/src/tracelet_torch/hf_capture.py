"""The `transformers` framework plugin: Hugging Face `Trainer`s and `accelerate` inside an active run.

While a run is active (and `automagic_frameworks` does not leave `transformers` out):

- every `transformers.Trainer` created gets a `TraceletCallback` (`tracelet_torch.transformers`) bound to the
  run, unless it already has one (passed in `callbacks=`, or `report_to="tracelet"`): a default `Trainer`
  (`report_to="none"`) records its params, metrics and checkpoints with no code change. The callback never
  ends the run.
- `Accelerator(log_with="tracelet")` works: `TraceletTracker` (`tracelet_torch.accelerate`) is registered
  through accelerate's public `register_tracker_class` (accelerate 1.x) when the script imports accelerate
  inside a run, and stays registered for the process (as when the script imports `tracelet_torch.accelerate`).

Nothing is imported at start: `Trainer` is patched when the script imports `transformers.trainer`, and the
tracker registered when it imports `accelerate.tracking` (or at once when they are already imported). The
patches are removed when the last run stops (Trainers made before keep their callback, which then has no run
to log into unless the script starts one). Failures are logged once and never reach training.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tracelet.plugin import PluginMetadata, hookimpl
from tracelet_torch._hooks import Patcher, PatchingFramework, Undo, patch_attr


def _wrap_trainer_init(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        sinks = PATCHER.targets
        if not sinks:
            return
        sink = sinks[-1]  # the run started last: the one the script is in now
        try:
            from tracelet_torch.transformers import TraceletCallback, has_callback

            if not has_callback(self):
                callback = TraceletCallback()
                callback.bind(sink.experiment)
                self.add_callback(callback)
        except Exception as exc:
            sink.warn("transformers Trainer callback", exc)

    return __init__


def _patch_trainer(module: ModuleType) -> list[Undo]:
    return patch_attr(module.Trainer, "__init__", _wrap_trainer_init)


def _register_tracker(module: ModuleType) -> list[Undo]:
    if getattr(module, "register_tracker_class", None) is None:
        return []  # an accelerate without public tracker registration: pass TraceletTracker() instead
    import tracelet_torch.accelerate  # noqa: F401  (importing it registers the class, for the process)

    return []


PATCHER = Patcher("transformers", {"transformers.trainer": _patch_trainer, "accelerate.tracking": _register_tracker})


class TransformersFramework(PatchingFramework):
    """The `transformers` framework plugin (one instance per run)."""

    patchers = (PATCHER,)

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="A TraceletCallback on every Hugging Face Trainer; log_with='tracelet' for accelerate",
            capabilities=["trainer", "accelerate"],
        )
