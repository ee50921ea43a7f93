"""A real `transformers.Trainer` (tiny BERT from a config, CPU, 6 steps) inside and outside Tracelet runs.

What the Trainer logged is taken from its own record, `trainer.state.log_history`, so "the points at the
right global steps" is checked against transformers itself.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tracelet
from tracelet.store import list_runs, open_run
from tracelet_testsupport.hf import Synthetic, trainer
from tracelet_testsupport.torch import config

SINGLE = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos"}


def expected_points(log_history: list[dict[str, Any]], flat: bool = False) -> dict[str, list[tuple[int, float]]]:
    """name -> [(step, value)] as the callback is to log transformers' own log history."""
    out: dict[str, list[tuple[int, float]]] = {}
    epochs: set[int] = set()
    for entry in log_history:
        step = entry["step"]
        for key, value in entry.items():
            if key == "step" or key in SINGLE:
                continue
            if key == "epoch":
                if step in epochs:
                    continue
                epochs.add(step)
            name = key if flat else ("eval/" + key[5:] if key.startswith("eval_") else "train/" + key)
            out.setdefault(name, []).append((step, float(value)))
    return out


def run_points(run_id: str, skip: str = "system/") -> dict[str, list[tuple[int, float]]]:
    metrics = open_run(run_id).metrics()
    return {k: [(m.step, m.value) for m in v] for k, v in metrics.items() if not k.startswith(skip)}


def assert_same(got: dict[str, list[tuple[int, float]]], want: dict[str, list[tuple[int, float]]]) -> None:
    """The same names, the same steps in the same order, each point once; values equal up to float32 rounding."""
    assert {k: [s for s, _ in v] for k, v in got.items()} == {k: [s for s, _ in v] for k, v in want.items()}
    for name, points in got.items():
        assert [v for _, v in points] == pytest.approx([v for _, v in want[name]], rel=1e-6), name


def assert_recorded(exp: Any, tr: Any) -> None:
    run = open_run(exp.id)
    assert run.status == "FINISHED"
    points = run_points(exp.id)
    want = expected_points(tr.state.log_history)
    assert_same(points, want)
    assert [s for s, _ in points["train/loss"]] == [2, 4, 6] and [s for s, _ in points["eval/loss"]] == [3, 6]
    final = tr.state.log_history[-1]
    summary = run.summary()
    assert summary["train_runtime"] == pytest.approx(final["train_runtime"])
    assert summary["train_loss"] == pytest.approx(final["train_loss"])
    params = run.params()
    # The keys of the native MLflow/W&B callbacks: TrainingArguments and the model config, merged.
    assert params["learning_rate"] == 1e-3 and params["max_steps"] == 6 and params["logging_steps"] == 2
    assert params["hidden_size"] == 16 and params["num_hidden_layers"] == 1 and params["model_type"] == "bert"
    assert params["model/num_parameters"] == tr.model.num_parameters()
    assert params["hub_token"] != tr.args.hub_token or tr.args.hub_token is None


def test_default_trainer_inside_a_run_records_points_params_checkpoints(tmp_path: Path) -> None:
    out = tmp_path / "out"
    opts = config(enable_artifacts=True, automagic_artifacts=True, artifact_watch_dirs=[str(tmp_path)],
                  artifact_watch_interval=0.2, artifact_watch_settle=0.2)  # fmt: skip
    exp = tracelet.start_logging("hf", backend=["local"], config=opts)
    tr = trainer(out, hub_token="hf_secret_token_value")  # report_to="none": transformers 5's default
    tr.train()
    exp.stop()
    assert_recorded(exp, tr)
    assert "hf_secret_token_value" not in (exp.run_dir / "events.bin").read_bytes().decode("latin-1")

    run = open_run(exp.id)
    arts = run.artifacts()
    checkpoints = [a for a in arts if a.type.value == "checkpoint"]
    # One artifact per save, the whole folder; torch.save capture and the folder watcher logged no file of it.
    assert sorted(a.name for a in checkpoints) == ["checkpoint-3", "checkpoint-6"]
    assert [a.name for a in arts if a.type.value != "config"] == [a.name for a in checkpoints]
    by_name = {a.name: a for a in checkpoints}
    meta = by_name["checkpoint-6"].metadata
    assert meta["global_step"] == 6 and meta["epoch"] == pytest.approx(tr.state.epoch)
    assert "best_metric" in meta and "best_model_checkpoint" in meta
    stored = {Path(f.artifact_path).name for f in by_name["checkpoint-3"].files}
    assert {"trainer_state.json", "optimizer.pt", "scheduler.pt", "config.json"} <= stored


