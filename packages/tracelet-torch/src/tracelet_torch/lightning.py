"""`TraceletLogger`: a Lightning logger that feeds a Tracelet run.

    from tracelet_torch.lightning import TraceletLogger
    trainer = Trainer(logger=TraceletLogger("my_experiment", project="my_project", backend="mlflow"))

Works with `lightning.pytorch` and with the older `pytorch_lightning` package (the class derives from the
first one installed; Lightning checks loggers by behaviour, so the same class serves both trainers).

Guarantees:

- **One run.** An active Tracelet experiment (`tracelet.start_logging`) is reused, and left running at the end
  of `fit` (the script that started it stops it). Otherwise the logger starts one with its arguments on
  first use and ends it at `finalize`: `"success"` → FINISHED, `"failed"` → FAILED, anything else
  (`"finished"` after a SIGTERM) → KILLED.
- **Metrics** are logged with the trainer's step (`log_metrics(metrics, step)`); values are handed over as
  they come (a device tensor is converted on the delivery side). **Hyperparameters** (`save_hyperparameters`,
  a dict or `argparse.Namespace`) are logged as parameters, nested dicts flattened to `a/b` keys.
- **Checkpoints**: files a `ModelCheckpoint` saves are logged as `checkpoint` artifacts (metadata: monitor,
  score, best) when `log_checkpoints` is True, or when it is None (default) and the run has artifacts on
  (`Experiment(artifacts=True)`, `enable_artifacts`). Each file is logged once per save.
- **No duplicates with TensorBoard capture**: while this logger feeds a run, SummaryWriters that Lightning's
  own loggers create are not captured into that run (your own writers still are).
- Only rank 0 logs (Lightning's `rank_zero_only`), as with Lightning's own loggers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

try:
    from lightning.pytorch.loggers.logger import Logger
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
except ImportError:  # only the standalone package is installed
    # The same API under its old name: an equivalent class, but not the one mypy saw first.
    from pytorch_lightning.loggers.logger import Logger  # type: ignore[assignment]
    from pytorch_lightning.utilities.rank_zero import rank_zero_only  # type: ignore[no-redef]

from tracelet.plugin import RunStatus
from tracelet_torch import tensorboard
from tracelet_torch._run import active_or_start, end_own
from tracelet_torch.lightning_capture import log_checkpoint
from tracelet_torch.params import flatten_params

FINALIZE_STATUS = {"success": RunStatus.FINISHED, "failed": RunStatus.FAILED}


class TraceletLogger(Logger):
    """A Lightning `Logger` that logs into a Tracelet experiment.

    :param exp_name: run name when the logger starts its own run (default: "lightning").
    :param project: project of its own run (default: the settings' project).
    :param backend: backend name(s) of its own run (default: the settings' backends).
    :param config: `start_logging` config dict of its own run.
    :param log_checkpoints: log ModelCheckpoint files as artifacts; None follows the run's `enable_artifacts`.
    :param prefix: prepended to every metric name (`prefix/name`).
    """

    def __init__(
        self,
        exp_name: str | None = None,
        project: str | None = None,
        backend: str | list[str] | None = None,
        config: dict[str, Any] | None = None,
        *,
        log_checkpoints: bool | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self._exp_name = exp_name
        self._project = project
        self._backend = backend
        self._config = config
        self._log_checkpoints = log_checkpoints
        self._prefix = prefix
        self._experiment: Any = None
        self._owns = False
        self._logged_checkpoints: set[tuple[str, float]] = set()

    # -- the run ---------------------------------------------------------------------------------------------------
    @property
    def experiment(self) -> Any:
        """The Tracelet experiment: the active one, else one this logger starts (and will end)."""
        if self._experiment is None or self._experiment.status != RunStatus.RUNNING:  # a finalized run: a new one
            self._experiment, self._owns = active_or_start(
                self._exp_name or "lightning", self._project, self._backend, self._config
            )
            sink = tensorboard.sink_for(self._experiment)
            if sink is not None:
                sink.fed_by_logger = True
        return self._experiment

    @property
    def experiment_if_started(self) -> Any:
        """The experiment this logger logs into, or None before its first use (starts nothing)."""
        return self._experiment

    @property
    def name(self) -> str:
        return self._experiment.name if self._experiment is not None else (self._exp_name or "lightning")

    @property
    def version(self) -> str:
        if self._experiment is not None:  # also after finalize: the run this logger logged into
            return str(self._experiment.id)
        # Lightning sets `rank` on the decorator function itself, which its typing does not declare.
        return str(self.experiment.id) if rank_zero_only.rank == 0 else ""  # type: ignore[attr-defined]

    # -- logging -----------------------------------------------------------------------------------------------------
    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        flat = flatten_params(params or {})
        if flat:
            self.experiment.log_params(flat)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        exp = self.experiment
        prefix = f"{self._prefix}/" if self._prefix else ""
        for key, value in metrics.items():
            exp.log_metric(f"{prefix}{key}", value, step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        exp = self.experiment
        wanted = self._log_checkpoints
        if wanted is None:
            config = getattr(exp, "config", None)
            wanted = bool(getattr(config, "enable_artifacts", False))
        if not wanted:
            return
        best = getattr(checkpoint_callback, "best_model_path", "") or ""
        paths = list(getattr(checkpoint_callback, "best_k_models", {}) or {})
        for extra in (getattr(checkpoint_callback, "last_model_path", ""), best):
            if extra and extra not in paths:
                paths.append(extra)
        for path in paths:
            if not os.path.isfile(path):
                continue
            key = (path, os.path.getmtime(path))
            if key in self._logged_checkpoints:
                continue
            self._logged_checkpoints.add(key)
            log_checkpoint(exp, path, checkpoint_callback, best=path == best)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is None:
            return
        if self._owns:
            end_own(self._experiment, FINALIZE_STATUS.get(status, RunStatus.KILLED))
