"""TensorBoard capture: what a `SummaryWriter` writes also reaches the active run(s).

Registered as the `tensorboard` framework (`automagic_frameworks` may name it). Covers
`torch.utils.tensorboard.SummaryWriter` and, when installed, `tensorboardX.SummaryWriter`.

Guarantees:

- The writer's own call runs first and unchanged: its event files hold exactly what they would without
  Tracelet, and an error it raises reaches the script as before (nothing is captured then).
- Capturing never raises into training: a value the run cannot take is skipped with one warning per kind.
- No torch, tensorboard or tensorboardX import at start: writers imported later are patched on import.
- Patches are installed once for all runs, removed when the last run stops, and a stopped run gets nothing.
- Values are handed over as they come: a tensor on an accelerator is converted on the delivery side, never
  on the training thread (histogram statistics are computed as 0-d tensors on the tensor's own device).

What becomes what (step: `global_step`, or the run's current iteration when None; timestamp: `walltime`;
when None, the time of the call, handed to the writer too so both record the same time):

- `add_scalar(tag, v)` → metric `tag`; `add_scalars(main, {sub: v})` → metrics `main/sub`.
- `add_hparams(hparams, metrics)` → parameters `hparams`, metrics `metrics` (the writer's inner writes of
  those metrics are not captured twice).
- `add_histogram(tag, values)` → metrics `tag/min`, `tag/max`, `tag/mean`, `tag/std`, `tag/count`. No
  backend has a native histogram hook yet, so the bins themselves stay in the event file only.
- `add_image(tag, img)` (and `add_figure`, which goes through it) → an `image` artifact named after the tag
  holding the PNG TensorBoard encodes. Rate-limited per run: at most one image per tag every
  `tensorboard_image_interval` seconds (default 30) and `tensorboard_image_max` images in all (default 200);
  the rest are skipped (they are still in the event file). Set either in the experiment's config dict
  (`{"tensorboard_image_interval": 0}` captures every image) or as `{"tensorboard": {"image_interval": 0}}`.
- `add_text(tag, text)` → a `report` artifact named after the tag (`<tag>.md`), under the same limits.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

from tracelet.plugin import PluginMetadata, hookimpl
from tracelet_torch._hooks import Patcher, PatchingFramework, Sink, Undo, patch_attr

logger = logging.getLogger("tracelet")

IMAGE_INTERVAL = 30.0
IMAGE_MAX = 200


class _Local(threading.local):
    inner = 0  # depth of captured calls on this thread (add_hparams writes scalars itself); a class default
    # so the hot path reads an attribute instead of catching a missing one


_local = _Local()
_fed: set[Any] = set()  # sinks a TraceletLogger/TraceletCallback feeds: the frameworks' own writers are skipped


class _Sink(Sink):
    """One run as a capture target, with its own rate limits."""

    def __init__(self, experiment: Any) -> None:
        super().__init__(experiment)
        options = dict(getattr(experiment, "options", None) or {})
        block = options.get("tensorboard")
        if not isinstance(block, dict):
            block = {}
        self.image_interval = float(_option(options, block, "image_interval", IMAGE_INTERVAL))
        self.image_max = int(_option(options, block, "image_max", IMAGE_MAX))
        self.images = 0
        self.last_image: dict[str, float] = {}
        self.skipped_images = 0
        self._lock = threading.Lock()
        log_at = getattr(experiment, "log_metric_at", None)
        self.metric: Callable[[str, Any, Any, Any], None]  # (name, value, step, walltime)
        if log_at is None:  # an older core: walltime cannot be kept, the point is timed at the call
            log = experiment.log_metric
            self.metric = lambda name, value, step, walltime: log(name, value, step)
        else:
            self.metric = log_at

    @property
    def fed_by_logger(self) -> bool:
        """Whether a TraceletLogger or TraceletCallback feeds this run (then the writers of Lightning's loggers
        and of transformers' TensorBoardCallback are not captured into it)."""
        return self in _fed

    @fed_by_logger.setter
    def fed_by_logger(self, value: bool) -> None:
        if value:
            _fed.add(self)
        else:
            _fed.discard(self)

    def allow_media(self, tag: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self.last_image.get(tag)
            if self.images >= self.image_max or (last is not None and now - last < self.image_interval):
                self.skipped_images += 1
                return False
            self.images += 1
            self.last_image[tag] = now
            return True


def _option(options: dict[str, Any], block: dict[str, Any], key: str, default: Any) -> Any:
    if f"tensorboard_{key}" in options:
        return options[f"tensorboard_{key}"]
    return block.get(key, default)


def _targets(writer: Any) -> tuple[_Sink, ...]:
    sinks = PATCHER.targets
    if not sinks or _local.inner:
        return ()
    if _fed:
        owned = getattr(writer, "_tracelet_lightning", None)
        if owned is None:  # made before any run was instrumented: the caller of this write tells (once)
            owned = writer._tracelet_lightning = _made_by_framework(writer, 3)
        if owned:
            sinks = tuple(s for s in sinks if s not in _fed)
    return sinks


class _Inner:
    """Marks a captured call in progress so the writer's own nested writes are not captured again."""

    def __enter__(self) -> None:
        _local.inner += 1

    def __exit__(self, *exc: Any) -> None:
        _local.inner -= 1


def _scalar(sinks: tuple[_Sink, ...], name: str, value: Any, step: Any, walltime: Any) -> None:
    for sink in sinks:
        try:
            sink.metric(name, value, step, walltime)
        except Exception as exc:  # a string "blobname", a bad step: the writer took it, the run skips it
            sink.warn(f"TensorBoard scalar {name!r}", exc)


def _safe_name(tag: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(tag)).strip("._") or "tensorboard"


# -- patches -------------------------------------------------------------------------------------------------------
def _wrap_init(original: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if PATCHER.targets:
            self._tracelet_lightning = _made_by_framework(self, 2)

    return __init__


_LIGHTNING_PACKAGES = ("lightning.", "pytorch_lightning.", "lightning_fabric.")


def _is_framework_logger(owner: Any) -> bool:
    """Whether `owner` is one of Lightning's loggers or transformers' `TensorBoardCallback` (or a subclass of
    one): the writers they own carry what TraceletLogger / TraceletCallback already log."""
    for cls in type(owner).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if module.startswith(_LIGHTNING_PACKAGES) and ".loggers" in module:
            return True
        if module.startswith("transformers.integrations") and cls.__name__ == "TensorBoardCallback":
            return True
    return False


def _made_by_framework(writer: Any, depth: int) -> bool:
    """Whether `writer` belongs to a framework's logger: looked up once per writer, from the frame `depth`
    levels up (the caller of the writer's `__init__`, or of its first write after a run started).

    The nearest calling method decides: Lightning's `TensorBoardLogger.experiment` creates its writer itself,
    while a writer the script creates in a `LightningModule` hook is the script's own, even though the
    trainer's loops are further up the stack. Frames of the writer's own methods are skipped.
    """
    frame: FrameType | None = sys._getframe(depth)
    for _ in range(8):
        if frame is None:
            return False
        owner = frame.f_locals.get("self")
        if owner is not None and owner is not writer:
            return _is_framework_logger(owner)
        frame = frame.f_back
    return False


def _wrap_add_scalar(original: Any) -> Any:
    def add_scalar(self: Any, tag: Any, scalar_value: Any, global_step: Any = None, walltime: Any = None,
                   *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        if not PATCHER.targets:
            return original(self, tag, scalar_value, global_step, walltime, *args, **kwargs)
        if walltime is None:  # what the writer would take; handing it over keeps the run's point at the same time
            walltime = time.time()
        result = original(self, tag, scalar_value, global_step, walltime, *args, **kwargs)
        sinks = _targets(self)
        if sinks:
            _scalar(sinks, tag, scalar_value, global_step, walltime)
        return result

    return add_scalar


def _wrap_add_scalars(original: Any) -> Any:
    def add_scalars(self: Any, main_tag: Any, tag_scalar_dict: Any, global_step: Any = None,
                    walltime: Any = None, *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        if walltime is None and PATCHER.targets:
            walltime = time.time()  # what the writer would use; the same time in the run
        result = original(self, main_tag, tag_scalar_dict, global_step, walltime, *args, **kwargs)
        sinks = _targets(self)
        if sinks:
            for sub, value in dict(tag_scalar_dict).items():
                _scalar(sinks, f"{main_tag}/{sub}", value, global_step, walltime)
        return result

    return add_scalars


def _wrap_add_hparams(original: Any) -> Any:
    def add_hparams(self: Any, hparam_dict: Any, metric_dict: Any, *args: Any, **kwargs: Any) -> Any:
        sinks = _targets(self)
        with _Inner():
            result = original(self, hparam_dict, metric_dict, *args, **kwargs)
        import inspect

        try:  # global_step's position differs (torch: 5th, tensorboardX: 4th); a rare call, so bind by name
            step = (
                inspect.signature(original)
                .bind(self, hparam_dict, metric_dict, *args, **kwargs)
                .arguments.get("global_step")
            )
        except TypeError:
            step = kwargs.get("global_step")
        walltime = time.time()
        for sink in sinks:
            try:
                sink.experiment.log_params(dict(hparam_dict))
            except Exception as exc:
                sink.warn("TensorBoard hparams", exc)
        for name, value in dict(metric_dict).items():
            _scalar(sinks, name, value, step, walltime)
        return result

    return add_hparams


def _wrap_add_histogram(original: Any) -> Any:
    def add_histogram(self: Any, tag: Any, values: Any, global_step: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = original(self, tag, values, global_step, *args, **kwargs)
        sinks = _targets(self)
        if sinks:
            walltime = kwargs.get("walltime")
            if walltime is None and len(args) >= 2:  # (bins, walltime, ...) positionally
                walltime = args[1]
            try:
                stats = histogram_stats(values)
            except Exception as exc:
                for sink in sinks:
                    sink.warn(f"TensorBoard histogram {tag!r}", exc)
                return result
            for key, value in stats.items():
                _scalar(sinks, f"{tag}/{key}", value, global_step, walltime)
        return result

    return add_histogram


def histogram_stats(values: Any) -> dict[str, Any]:
    """min, max, mean, std and count of a tensor, array or sequence.

    A tensor's statistics are computed on its own device and returned as 0-d tensors: an accelerator's values
    are then read on the delivery side, not here (no device sync on the training thread).
    """
    if hasattr(values, "detach") and hasattr(values, "numel"):
        flat = values.detach().reshape(-1)
        count = int(flat.numel())
        if count == 0:
            return {"count": 0}
        flat = flat.double() if flat.device.type == "cpu" else flat.float()
        stats = {"min": flat.min(), "max": flat.max(), "mean": flat.mean()}
        stats["std"] = flat.std(unbiased=False) if count > 1 else 0.0
        stats["count"] = count
        return stats
    import numpy as np  # tensorboard itself needs numpy, so it is loaded whenever histograms are written

    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        return {"count": 0}
    return {"min": array.min(), "max": array.max(), "mean": array.mean(), "std": array.std(), "count": int(array.size)}


def _wrap_add_image(original: Any, encode: Any) -> Any:
    def add_image(self: Any, tag: Any, img_tensor: Any, global_step: Any = None, walltime: Any = None,
                  dataformats: str = "CHW", *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        result = original(self, tag, img_tensor, global_step, walltime, dataformats, *args, **kwargs)
        sinks = [s for s in _targets(self) if s.allow_media(str(tag))]
        if sinks:
            try:
                png = encode(str(tag), img_tensor, dataformats=dataformats).value[0].image.encoded_image_string
            except Exception as exc:
                for sink in sinks:
                    sink.warn(f"TensorBoard image {tag!r}", exc)
                return result
            _media(sinks, tag, "image", f"step-{global_step if global_step is not None else 0}.png", png,
                   global_step, walltime)  # fmt: skip
        return result

    return add_image


def _wrap_add_text(original: Any) -> Any:
    def add_text(self: Any, tag: Any, text_string: Any, global_step: Any = None, walltime: Any = None,
                 *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        result = original(self, tag, text_string, global_step, walltime, *args, **kwargs)
        sinks = [s for s in _targets(self) if s.allow_media(f"text:{tag}")]
        if sinks:
            _media(sinks, tag, "report", f"{_safe_name(tag)}.md", str(text_string).encode(), global_step, walltime)
        return result

    return add_text


def _media(sinks: list[_Sink], tag: Any, kind: str, filename: str, data: bytes, step: Any, walltime: Any) -> None:
    """Log `data` as one artifact version per run; the file is copied into each run before this returns."""
    import tempfile  # rate-limited media only: not imported at start

    with tempfile.TemporaryDirectory(prefix="tracelet-tb-") as tmp:
        path = os.path.join(tmp, filename)
        with open(path, "wb") as f:
            f.write(data)
        for sink in sinks:
            try:
                exp = sink.experiment
                artifact = exp.create_artifact(_safe_name(tag), kind, description=f"TensorBoard {kind}: {tag}")
                artifact.add_file(path, artifact_path=filename)
                artifact.metadata.update({"tag": str(tag), "source": "tensorboard"})
                if step is not None:
                    artifact.metadata["step"] = int(step)
                if walltime is not None:
                    artifact.metadata["walltime"] = float(walltime)
                exp.log_artifact(artifact)
            except Exception as exc:
                sink.warn(f"TensorBoard {kind} {tag!r}", exc)


def _patch_writer_class(cls: type, summary: ModuleType | None) -> list[Undo]:
    undo: list[Undo] = []
    undo += patch_attr(cls, "__init__", _wrap_init)
    undo += patch_attr(cls, "add_scalar", _wrap_add_scalar)
    undo += patch_attr(cls, "add_scalars", _wrap_add_scalars)
    undo += patch_attr(cls, "add_hparams", _wrap_add_hparams)
    undo += patch_attr(cls, "add_histogram", _wrap_add_histogram)
    undo += patch_attr(cls, "add_text", _wrap_add_text)
    encode = getattr(summary, "image", None)
    if encode is not None:  # add_figure renders and calls add_image, so it is captured through it
        undo += patch_attr(cls, "add_image", lambda original: _wrap_add_image(original, encode))
    return undo


def _patch_torch_writer(module: ModuleType) -> list[Undo]:
    from torch.utils.tensorboard import summary  # already imported by the writer module itself

    return _patch_writer_class(module.SummaryWriter, summary)


def _patch_tensorboardx_writer(module: ModuleType) -> list[Undo]:
    summary = sys.modules.get("tensorboardX.summary")
    return _patch_writer_class(module.SummaryWriter, summary)


PATCHER = Patcher(
    "tensorboard",
    {"torch.utils.tensorboard.writer": _patch_torch_writer, "tensorboardX.writer": _patch_tensorboardx_writer},
)


def sink_for(experiment: Any) -> _Sink | None:
    """The capture target of `experiment` while it is instrumented (the Lightning logger marks it)."""
    sinks: tuple[_Sink, ...] = PATCHER.targets
    for sink in sinks:
        if sink.experiment is experiment:
            return sink
    return None


class TensorBoardFramework(PatchingFramework):
    """The `tensorboard` framework plugin (one instance per run): every SummaryWriter's writes into the run."""

    patchers = (PATCHER,)
    sink_type = _Sink

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            description="Captures torch.utils.tensorboard and tensorboardX SummaryWriter calls",
            capabilities=["scalars", "hparams", "histograms", "images", "text"],
        )

    def released(self, sink: _Sink, experiment: Any) -> None:
        sink.fed_by_logger = False
        if sink.skipped_images:
            logger.info(
                "tracelet: %d TensorBoard images/texts of run %s were over the rate limit and not logged as "
                "artifacts (they are in the event files)", sink.skipped_images, experiment.id,
            )  # fmt: skip