def test_default_trainer_inside_a_run_reaches_a_real_mlflow_store(tmp_path: Path, sqlite_uri: str) -> None:
    from mlflow import MlflowClient

    opts = config(mlflow_tracking_uri=sqlite_uri, enable_artifacts=True)
    exp = tracelet.start_logging("hf-mlflow", project="hf", backend=["local", "mlflow"], config=opts)
    tr = trainer(tmp_path / "out")
    tr.train()
    report = exp.stop()
    assert report is not None and report.complete
    assert_recorded(exp, tr)

    client = MlflowClient(sqlite_uri)
    (ml_run,) = client.search_runs([client.get_experiment_by_name("hf").experiment_id])
    assert ml_run.info.status == "FINISHED"
    assert ml_run.data.params["learning_rate"] == "0.001" and ml_run.data.params["hidden_size"] == "16"
    history = client.get_metric_history(ml_run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == [2, 4, 6]
    assert [m.step for m in client.get_metric_history(ml_run.info.run_id, "train_runtime")] == [6]
    top = {f.path for f in client.list_artifacts(ml_run.info.run_id)}
    assert {"checkpoint-3", "checkpoint-6"} <= top


def test_report_to_tensorboard_gives_each_point_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tb"))  # transformers 5: no logging_dir argument
    exp = tracelet.start_logging("hf-tb", backend=["local"], config=config())
    tr = trainer(tmp_path / "out", report_to="tensorboard")
    tr.train()
    exp.stop()
    points = run_points(exp.id)
    # TensorBoardCallback writes the same train/* and eval/* tags: had its writer been captured too, every
    # point would be there twice.
    assert_same(points, expected_points(tr.state.log_history))
    from tracelet_testsupport.torch import event_scalars

    events = event_scalars(next((tmp_path / "tb").rglob("events.out.tfevents.*")).parent)
    assert [s for s, _, _ in events["train/loss"]] == [2, 4, 6]  # TensorBoard still has its own record


def test_flat_names_keep_the_mlflow_callback_keys(tmp_path: Path) -> None:
    from tracelet_torch.transformers import TraceletCallback

    exp = tracelet.start_logging("hf-flat", backend=["local"], config=config())
    tr = trainer(tmp_path / "out", callbacks=[TraceletCallback(flat_names=True)])
    tr.train()
    exp.stop()
    assert_same(run_points(exp.id), expected_points(tr.state.log_history, flat=True))
    assert sum(isinstance(cb, TraceletCallback) for cb in tr.callback_handler.callbacks) == 1  # not a second


def test_callback_without_an_active_run_owns_and_ends_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_torch.transformers import TraceletCallback

    monkeypatch.setenv("TRACELET_TRACK_SYSTEM", "false")
    callback = TraceletCallback(backend="local", log_checkpoints=True, log_model="end")
    tr = trainer(tmp_path / "my-finetune", callbacks=[callback])
    assert tracelet.get_active_experiment() is None
    tr.train()
    assert tracelet.get_active_experiment() is None  # ended and no longer active
    (run,) = list_runs()
    assert run.name == "my-finetune" and run.status == "FINISHED"
    assert_same(run_points(run.id), expected_points(tr.state.log_history))
    names = sorted(a.name for a in run.artifacts())
    assert names == ["checkpoint-3", "checkpoint-6", "model"]
    model = run.artifact("model")
    assert model.type.value == "model" and {"config.json", "model.safetensors"} <= {
        Path(f.artifact_path).name for f in model.files
    }


class Boom(Exception):
    pass


def test_train_raising_ends_an_own_run_failed_and_leaves_an_active_one_running(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from transformers import TrainerCallback

    from tracelet_torch.transformers import TraceletCallback

    class Explode(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:
                raise Boom("diverged")

    monkeypatch.setenv("TRACELET_TRACK_SYSTEM", "false")
    tr = trainer(tmp_path / "own", callbacks=[TraceletCallback(backend="local"), Explode()])
    with pytest.raises(Boom):
        tr.train()
    (run,) = list_runs()
    assert run.status == "FAILED"
    assert [s for s, _ in run_points(run.id)["train/loss"]] == [2]  # what was logged before is kept
    assert tracelet.get_active_experiment() is None

    exp = tracelet.start_logging("outer", backend=["local"], config=config())
    tr = trainer(tmp_path / "inner", callbacks=[Explode()])
    with pytest.raises(Boom):
        tr.train()
    assert exp.status.value == "RUNNING"  # the script's run: the script ends it
    exp.stop()


def test_report_to_tracelet_adds_the_callback_once(tmp_path: Path) -> None:
    from tracelet_torch.transformers import TraceletCallback

    exp = tracelet.start_logging("hf-report-to", backend=["local"], config=config())
    tr = trainer(tmp_path / "out", report_to="tracelet")
    assert sum(isinstance(cb, TraceletCallback) for cb in tr.callback_handler.callbacks) == 1
    tr.train()
    exp.stop()
    assert_same(run_points(exp.id), expected_points(tr.state.log_history))


def test_report_to_a_tracker_that_is_also_a_backend_warns_once(tmp_path: Path, sqlite_uri: str,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'native.db'}")
    exp = tracelet.start_logging("hf-twice", backend=["local", "mlflow"], config=config(mlflow_tracking_uri=sqlite_uri))
    tr = trainer(tmp_path / "out", report_to=["mlflow"], max_steps=2, eval_strategy="no", save_strategy="no")
    with caplog.at_level(logging.WARNING, logger="tracelet"):
        tr.train()
    exp.stop()
    warned = [r.getMessage() for r in caplog.records if "report_to" in r.getMessage()]
    assert len(warned) == 1 and "Drop 'mlflow' from report_to" in warned[0]


def test_predict_metrics_are_test_points(tmp_path: Path) -> None:
    exp = tracelet.start_logging("hf-predict", backend=["local"], config=config())
    tr = trainer(tmp_path / "out", max_steps=2, eval_strategy="no", save_strategy="no")
    tr.train()
    output = tr.predict(Synthetic(8, seed=2))
    exp.stop()
    points = run_points(exp.id)
    assert points["test/loss"] == [(2, pytest.approx(output.metrics["test_loss"]))]


@pytest.mark.parametrize("inside_a_run", [True, False], ids=["auto-capture-in-a-run", "callback-own-runs"])
def test_an_optuna_search_makes_one_grouped_run_per_trial(tmp_path: Path, inside_a_run: bool) -> None:
    """`Trainer.hyperparameter_search` with optuna: each trial is a run of its own with the trial's values (its
    training and the evaluate the search takes the objective from), all in one group; inside a script's run
    (auto-capture attaches the callback) that run stays the script's; trials are named by `hp_name` if set."""
    from transformers import Trainer

    from tracelet_testsupport.hf import Synthetic, tiny_bert, training_args
    from tracelet_torch.transformers import TraceletCallback

    exp = tracelet.start_logging("search", backend=["local"], config=config()) if inside_a_run else None
    tr = Trainer(model_init=tiny_bert, args=training_args(tmp_path / "out", max_steps=2, eval_strategy="no",
                                                          save_strategy="no", logging_steps=1),
                 train_dataset=Synthetic(16), eval_dataset=Synthetic(8, seed=1),
                 callbacks=None if inside_a_run else [TraceletCallback(backend="local", config=config())])  # fmt: skip
    best = tr.hyperparameter_search(
        direction="minimize", backend="optuna", n_trials=2,
        hp_space=lambda trial: {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)},
        hp_name=None if inside_a_run else (lambda trial: f"t{trial.number}"),
        compute_objective=lambda metrics: metrics["eval_loss"],
    )  # fmt: skip
    if exp is not None:
        exp.stop()
    trials = [r for r in list_runs() if exp is None or r.id != exp.id]
    assert len(trials) == 2 and all(r.status == "FINISHED" for r in trials)
    names = ["out-trial-0", "out-trial-1"] if inside_a_run else ["out-t0", "out-t1"]
    assert sorted(r.name for r in trials) == names
    assert len({r.tags()["hp_search"] for r in trials}) == 1  # one search: one group
    lrs = sorted(r.params()["trial/learning_rate"] for r in trials)
    assert lrs == sorted(r.params()["learning_rate"] for r in trials) and len(set(lrs)) == 2
    assert best.hyperparameters["learning_rate"] in lrs
    for r in trials:  # the trial's training and the objective's evaluate: one run
        metrics = open_run(r.id).metrics()
        assert [m.step for m in metrics["train/loss"]] == [1, 2] and [m.step for m in metrics["eval/loss"]] == [2]
        assert open_run(r.id).summary()["train_runtime"] > 0
    if exp is not None:
        assert open_run(exp.id).status == "FINISHED" and "hp_search" not in open_run(exp.id).tags()


def test_nothing_imports_transformers_or_accelerate_until_the_script_does(python_env: dict[str, str]) -> None:
    code = (
        "import sys, tracelet, tracelet_torch, tracelet_torch.hf_capture\n"
        "exp = tracelet.start_logging('lazy', backend=['local'], config={'track_system': False})\n"
        "exp.stop()\n"
        "print(sorted(m for m in ('transformers', 'accelerate') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_trainer_made_inside_a_run_logs_nothing_once_that_run_ended(tmp_path: Path) -> None:
    exp = tracelet.start_logging("short", backend=["local"], config=config())
    tr = trainer(tmp_path / "out", max_steps=2, eval_strategy="no", save_strategy="no")
    exp.stop()
    tracelet.stop_logging()
    tr.train()  # its callback's run is over and none is active: the script asked for no run
    assert [r.id for r in list_runs()] == [exp.id]
    assert run_points(exp.id) == {}
