"""Automagic: what an experiment picks up without being told, and the framework plugins that do most of it.

Decided with the spec (see the README's "Automagic" section):

- **Framework capture** (TensorBoard's SummaryWriter, Lightning's `self.log`, ... through `tracelet.frameworks`
  plugins) is on by default: the spec's Basic Usage expects `writer.add_scalar` to be captured with no flag.
  `automagic_frameworks` picks which installed framework plugins are instrumented (empty: all of them).
- **`enable_automagic`** (`Experiment(automagic=True)`, `TRACELET_ENABLE_AUTOMAGIC`), off by default, adds
  automatic *hyperparameter* capture: at `start()`, the simple local variables of the code that started the
  experiment are logged as params, when `AutomagicConfig.detect_hyperparameters` (default True) allows it.
  Framework plugins read `experiment.config.enable_automagic` to decide on their own extra capture (models,
  optimizer settings).
- `capture_hyperparams()`, `capture_model()` and `capture_dataset()` work whatever the flags say: calling them
  is the request.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from tracelet.core.contract import discovery
from tracelet.core.contract.records import RunContext
from tracelet.core.engine.backend import BoundPlugin, instantiate
from tracelet.core.plugins import PluginType
from tracelet.core.run.config import AutomagicConfig

logger = logging.getLogger("tracelet")


def simple_locals(
    frame: FrameType | None, cfg: AutomagicConfig, detect: Callable[[Any], dict[str, Any] | None] | None = None
) -> dict[str, Any]:
    """The frame's variables that look like hyperparameters (rules: `tracelet.core.run.hyperparams`): numbers,
    booleans, short strings, argparse/dataclass/attrs configs flattened to `a/b`, and what `detect` (the
    framework plugins) finds in their own objects; never private names (`_x`) or `cfg.ignore_names`."""
    if frame is None:
        return {}
    from tracelet.core.run import hyperparams

    return hyperparams.collect(frame.f_locals, cfg.max_value_length, cfg.ignore_names, detect)


def user_frame(depth: int = 1) -> FrameType | None:
    """The innermost calling frame outside the `tracelet` package (the code that started the experiment)."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "tracelet" and not module.startswith("tracelet."):
            return frame
        frame = frame.f_back
    return None


def generic_model_info(model: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
    parameters = getattr(model, "parameters", None)
    if callable(parameters):
        try:
            info["parameters"] = sum(int(p.numel()) for p in parameters())
        except Exception:
            pass
    return info


def generic_dataset_info(dataset: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"class": f"{type(dataset).__module__}.{type(dataset).__qualname__}"}
    try:
        info["size"] = len(dataset)
    except TypeError:
        pass
    return info


class Frameworks:
    """The framework plugins instrumented into one experiment."""

    def __init__(self) -> None:
        self.handles: list[BoundPlugin] = []

    def instrument(self, experiment: Any, wanted: set[str], context_for: Callable[[str], RunContext]) -> None:
        """Instrument every installed framework plugin in `wanted` (all when empty); one that cannot hook in
        is skipped with a warning, never stopping the run."""
        for spec in discovery.installed(PluginType.FRAMEWORK):
            if wanted and spec.name not in wanted:
                continue
            try:
                handle = BoundPlugin(spec.name, instantiate(spec.load()), context_for(spec.name), spec)
                handle.call("framework_instrument", experiment=experiment)
                self.handles.append(handle)
            except Exception as exc:
                logger.warning("tracelet: framework plugin %r not active: %s", spec.name, exc)

    def uninstrument(self, experiment: Any) -> None:
        for handle in self.handles:
            try:
                handle.call("framework_uninstrument", experiment=experiment)
            except Exception as exc:
                logger.warning("tracelet: framework plugin %r failed to uninstrument: %s", handle.name, exc)

    def detect(self, value: Any) -> dict[str, Any] | None:
        """Hyperparameters a framework plugin finds in `value` (`framework_detect_hyperparams`), or None."""
        return self.describe("framework_detect_hyperparams", value=value)

    def describe(self, hook: str, **kwargs: Any) -> dict[str, Any] | None:
        """The first non-empty answer of `hook` among the instrumented plugins."""
        for handle in self.handles:
            try:
                info = handle.call(hook, **kwargs)
            except Exception as exc:
                logger.warning("tracelet: %s of %r failed: %s", hook, handle.name, exc)
                continue
            if info:
                return dict(info)
        return None
