"""`TraceletCallback`: a Hugging Face `transformers.TrainerCallback` that feeds a Tracelet run.

    from tracelet_torch.transformers import TraceletCallback
    trainer = Trainer(model, args, train_dataset=..., callbacks=[TraceletCallback("finetune", backend="mlflow")])

Inside an active run nothing is needed at all: the `transformers` framework plugin
(`tracelet_torch.hf_capture`) attaches one to every `Trainer`. Importing this module also makes
`TrainingArguments(report_to="tracelet")` work (see "report_to" below).

Guarantees:

- **One run.** An active Tracelet experiment is reused and never ended here. With none active, the callback
  starts one at train begin (named `exp_name`, else `args.run_name` when set, else the output folder's name)
  and ends it at train end: FINISHED, or FAILED when `Trainer.train` raises (importing this module wraps
  `Trainer.train` so that a failure reaches the callback; transformers' own integrations leave such runs
  RUNNING). Hyperparameter search: each trial is a run of its own (`<name>-<trial>`, the trial named by
  `hp_name`, else `trial-<n>`), tagged `hp_search=<group>` and `trial=<trial name>`, with the trial's
  parameters as params (`trial/<name>`); it stays open after its training for the evaluate the search takes
  its objective from, and ends when the next trial begins or `hyperparameter_search` returns (wrapped too).
- **Rank 0 only**: nothing is logged unless `state.is_world_process_zero` (the `rank0` policy's process).
- **Params** at train begin: the model config and `TrainingArguments` merged into one dict with the keys the
  native MLflow and W&B callbacks use (`learning_rate`, `num_train_epochs`, ..., the model config's
  `hidden_size`, ...; arguments win on a clash, as there), `model/num_parameters`, and `peft_config` for a
  PEFT model. Tokens are masked by `TrainingArguments.to_dict` and secrets redacted by Tracelet.
- **Metrics** at `state.global_step`: `on_log` values as `train/<name>`, `eval/<name>` (`eval_` prefix) and
  `test/<name>` (`test_` prefix, from `predict`), the layout W&B, ClearML and TensorBoard use;
  `flat_names=True` keeps the flat keys of `report_to="mlflow"` (`loss`, `eval_loss`). The one-off values
  of the end of training (`train_runtime`, `train_samples_per_second`, `train_steps_per_second`,
  `train_loss`, `total_flos`) are single values (`Experiment.log_summary`: W&B summary, ClearML single
  values, MLflow a point at the last step). `epoch`, repeated by every evaluation at the same step, is
  logged once per step. Values that are not numbers are skipped with one warning.
- **Checkpoints**: each save logs one `checkpoint` artifact holding the whole checkpoint folder, named after
  it (`checkpoint-<step>`), metadata `global_step`, `epoch`, `best_metric`, `best_model_checkpoint`, when
  `log_checkpoints` is True, or None (default) and the run has artifacts on. The folder is then left
  alone by the `torch.save` capture and the folder watcher (`Experiment.skip_capture`), so nothing is logged
  twice. `log_model="end"` logs the final model (`save_pretrained`) as a `model` artifact at train end.
- **No duplicates**: while the callback feeds a run, the SummaryWriter of transformers' `TensorBoardCallback`
  is not captured into it. When `report_to` names `mlflow`, `wandb` or `clearml` and that tracker is also a
  backend of the run, one warning says which entry to drop (it would make a second, unrelated run).
- Nothing raises into training: a failure is logged once per kind and skipped.

**report_to="tracelet"**: transformers has no public registry of reporting integrations; importing this
module adds `"tracelet"` to its internal table `transformers.integrations.integration_utils
.INTEGRATION_TO_CALLBACK` (the one `report_to` is resolved against). That table is not a public API and may
change; `callbacks=[TraceletCallback()]` is the supported way.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback

import tracelet
from tracelet.plugin import RunStatus
from tracelet_torch import tensorboard
from tracelet_torch._hooks import WarnOnce, patch_attr
from tracelet_torch._run import end_own

logger = logging.getLogger("tracelet")

#: What the native W&B callback keeps as summary values instead of points (transformers' own list).
SINGLE_VALUES = frozenset(
    {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos"}
)
#: report_to entries that make a second run in a tracker Tracelet may already deliver to.
TRACKER_INTEGRATIONS = ("mlflow", "wandb", "clearml")


def metric_name(key: str, flat: bool) -> str:
    """`eval_loss` -> `eval/loss`, `test_acc` -> `test/acc`, `loss` -> `train/loss` (the W&B/ClearML layout)."""
    if flat:
        return key
    if key.startswith("eval_"):
        return "eval/" + key[5:]
    if key.startswith("test_"):
        return "test/" + key[5:]
    return "train/" + key


def trainer_params(args: Any, model: Any) -> dict[str, Any]:
    """The model config and TrainingArguments as the native MLflow/W&B callbacks merge them, plus the model's
    parameter count and a PEFT config when there is one."""
    combined: dict[str, Any] = {}
    config = getattr(model, "config", None)
    if config is not None:
        combined.update(config if isinstance(config, dict) else config.to_dict())
    combined.update(args.to_dict())
    peft = getattr(model, "peft_config", None)
    if peft:
        combined["peft_config"] = {
            str(name): (cfg.to_dict() if hasattr(cfg, "to_dict") else cfg) for name, cfg in dict(peft).items()
        }
    count = _num_parameters(model)
    if count is not None:
        combined["model/num_parameters"] = count
    return combined


def _num_parameters(model: Any) -> int | None:
    if model is None:
        return None
    counter = getattr(model, "num_parameters", None)
    if callable(counter):
        return int(counter())
    parameters = getattr(model, "parameters", None)
    return sum(int(p.numel()) for p in parameters()) if callable(parameters) else None


def _number(value: Any) -> bool:
    if isinstance(value, (int, float)):  # bool included
        return True
    return getattr(value, "ndim", None) == 0 and hasattr(value, "item")  # a 0-d tensor or numpy scalar


class TraceletCallback(TrainerCallback):
    """A `TrainerCallback` that logs a `Trainer`'s params, metrics and checkpoints into a Tracelet run.

    :param exp_name: run name when the callback starts its own run (default: `args.run_name` when set, else
        the output folder's name).
    :param project: project of its own run (default: the settings' project).
    :param backend: backend name(s) of its own run (default: the settings' backends).
    :param config: `start_logging` config dict of its own run.
    :param log_checkpoints: log each checkpoint folder as a `checkpoint` artifact; None follows the run's
        `enable_artifacts`.
    :param log_model: "end" (or True) logs the trained model as a `model` artifact at train end; False: not.
    :param flat_names: keep transformers' flat metric keys (`loss`, `eval_loss`: what `report_to="mlflow"`
        logs) instead of `train/loss`, `eval/loss`.
    """

    def __init__(
        self,
        exp_name: str | None = None,
        project: str | None = None,
        backend: str | list[str] | None = None,
        config: dict[str, Any] | None = None,
        *,
        log_checkpoints: bool | None = None,
        log_model: bool | str = False,
        flat_names: bool = False,
    ) -> None:
        if log_model not in (False, True, "end", "false", "none", None):
            raise ValueError(f"log_model must be 'end', True or False, got {log_model!r}")
        self._exp_name = exp_name
        self._project = project
        self._backend = backend
        self._config = config
        self._log_checkpoints = log_checkpoints
        self._log_model = log_model in (True, "end")
        self._flat = flat_names
        self._experiment: Any = None
        self._bound: Any = None  # the run the capture plugin attached this callback for
        self._owns = False
        self._trial: str | None = None  # which trial the current run is for (None: no search)
        self._trials = 0  # trials begun, numbering those hp_name does not name
        self._group = uuid.uuid4().hex[:12]  # one hyperparameter search: the trials' shared tag
        self._epoch_step: tuple[int, float] | None = None
        self.warn = WarnOnce()
        self._warned: set[tuple[str, str]] = set()  # (run, report_to entry): warned about once

    # -- the run ---------------------------------------------------------------------------------------------
    @property
    def experiment(self) -> Any:
        """The Tracelet experiment this callback logs into (None before train begin and after its own ends)."""
        return self._experiment

    def bind(self, experiment: Any) -> None:
        """Log into `experiment` (the capture plugin's run) rather than the active one; it is never ended here."""
        self._bound = experiment

    def _run_name(self, args: Any) -> str:
        if self._exp_name:
            return self._exp_name
        output = os.path.basename(os.path.normpath(str(args.output_dir or "trainer_output")))
        run_name = getattr(args, "run_name", None)
        if run_name and os.path.normpath(str(run_name)) != os.path.normpath(str(args.output_dir)):
            return str(run_name)
        return output or "transformers"

    def _begin(self, args: Any, state: Any) -> Any | None:
        params = dict(state.trial_params) if state.trial_params else None
        trial = state.trial_name or (repr(sorted(params.items(), key=str)) if params else None)
        if self._experiment is not None and self._experiment.status == RunStatus.RUNNING and trial == self._trial:
            return self._experiment
        if self._trial is not None:
            self._end(RunStatus.FINISHED)  # the previous trial's run, kept open for the search's own evaluate
        self._trial = trial
        bound = self._bound if self._bound is not None and self._bound.status == RunStatus.RUNNING else None
        reuse = bound or tracelet.get_active_experiment()
        if reuse is None and self._bound is not None:
            self._experiment = None  # attached by the capture plugin for a run that has ended: the script asked
            return None  # for no run of its own, so nothing is logged
        if trial is None and reuse is not None:
            self._experiment, self._owns = reuse, False
        else:
            label = None
            if trial is not None:
                label = state.trial_name or f"trial-{self._trials}"
                self._trials += 1
            self._experiment, self._owns = self._start(self._run_name(args), reuse, label), True
            if label is not None:
                self._experiment.set_tags({"hp_search": self._group, "trial": label})
                if params:
                    self._experiment.log_params({f"trial/{k}": v for k, v in params.items()})
        sink = tensorboard.sink_for(self._experiment)
        if sink is not None:
            sink.fed_by_logger = True
        return self._experiment

    def _current(self, args: Any, state: Any) -> Any:
        """The run to log into now: this callback's while it runs, else as at train begin (an `evaluate` or
        `predict` outside `train`)."""
        exp = self._experiment
        if exp is not None and exp.status == RunStatus.RUNNING:
            return exp
        return self._begin(args, state)

    def _start(self, name: str, beside: Any, trial: str | None) -> Any:
        if trial is not None:
            name = f"{name}-{trial}"
        if beside is None:
            return tracelet.start_logging(name, project=self._project, backend=self._backend, config=self._config)
        # A trial inside a run the script started: a run of its own with the same project, backends and config,
        # not made the active one (the script's run stays active).
        from tracelet import Experiment

        backend = self._backend if self._backend is not None else list(beside.backend_names)
        return Experiment(
            name,
            config=self._config if self._config is not None else beside.config,
            backend=[backend] if isinstance(backend, str) else backend,
            project=self._project or beside.project,
            settings=beside.settings,
            options=self._config if self._config is not None else dict(beside.options or {}),
        ).start()

    def _end(self, status: RunStatus) -> None:
        exp, self._experiment = self._experiment, None
        if exp is None:
            return
        sink = tensorboard.sink_for(exp)
        if sink is not None and not self._owns:
            sink.fed_by_logger = False  # the script's run goes on: its writers are captured again
        if self._owns and exp.status == RunStatus.RUNNING:
            end_own(exp, status)

    def search_done(self) -> None:
        """Called by the `Trainer.hyperparameter_search` wrapper when the search returned: the last trial's run
        ends FINISHED (a trial's run stays open after its training for the evaluate the search computes its
        objective with)."""
        try:
            if self._trial is not None:
                self._end(RunStatus.FINISHED)
            self._trial = None
        except Exception as exc:
            self.warn("end of a search", exc)

    def train_failed(self, error: BaseException) -> None:
        """Called by the `Trainer.train` wrapper when training raised: an own run ends FAILED (KILLED on Ctrl-C)."""
        status = RunStatus.KILLED if isinstance(error, KeyboardInterrupt) else RunStatus.FAILED
        try:
            self._end(status)
        except Exception as exc:
            self.warn("end of a failed run", exc)

    # -- callback events -------------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        try:
            exp = self._begin(args, state)
        except Exception as exc:
            self.warn("run start", exc)
            return
        if exp is None:
            return
        try:
            exp.log_params(trainer_params(args, model))
        except Exception as exc:
            self.warn("Trainer params", exc)
        self._warn_report_to(args, exp)

    def _warn_report_to(self, args: Any, exp: Any) -> None:
        report_to = args.report_to or []
        report_to = [report_to] if isinstance(report_to, str) else list(report_to)
        names = set(getattr(exp, "backend_names", ()) or ())
        for entry in TRACKER_INTEGRATIONS:
            if entry in report_to and entry in names and (exp.id, entry) not in self._warned:
                self._warned.add((exp.id, entry))
                logger.warning(
                    "tracelet: TrainingArguments(report_to=%r) includes %r, and %s is a backend of this Tracelet "
                    "run: transformers' own callback makes a second, unrelated %s run. Drop %r from report_to; "
                    "Tracelet already records this Trainer there",
                    report_to, entry, entry, entry, entry,
                )  # fmt: skip

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        exp = self._current(args, state)
        if exp is None:
            return
        step = int(state.global_step)
        summary: dict[str, Any] = {}
        for key, value in logs.items():
            if not _number(value):
                self.warn(f"Trainer log {key!r} (not a number)", TypeError(type(value).__name__))
                continue
            if key in SINGLE_VALUES:
                summary[key] = value
                continue
            if key == "epoch":
                if self._epoch_step == (step, value):
                    continue  # every evaluation repeats the epoch at the same step
                self._epoch_step = (step, value)
            try:
                exp.log_metric(metric_name(key, self._flat), value, step)
            except Exception as exc:
                self.warn(f"Trainer metric {key!r}", exc)
        if summary:
            try:
                exp.log_summary(summary, step)
            except Exception as exc:
                self.warn("Trainer summary values", exc)

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                   **kwargs: Any) -> None:  # fmt: skip
        if not state.is_world_process_zero or not metrics:
            return
        exp = self._current(args, state)
        if exp is None:
            return
        for key, value in metrics.items():
            if _number(value):
                name = key if self._flat or key.startswith("test_") else f"test_{key}"
                exp.log_metric(metric_name(name, self._flat), value, int(state.global_step))

    # -- checkpoints -----------------------------------------------------------------------------------------
    def _checkpoints_on(self) -> bool:
        if self._log_checkpoints is not None:
            return self._log_checkpoints
        config = getattr(self._experiment, "config", None)
        return bool(getattr(config, "enable_artifacts", False))

    def _announce_save(self, args: Any, state: Any, control: Any) -> None:
        """Before the Trainer writes a checkpoint: tell automatic capture to leave its folder to us."""
        if control.should_save and state.is_world_process_zero and self._experiment is not None:
            if self._checkpoints_on():
                try:
                    self._experiment.skip_capture(self._checkpoint_dir(args, state, exists=False))
                except Exception as exc:
                    self.warn("checkpoint folder", exc)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._announce_save(args, state, control)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._announce_save(args, state, control)

    def _checkpoint_dir(self, args: Any, state: Any, exists: bool = True) -> str:
        name = f"checkpoint-{state.global_step}"
        direct = os.path.join(args.output_dir, name)
        if not exists or os.path.isdir(direct):
            return direct
        # A hyperparameter-search trial saves under <output_dir>/<trial run name>/.
        for entry in sorted(os.scandir(args.output_dir), key=lambda e: e.stat().st_mtime, reverse=True):
            candidate = os.path.join(entry.path, name)
            if entry.is_dir() and os.path.isdir(candidate):
                return candidate
        return direct

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self._experiment is None or not self._checkpoints_on():
            return
        try:
            folder = self._checkpoint_dir(args, state)
            if not os.path.isdir(folder):
                return
            exp = self._experiment
            name = os.path.basename(folder)
            artifact = exp.create_artifact(name, "checkpoint", description="transformers Trainer checkpoint")
            artifact.add_dir(folder)
            artifact.metadata.update(
                {
                    "source": "transformers",
                    "global_step": int(state.global_step),
                    "epoch": state.epoch,
                    "best_metric": state.best_metric,
                    "best_model_checkpoint": state.best_model_checkpoint,
                }
            )
            exp.log_artifact(artifact)
        except Exception as exc:
            self.warn("Trainer checkpoint", exc)

    # -- the end ---------------------------------------------------------------------------------------------
    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self._experiment is None:
            return
        if self._log_model and model is not None:
            try:
                self._log_final_model(model, kwargs.get("processing_class"), state)
            except Exception as exc:
                self.warn("final model", exc)
        if self._trial is None:
            self._end(RunStatus.FINISHED)
        # A trial's run stays open: hyperparameter_search evaluates it next for the objective. The next trial
        # or the end of the search ends it (the `hyperparameter_search` wrapper).

    def _log_final_model(self, model: Any, processing_class: Any, state: Any) -> None:
        exp = self._experiment
        with tempfile.TemporaryDirectory(prefix="tracelet-hf-model-") as tmp:
            model.save_pretrained(tmp)
            if processing_class is not None and hasattr(processing_class, "save_pretrained"):
                processing_class.save_pretrained(tmp)
            artifact = exp.create_artifact("model", "model", description="transformers model at train end")
            artifact.add_dir(tmp)
            artifact.metadata.update({"source": "transformers", "global_step": int(state.global_step)})
            exp.log_artifact(artifact)  # the files are snapshotted before this returns


# -- Trainer.train: a failure reaches the callbacks ----------------------------------------------------------------
def _wrap_train(original: Any) -> Any:
    def train(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            for callback in _tracelet_callbacks(self):
                callback.train_failed(exc)
            raise

    return train


def _wrap_search(original: Any) -> Any:
    def hyperparameter_search(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            for callback in _tracelet_callbacks(self):
                callback.train_failed(exc)
            raise
        for callback in _tracelet_callbacks(self):
            callback.search_done()
        return result

    return hyperparameter_search


def _tracelet_callbacks(trainer: Any) -> list[TraceletCallback]:
    handler = getattr(trainer, "callback_handler", None)
    return [cb for cb in list(getattr(handler, "callbacks", None) or []) if isinstance(cb, TraceletCallback)]


def _install() -> None:
    """Once per process: wrap `Trainer.train` and register `report_to="tracelet"` (see the module docstring)."""
    from transformers import Trainer

    patch_attr(Trainer, "train", _wrap_train)  # marked: never stacked; kept for the process (it only re-raises)
    patch_attr(Trainer, "hyperparameter_search", _wrap_search)  # ends the last trial's run (kept likewise)
    try:
        from transformers.integrations import integration_utils

        integration_utils.INTEGRATION_TO_CALLBACK.setdefault("tracelet", TraceletCallback)
    except (ImportError, AttributeError) as exc:  # an internal table: may move in a later transformers
        logger.info("tracelet: report_to='tracelet' is not available with this transformers: %s", exc)


def has_callback(trainer: Any) -> bool:
    """Whether `trainer` already has a TraceletCallback (or a subclass)."""
    return bool(_tracelet_callbacks(trainer))


_install()

__all__ = ["TraceletCallback", "metric_name", "trainer_params"]
