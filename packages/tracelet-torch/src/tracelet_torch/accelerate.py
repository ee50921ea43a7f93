"""`TraceletTracker`: an accelerate experiment tracker that feeds a Tracelet run.

    from accelerate import Accelerator
    from tracelet_torch.accelerate import TraceletTracker
    accelerator = Accelerator(log_with=TraceletTracker("finetune", backend="mlflow"))
    accelerator.init_trackers("my_project", config={"lr": 1e-3, "model": {"layers": 2}})
    ...
    accelerator.log({"loss": loss, "lr": lr}, step=step)
    accelerator.end_training()

`Accelerator(log_with="tracelet")` works too once this module is imported, or while a Tracelet run is active
(the `transformers` framework plugin registers the class): accelerate's public `register_tracker_class`
then instantiates it with `init_trackers`' project name as its first argument, so that name becomes the run
name of a run the tracker starts.

Guarantees:

- **Main process only** (`main_process_only = True`; accelerate calls it on the main process alone).
- **One run.** An active Tracelet experiment is reused and left running; otherwise `start()` (called by
  `init_trackers`) starts one with the constructor's arguments, and `end_training()` ends it FINISHED.
  A run the tracker did not start is never ended by it.
- `init_trackers(config=...)` -> params, nested dicts kept (each backend shows them its way).
- `log(values, step)` -> metrics at `step` (None: the run's current iteration); a dict value becomes
  `key/sub` metrics (nested as deep as it goes); a string becomes a tag `key`, or a `report` artifact
  `key.md` when longer than `TAG_MAX` characters or multi-line; anything else that is not a number is skipped
  with one warning. Every number reaches the run.
- `log_images(values, step)` -> one `image` artifact per key (`key`), one PNG per image (`step-<step>-<i>.png`),
  from numpy arrays (HW, HWC or CHW; floats in [0, 1] or integers in [0, 255]) or PIL images.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

from accelerate.tracking import LOGGER_TYPE_TO_CLASS, GeneralTracker, on_main_process, register_tracker_class

from tracelet.plugin import RunStatus
from tracelet_torch._hooks import WarnOnce
from tracelet_torch._run import active_or_start, end_own

logger = logging.getLogger("tracelet")

TAG_MAX = 250  # longer strings are kept as report artifacts: trackers cap tag values (MLflow: 8000, W&B: 64)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "value"


class TraceletTracker(GeneralTracker):
    """An accelerate `GeneralTracker` logging into a Tracelet run.

    :param run_name: run name when the tracker starts its own run (default: "accelerate").
    :param project: project of its own run (default: the settings' project).
    :param backend: backend name(s) of its own run (default: the settings' backends).
    :param config: `start_logging` config dict of its own run.
    """

    name = "tracelet"
    requires_logging_directory = False
    main_process_only = True

    def __init__(
        self,
        run_name: str | None = None,
        *,
        project: str | None = None,
        backend: str | list[str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.run_name = run_name or "accelerate"
        self._project = project
        self._backend = backend
        self._config = config
        self._experiment: Any = None
        self._owns = False
        self.warn = WarnOnce()

    @property
    def tracker(self) -> Any:
        """The Tracelet experiment (`accelerator.get_tracker("tracelet", unwrap=True)`)."""
        return self._run()

    def _run(self) -> Any:
        if self._experiment is None or self._experiment.status != RunStatus.RUNNING:
            self._experiment, self._owns = active_or_start(self.run_name, self._project, self._backend, self._config)
        return self._experiment

    @on_main_process
    def start(self) -> None:
        self._run()

    @on_main_process
    def store_init_configuration(self, values: dict[str, Any]) -> None:
        """`init_trackers(config=...)`: the values as params (nested dicts kept).

        :param values: the config dict (or an object with `__dict__`, e.g. an argparse Namespace).
        """
        if not isinstance(values, Mapping):
            values = vars(values)
        self._run().log_params(dict(values))

    @on_main_process
    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """Numbers -> metrics at `step`; dicts -> `key/sub` metrics; strings -> tags or report artifacts.

        :param values: what `accelerator.log` was given.
        :param step: the step (None: the run's current iteration).
        """
        exp = self._run()
        self._log(exp, values, step, "")

    def _log(self, exp: Any, values: Mapping[str, Any], step: int | None, prefix: str) -> None:
        for key, value in values.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                self._log(exp, value, step, f"{name}/")
            elif isinstance(value, str):
                self._text(exp, name, value, step)
            else:
                try:
                    exp.log_metric(name, value, step)
                except TypeError as exc:
                    self.warn(f"accelerate value {name!r}", exc)

    def _text(self, exp: Any, name: str, text: str, step: int | None) -> None:
        if len(text) <= TAG_MAX and "\n" not in text:
            exp.set_tags({name: text})
            return
        with tempfile.TemporaryDirectory(prefix="tracelet-accelerate-") as tmp:
            path = os.path.join(tmp, f"{_safe(name)}.md")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            artifact = exp.create_artifact(_safe(name), "report", description=f"accelerate text {name}")
            artifact.add_file(path, artifact_path=os.path.basename(path))
            artifact.metadata.update({"source": "accelerate", "key": name, "step": step})
            exp.log_artifact(artifact)

    @on_main_process
    def log_images(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """One `image` artifact per key, holding its images as PNGs.

        :param values: key -> an image or a list of images (numpy arrays or PIL images).
        :param step: the step, kept in the artifact's metadata and file names.
        """
        exp = self._run()
        for key, images in values.items():
            items = images if isinstance(images, (list, tuple)) else [images]
            try:
                with tempfile.TemporaryDirectory(prefix="tracelet-accelerate-") as tmp:
                    artifact = exp.create_artifact(_safe(key), "image", description=f"accelerate images {key}")
                    for i, image in enumerate(items):
                        filename = f"step-{step if step is not None else 0}-{i}.png"
                        path = os.path.join(tmp, filename)
                        with open(path, "wb") as f:
                            f.write(_png(image))
                        artifact.add_file(path, artifact_path=filename)
                    artifact.metadata.update({"source": "accelerate", "key": key, "step": step, "count": len(items)})
                    exp.log_artifact(artifact)
            except Exception as exc:
                self.warn(f"accelerate images {key!r}", exc)

    @on_main_process
    def finish(self) -> None:
        """`accelerator.end_training()`: ends the run only when this tracker started it."""
        exp, self._experiment = self._experiment, None
        if exp is not None and self._owns and exp.status == RunStatus.RUNNING:
            end_own(exp, RunStatus.FINISHED)


def _png(image: Any) -> bytes:
    """PNG bytes of a PIL image or a numpy array (HW, HWC or CHW; float in [0, 1] or uint8)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        import numpy as np

        array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
            array = np.transpose(array, (1, 2, 0))  # CHW -> HWC
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.dtype.kind == "f":
            array = np.clip(array * 255.0, 0, 255)
        image = Image.fromarray(array.astype(np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


if LOGGER_TYPE_TO_CLASS.get("tracelet") is not TraceletTracker:  # (re-registering warns)
    register_tracker_class(TraceletTracker)  # `Accelerator(log_with="tracelet")`: accelerate's public registration
