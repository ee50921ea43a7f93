"""Automagic on a realistic training script: argparse, a dataclass config, a model, an optimizer with an LR
scheduler, a dataset, and torch.save of a state dict and a checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import attrs
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tracelet
from tracelet import Experiment
from tracelet.core.run import hyperparams
from tracelet.store import open_run
from tracelet_testsupport.torch import config, store_points
from tracelet_torch import framework

ORIGINAL_SAVE = torch.save
ORIGINAL_OPT_INIT = torch.optim.Optimizer.__init__


@dataclasses.dataclass
class Augment:
    flip: bool = True
    crop: int = 24


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 3
    hidden: int = 16
    run_note: str = "baseline"
    augment: Augment = dataclasses.field(default_factory=Augment)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--optimizer", default="sgd")
    return parser.parse_args(["--lr", "0.2", "--batch-size", "4"])


def training_script(out: Path) -> str:
    """What a user writes; tracelet appears only in the Experiment lines."""
    args = parse_args()
    cfg = TrainConfig()
    seed = 7
    torch.manual_seed(seed)
    features = torch.randn(24, 4)
    labels = torch.tensor([0, 1, 2] * 8)
    dataset = TensorDataset(features, labels)
    dataset.targets = labels  # torchvision-style label list: class counts without loading samples
    loader = DataLoader(dataset, batch_size=args.batch_size)
    big_table = list(range(1000))  # data, not a setting  # noqa: F841
    exp = Experiment("automagic", backend=["local"], automagic=True, automagic_artifacts=True, artifacts=True)
    exp.start()  # automagic: the locals above are captured here
    model = nn.Sequential(nn.Linear(4, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    exp.capture_model(model)
    exp.capture_dataset(dataset)
    for epoch in range(cfg.epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            exp.log_metric("loss", loss.detach(), epoch)
        scheduler.step()
    torch.save(model.state_dict(), out / "weights.pt")
    torch.save({"model_state_dict": model.state_dict(), "epoch": cfg.epochs}, out / "checkpoint.pt")
    exp.stop()
    return exp.id


def test_realistic_script_with_automagic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"TRACELET_TRACK_GIT": "false", "TRACELET_TRACK_ENV": "false"}.items():
        monkeypatch.setenv(key, value)
    run_id = training_script(tmp_path)
    run = open_run(run_id)
    params = run.params()
    # argparse and the dataclass config, flattened; scalars; no tensors, datasets or big containers
    assert {k: params[k] for k in ("args/lr", "args/batch_size", "args/optimizer", "seed")} == {
        "args/lr": 0.2, "args/batch_size": 4, "args/optimizer": "sgd", "seed": 7,
    }  # fmt: skip
    assert {k: v for k, v in params.items() if k.startswith("cfg/")} == {
        "cfg/epochs": 3, "cfg/hidden": 16, "cfg/run_note": "baseline", "cfg/augment/flip": True, "cfg/augment/crop": 24,
    }  # fmt: skip
    assert params["loader/batch_size"] == 4  # the torch detector: a DataLoader's settings
    assert not [k for k in params if k.split("/")[0] in ("features", "labels", "big_table", "exp")]
    assert not [k for k in params if k.startswith("dataset/") and k.split("/")[1] in ("tensors", "targets")]
    # the optimizer created during the run: its param groups
    optimizer = {k.removeprefix("optimizer/"): v for k, v in params.items() if k.startswith("optimizer/")}
    assert {k: optimizer[k] for k in ("type", "lr", "momentum", "weight_decay", "nesterov", "dampening")} == {
        "type": "SGD", "lr": 0.2, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False, "dampening": 0,
    }  # fmt: skip
    assert all(isinstance(v, (bool, int, float, str, list)) for v in optimizer.values())
    # the model and the dataset, through the pytorch plugin
    assert params["model/class"] == "torch.nn.modules.container.Sequential"
    assert params["model/parameters"] == params["model/trainable_parameters"] == 4 * 16 + 16 + 16 * 3 + 3
    assert params["model/size_bytes"] == 4 * (4 * 16 + 16 + 16 * 3 + 3)
    assert (params["model/dtypes"], params["model/device"], params["model/modules"]) == ("float32", "cpu", 3)
    assert params["model/layers/0"] == "Linear (80 params)"
    assert (params["dataset/size"], params["dataset/classes"]) == (24, 3)
    assert (params["dataset/sample/0/shape"], params["dataset/sample/0/dtype"]) == ("4", "float32")
    assert params["dataset/sample/1/shape"] == "scalar" and params["dataset/class_counts/0"] == 8
    # LR scheduler changes as metrics at the scheduler's step: 0.2 at creation, halved each epoch
    assert [(s, v) for s, v, _ in store_points(run_id)["lr"]] == [(0, 0.2), (1, 0.1), (2, 0.05), (3, 0.025)]
    assert [s for s, _, _ in store_points(run_id)["loss"]] == [0] * 6 + [1] * 6 + [2] * 6
    # torch.save: a state dict → weights, a checkpoint dict → checkpoint; the files written as torch wrote them
    arts = {a.name: a for a in run.artifacts()}
    assert arts["weights.pt"].type.value == "weights" and arts["checkpoint.pt"].type.value == "checkpoint"
    stored = torch.load(arts["checkpoint.pt"].files[0].local_path)
    assert stored["epoch"] == 3 and set(stored["model_state_dict"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert (tmp_path / "weights.pt").read_bytes() == Path(arts["weights.pt"].files[0].local_path).read_bytes()
    # everything unpatched after stop
    assert torch.save is ORIGINAL_SAVE and torch.optim.Optimizer.__init__ is ORIGINAL_OPT_INIT
    assert framework.OPTIM.targets == () and framework.SAVE.targets == ()


def test_without_automagic_nothing_beyond_metrics_is_captured(tmp_path: Path) -> None:
    exp = tracelet.start_logging("plain", backend="local", config=config())
    assert torch.save is ORIGINAL_SAVE and torch.optim.Optimizer.__init__ is ORIGINAL_OPT_INIT
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    optimizer.step()
    scheduler.step()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    info = exp.capture_model(model)  # explicit calls work whatever the flags say
    tracelet.stop_logging()
    run = open_run(exp.id)
    assert info["parameters"] == 3 and run.params()["model/parameters"] == 3
    assert not [k for k in run.params() if k.startswith("optimizer")] and "lr" not in store_points(exp.id)
    assert run.artifacts() == []


def test_capture_hyperparams_rules() -> None:
    @attrs.define
    class Opt:
        lr: float = 0.1
        _secret_state: int = 0

    @dataclasses.dataclass
    class Deep:
        a: dict = dataclasses.field(default_factory=lambda: {"b": {"c": {"d": {"e": 1}}}})

    found = hyperparams.collect(
        {
            "lr": 0.01, "name": "x" * 10, "long": "x" * 600, "flag": True, "_private": 1, "self": object(),
            "sizes": [1, 2, 3], "many": list(range(100)), "opt": Opt(), "ns": argparse.Namespace(a=1, b="s"),
            "table": {"k": 1, "nested": {"z": 2}}, "tensor": torch.zeros(3), "module": torch, "fn": len,
            "cls": int, "none": None, "deep": Deep(), "model": nn.Linear(2, 2),
        },
        max_value_length=500, ignore_names={"self"},
    )  # fmt: skip
    assert found == {
        "lr": 0.01, "name": "x" * 10, "flag": True, "sizes": [1, 2, 3], "opt/lr": 0.1, "ns/a": 1, "ns/b": "s",
        "table/k": 1, "table/nested/z": 2,
    }  # fmt: skip


def test_capture_hyperparams_finds_an_optimizer_in_the_callers_frame() -> None:
    exp = tracelet.start_logging("hp", backend="local", config=config())
    model = nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, betas=(0.9, 0.99), weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    epochs = 5  # noqa: F841 - read from the frame by capture_hyperparams
    found = exp.capture_hyperparams()
    tracelet.stop_logging()
    assert found["epochs"] == 5 and found["opt/type"] == "Adam" and found["opt/lr"] == 3e-4
    assert found["opt/betas"] == [0.9, 0.99] and found["opt/weight_decay"] == 0.01
    assert found["scheduler/type"] == "CosineAnnealingLR" and found["scheduler/T_max"] == 10
    assert not [k for k in found if k.startswith(("model", "exp"))]
    assert open_run(exp.id).params()["opt/betas"] == [0.9, 0.99]
    del model, scheduler


def test_torch_save_in_a_folder_named_tracelet_is_captured_and_tracelets_own_saves_are_not(tmp_path: Path) -> None:
    # A project checkout called "tracelet-demo" is the user's folder: who calls torch.save decides, not the path.
    project = tmp_path / "tracelet-demo"
    project.mkdir()
    exp = Experiment("save", backend=["local"], artifacts=True, automagic_artifacts=True).start()
    model = nn.Linear(2, 1)
    torch.save(model.state_dict(), project / "weights.pt")
    own = exp.create_artifact("classifier", "model")
    own.add_model(model)  # Tracelet saves the state dict itself: not a second, captured artifact
    exp.log_artifact(own)
    exp.stop()
    arts = sorted((a.name, a.type.value) for a in open_run(exp.id).artifacts())
    assert [a for a in arts if a[0] != "environment"] == [("classifier", "model"), ("weights.pt", "weights")]
