"""A real `accelerate` training loop (tiny model, CPU) with `TraceletTracker`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import tracelet
from tracelet.store import list_runs, open_run
from tracelet_testsupport.torch import config


def train_loop(accelerator: Any, steps: int = 20) -> list[float]:
    """A plain accelerate loop: the losses it logged, in order."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    data = torch.utils.data.TensorDataset(torch.randn(steps * 4, 4), torch.randn(steps * 4, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    losses = []
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x), y)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        accelerator.log({"train_loss": loss.item(), "opt": {"lr": 0.05, "momentum": {"beta": 0.9}}}, step=step)
    return losses


def test_tracker_owns_its_run_params_every_point_and_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from accelerate import Accelerator

    from tracelet_torch.accelerate import TraceletTracker

    monkeypatch.setenv("TRACELET_TRACK_SYSTEM", "false")
    accelerator = Accelerator(log_with=TraceletTracker("acc-run", project="acc", backend="local"), cpu=True)
    accelerator.init_trackers("ignored", config={"lr": 0.05, "model": {"layers": 2, "act": "relu"}})
    exp = accelerator.get_tracker("tracelet", unwrap=True)
    losses = train_loop(accelerator)
    accelerator.log({"note": "converged", "report": "line one\nline two"}, step=19)
    accelerator.end_training()

    run = open_run(exp.id)
    assert run.status == "FINISHED" and run.name == "acc-run" and run.project == "acc"
    assert run.params() == {"lr": 0.05, "model": {"layers": 2, "act": "relu"}}  # nested kept
    metrics = run.metrics()
    assert [(m.step, m.value) for m in metrics["train_loss"]] == [(i, pytest.approx(v)) for i, v in enumerate(losses)]
    assert len(metrics["opt/lr"]) == len(losses) and [m.value for m in metrics["opt/momentum/beta"]][0] == 0.9
    assert run.tags() == {"note": "converged"}
    (report,) = [a for a in run.artifacts() if a.name == "report"]
    assert report.type.value == "report"
    assert Path(report.files[0].local_path).read_text() == "line one\nline two"
    assert tracelet.get_active_experiment() is None


def test_log_with_name_reuses_the_active_run_and_leaves_it_running(tmp_path: Path) -> None:
    from accelerate import Accelerator

    exp = tracelet.start_logging("outer", backend="local", config=config(enable_artifacts=True))
    import tracelet_torch.accelerate  # noqa: F401  (registers log_with="tracelet")

    accelerator = Accelerator(log_with="tracelet", cpu=True)
    accelerator.init_trackers("proj", config={"seed": 1})
    losses = train_loop(accelerator, steps=5)
    image = np.linspace(0, 1, 3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)  # CHW floats
    accelerator.get_tracker("tracelet").log_images({"samples": [image, image]}, step=4)
    accelerator.end_training()
    assert exp.status.value == "RUNNING"  # not the tracker's run: the script ends it
    tracelet.stop_logging()
    run = open_run(exp.id)
    assert [m.value for m in run.metrics()["train_loss"]] == pytest.approx(losses)
    assert run.params()["seed"] == 1
    (images,) = [a for a in run.artifacts() if a.name == "samples"]
    assert images.type.value == "image" and sorted(f.artifact_path for f in images.files) == [
        "step-4-0.png", "step-4-1.png",
    ]  # fmt: skip
    assert Path(images.files[0].local_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r.id for r in list_runs()] == [exp.id]


def test_bad_values_are_skipped_with_one_warning_and_the_rest_logged(caplog: pytest.LogCaptureFixture) -> None:
    from accelerate import Accelerator

    from tracelet_torch.accelerate import TraceletTracker

    exp = tracelet.start_logging("bad", backend="local", config=config())
    accelerator = Accelerator(log_with=TraceletTracker(), cpu=True)
    accelerator.init_trackers("p")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(3):
            accelerator.log({"loss": float(step), "weird": object()}, step=step)
    tracelet.stop_logging()
    assert [m.value for m in open_run(exp.id).metrics()["loss"]] == [0.0, 1.0, 2.0]
    assert sum("'weird'" in r.getMessage() for r in caplog.records) == 1


def test_accelerate_imported_inside_a_run_knows_log_with_tracelet(python_env: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import tracelet\n"
        "exp = tracelet.start_logging('imp', backend=['local'], config={'track_system': False})\n"
        "from accelerate import Accelerator\n"  # no import of tracelet_torch.accelerate by the script
        "acc = Accelerator(log_with='tracelet', cpu=True)\n"
        "acc.init_trackers('p')\n"
        "acc.log({'loss': 0.5}, step=3)\n"
        "acc.end_training()\n"
        "exp.stop()\n"
        "from tracelet.store import open_run\n"
        "print([(m.step, m.value) for m in open_run(exp.id).metrics()['loss']])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[(3, 0.5)]"
