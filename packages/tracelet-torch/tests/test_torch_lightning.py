"""A real Lightning `Trainer.fit` (tiny model, CPU, 2 epochs) with `TraceletLogger`, and with capture only.

What Lightning logged is read from a `CSVLogger` (or the TensorBoard event files) attached to the same trainer,
so "exactly the points Lightning logged" is checked against Lightning's own record.
"""

from __future__ import annotations

import csv
import importlib
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tracelet
from tracelet.store import open_run
from tracelet_testsupport.torch import config, event_scalars, store_points

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)

PACKAGES = ["lightning.pytorch", "pytorch_lightning"]

# Importing Lightning costs seconds of CPU, and every pytest-xdist worker collects every module: the tests import
# it (and `tracelet_torch.lightning`, which imports it) themselves, and share one worker, so one process pays.
pytestmark = pytest.mark.xdist_group("lightning")


def make_module(pl: Any) -> Any:
    class TinyModule(pl.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 8, optim: dict | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return TinyModule(optim={"momentum": 0.0, "nesterov": False})


def loaders() -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g), torch.randn(32, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8)


def fit(pl: Any, tmp_path: Path, loggers: Any, **kwargs: Any) -> Any:
    torch.manual_seed(0)
    checkpoint = pl.callbacks.ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="val_loss", save_top_k=1, save_last=True
    )
    trainer = pl.Trainer(
        max_epochs=2, accelerator="cpu", devices=1, logger=loggers, callbacks=[checkpoint], log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kwargs,
    )  # fmt: skip
    train, val = loaders()
    trainer.fit(make_module(pl), train, val)
    return checkpoint


def csv_points(logger: Any) -> list[tuple[str, int, float]]:
    """Every point Lightning logged, as its CSVLogger wrote them (a metric may repeat at one step: `epoch`)."""
    with open(Path(logger.log_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return sorted((k, int(r["step"]), float(v)) for r in rows for k, v in r.items() if k != "step" and v != "")


def as_list(points: dict[str, list[tuple[int, float, float]]]) -> list[tuple[str, int, float]]:
    return sorted((name, step, value) for name, pts in points.items() for step, value, _ in pts)


@pytest.mark.parametrize("package", PACKAGES)
def test_tracelet_logger_logs_hparams_metrics_checkpoints_and_ends_its_run(tmp_path: Path, package: str) -> None:
    from tracelet_torch.lightning import TraceletLogger

    pl = importlib.import_module(package)
    logger = TraceletLogger("lit", project="lit-proj", backend="local", config=config(enable_artifacts=True))
    reference = pl.loggers.CSVLogger(tmp_path / "csv", name="ref")
    checkpoint = fit(pl, tmp_path, [logger, reference])

    exp = logger.experiment_if_started
    assert exp is not None and exp.status.value == "FINISHED"  # finalize("success") ended the run it started
    assert tracelet.get_active_experiment() is None
    run = open_run(exp.id)
    assert run.status == "FINISHED" and run.name == "lit" and run.project == "lit-proj"
    assert logger.name == "lit" and logger.version == exp.id
    assert {k: v for k, v in run.params().items() if not k.startswith("optimizer/")} == {
        "lr": 0.05, "hidden": 8, "optim/momentum": 0.0, "optim/nesterov": False,
    }  # fmt: skip
    points = store_points(exp.id)
    assert as_list(points) == csv_points(reference)
    assert {"train_loss", "val_loss", "epoch"} <= set(points)
    stored = {a.name: a for a in run.artifacts() if a.type.value == "checkpoint"}
    assert {Path(checkpoint.best_model_path).name, "last.ckpt"} <= set(stored)
    assert all(name == "last.ckpt" or name.startswith("epoch=") for name in stored)
    assert len(run.artifact("last.ckpt", "v2").files) == 1  # saved after each epoch: one version per save
    best = stored[Path(checkpoint.best_model_path).name]
    assert best.metadata["monitor"] == "val_loss" and best.metadata["best"] is True
    assert best.metadata["score"] == pytest.approx(float(checkpoint.best_model_score))


def test_tracelet_logger_reuses_the_active_experiment_and_leaves_it_running(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    from tracelet_torch.lightning import TraceletLogger

    exp = tracelet.start_logging("outer", backend="local", config=config())
    logger = TraceletLogger(log_checkpoints=False)
    fit(pl, tmp_path, logger)
    assert logger.experiment_if_started is exp and exp.status.value == "RUNNING"
    exp.log_metric("after_fit", 1.0, 0)
    tracelet.stop_logging()
    points = store_points(exp.id)
    assert "train_loss" in points and "after_fit" in points
    assert not [a for a in open_run(exp.id).artifacts() if a.type.value == "checkpoint"]  # log_checkpoints=False


@pytest.mark.parametrize("package", PACKAGES)
def test_plain_trainer_inside_a_run_is_captured_through_tensorboard(tmp_path: Path, package: str) -> None:
    pl = importlib.import_module(package)
    exp = tracelet.start_logging("plain", backend="local", config=config(enable_artifacts=True))
    tb_logger = pl.loggers.TensorBoardLogger(tmp_path / "tb", name="plain")
    checkpoint = fit(pl, tmp_path, tb_logger)
    tracelet.stop_logging()
    run = open_run(exp.id)
    assert run.params() == {"lr": 0.05, "hidden": 8, "optim/momentum": 0.0, "optim/nesterov": False}
    assert sum(1 for e in run.events() if e[0] == "p") == 1  # once, though Lightning's logger calls its base's too
    saved = [a for a in run.artifacts() if a.type.value == "checkpoint"]
    assert {Path(checkpoint.best_model_path).name, "last.ckpt"} <= {a.name for a in saved}
    assert [a.version for a in saved if a.name == "last.ckpt"] == ["v1", "v2"]  # one per save (2 epochs)
    events = event_scalars(tb_logger.log_dir)
    points = store_points(exp.id)
    assert {"train_loss", "val_loss", "epoch"} <= set(points)
    assert {k: [(s, v) for s, v, _ in pts] for k, pts in points.items()} == {
        k: [(s, v) for s, v, _ in pts] for k, pts in events.items()
    }  # exactly what Lightning wrote, once each, with its steps and walltimes
    assert all([t for _, _, t in points[k]] == [t for _, _, t in events[k]] for k in points)


def test_tracelet_logger_and_capture_together_give_no_duplicates(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    from tracelet_torch.lightning import TraceletLogger

    exp = tracelet.start_logging("both", backend="local", config=config(enable_artifacts=True))
    tb_logger = pl.loggers.TensorBoardLogger(tmp_path / "tb", name="both")
    reference = pl.loggers.CSVLogger(tmp_path / "csv", name="ref")
    fit(pl, tmp_path, [TraceletLogger(), tb_logger, reference])
    tracelet.stop_logging()
    run = open_run(exp.id)
    assert run.params() == {"lr": 0.05, "hidden": 8, "optim/momentum": 0.0, "optim/nesterov": False}
    assert sum(1 for e in run.events() if e[0] == "p") == 1  # hparams once: by the logger, not again via TensorBoard
    assert [a.version for a in run.artifacts() if a.name == "last.ckpt"] == ["v1", "v2"]  # not 4: no duplicates
    points = store_points(exp.id)
    assert as_list(points) == csv_points(reference)
    written = [p for p in as_list(event_scalars(tb_logger.log_dir)) if p[0] != "hp_metric"]  # its own placeholder
    assert written == csv_points(reference)  # TensorBoard still got them all


def test_a_writer_the_script_creates_in_a_hook_is_captured_while_lightnings_own_are_not(tmp_path: Path) -> None:
    import lightning.pytorch as pl
    from torch.utils.tensorboard import SummaryWriter

    from tracelet_torch.lightning import TraceletLogger

    class OwnWriterModule(pl.LightningModule):
        """Writes its own TensorBoard scalars from a writer it creates in a hook (the trainer's loops are above)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 1)

        def on_train_start(self) -> None:
            self.own_writer = SummaryWriter(tmp_path / "own")

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            self.own_writer.add_scalar("own/batch", float(batch_idx), self.global_step)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    class MyTensorBoardLogger(pl.loggers.TensorBoardLogger):  # a subclass is still Lightning's own writer
        pass

    exp = tracelet.start_logging("own-writer", backend="local", config=config())
    tb_logger = MyTensorBoardLogger(tmp_path / "tb", name="own")
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, logger=[TraceletLogger(), tb_logger], log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(OwnWriterModule(), loaders()[0])
    tracelet.stop_logging()
    points = store_points(exp.id)
    assert [(s, v) for s, v, _ in points["own/batch"]] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    assert [s for s, _, _ in points["train_loss"]] == [0, 1, 2, 3]  # once each: the TensorBoardLogger's not again
    assert "hp_metric" not in points  # Lightning's own writer stays out of a run the TraceletLogger feeds


def test_a_trainer_with_a_subclass_of_tracelet_logger_leaves_checkpoints_to_it(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    from tracelet_torch.lightning import TraceletLogger

    class ProjectLogger(TraceletLogger):  # a project's own flavour, defined outside tracelet_torch
        pass

    exp = tracelet.start_logging("subclass", backend="local", config=config(enable_artifacts=True))
    fit(pl, tmp_path, [ProjectLogger(), pl.loggers.TensorBoardLogger(tmp_path / "tb")])
    tracelet.stop_logging()
    # each save once, by the logger: the lightning plugin's capture does not log the same files again
    assert [a.version for a in open_run(exp.id).artifacts() if a.name == "last.ckpt"] == ["v1", "v2"]


@pytest.mark.parametrize("package", PACKAGES)
def test_trainer_without_a_logger_inside_a_run_records_every_self_log_series_once(tmp_path: Path,
                                                                                  package: str) -> None:  # fmt: skip
    pl = importlib.import_module(package)
    # What Lightning hands a logger, from the same seeded fit with a CSVLogger and no run around it.
    reference = pl.loggers.CSVLogger(tmp_path / "csv", name="ref")
    fit(pl, tmp_path / "ref", reference)
    assert tracelet.get_active_experiment() is None
    want = csv_points(reference)

    exp = tracelet.start_logging("no-logger", backend="local", config=config())
    fit(pl, tmp_path / "run", False)  # Trainer(logger=False): upstream's examples train this way
    tracelet.stop_logging()
    got = as_list(store_points(exp.id))
    assert [(n, s) for n, s, _ in got] == [(n, s) for n, s, _ in want]  # every series, its steps, each point once
    assert [v for _, _, v in got] == pytest.approx([v for _, _, v in want])
    assert {"train_loss", "val_loss", "epoch"} <= {n for n, _, _ in got}


def test_a_logger_tracelet_does_not_read_still_gets_the_run_every_point_once(tmp_path: Path) -> None:
    import lightning.pytorch as pl

    exp = tracelet.start_logging("csv-only", backend="local", config=config())
    csv_logger = pl.loggers.CSVLogger(tmp_path / "csv", name="only")
    fit(pl, tmp_path, csv_logger)
    tracelet.stop_logging()
    assert as_list(store_points(exp.id)) == csv_points(csv_logger)


def test_without_a_run_nothing_is_recorded_and_lightning_is_unpatched(tmp_path: Path) -> None:
    import lightning.pytorch as pl
    from lightning.pytorch.trainer.connectors.logger_connector.logger_connector import _LoggerConnector

    exp = tracelet.start_logging("gone", backend="local", config=config())
    tracelet.stop_logging()
    assert not hasattr(_LoggerConnector.log_metrics, "__tracelet_wrapped__")  # removed at the last stop
    fit(pl, tmp_path, False)
    assert store_points(exp.id) == {}
