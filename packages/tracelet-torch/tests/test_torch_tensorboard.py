"""TensorBoard capture with a real torch SummaryWriter (and tensorboardX), read back from the event files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import tracelet
from tracelet.store import open_run
from tracelet_testsupport.torch import config, event_scalars, store_points
from tracelet_torch import _hooks
from tracelet_torch import tensorboard as tb

ORIGINAL_ADD_SCALAR = SummaryWriter.add_scalar


def train_steps(writer: SummaryWriter, steps: int, prefix: str = "train", base_walltime: float = 1_700_000_000.0):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    for step in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        writer.add_scalar(f"{prefix}/loss", loss.detach(), step, walltime=base_walltime + step)


def test_training_scalars_reach_the_store_with_step_and_walltime_and_event_files_are_unchanged(tmp_path: Path) -> None:
    before = SummaryWriter(tmp_path / "tb-before")  # created before start(): its class is patched at start
    exp = tracelet.start_logging("tb", backend="local", config=config())
    after = SummaryWriter(tmp_path / "tb-after")
    train_steps(before, 6, "before")
    train_steps(after, 4, "after", base_walltime=1_800_000_000.0)
    after.add_scalar("no_walltime", 3.5, 7)
    before.close()
    after.close()
    tracelet.stop_logging()

    points = store_points(exp.id)
    events = {**event_scalars(tmp_path / "tb-before"), **event_scalars(tmp_path / "tb-after")}
    assert set(points) == set(events) == {"before/loss", "after/loss", "no_walltime"}
    for tag in ("before/loss", "after/loss"):
        ours = points[tag]
        assert [s for s, _, _ in ours] == [s for s, _, _ in events[tag]]
        assert ours == events[tag]  # the same steps, float32 values and walltimes, exactly
    assert points["before/loss"][0][2] == 1_700_000_000.0 and points["after/loss"][3][2] == 1_800_000_003.0
    ((step, value, stamp),) = points["no_walltime"]
    assert (step, value) == (7, 3.5) and stamp == pytest.approx(events["no_walltime"][0][2], abs=0.5)


def test_patches_are_removed_at_stop_and_never_stack_over_five_runs(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path / "tb")
    runs = []
    for i in range(5):
        exp = tracelet.start_logging(f"run{i}", backend="local", config=config())
        patched = SummaryWriter.add_scalar
        assert patched is not ORIGINAL_ADD_SCALAR and patched.__wrapped__ is ORIGINAL_ADD_SCALAR  # one layer
        writer.add_scalar("x", float(i), i)
        tracelet.stop_logging()
        assert SummaryWriter.add_scalar is ORIGINAL_ADD_SCALAR
        assert not _hooks.finder_installed() and tb.PATCHER.targets == ()
        writer.add_scalar("x", 100.0 + i, 100 + i)  # after stop: the run gets nothing
        runs.append(exp.id)
    writer.close()
    for i, run_id in enumerate(runs):
        assert [p[:2] for p in store_points(run_id)["x"]] == [(i, float(i))]
    assert [s for s, _, _ in event_scalars(tmp_path / "tb")["x"]] == [0, 100, 1, 101, 2, 102, 3, 103, 4, 104]


def test_scalars_hparams_histograms_images_and_text(tmp_path: Path) -> None:
    exp = tracelet.start_logging(
        "media", backend="local", config=config(tensorboard_image_interval=3600, tensorboard_image_max=2)
    )
    writer = SummaryWriter(tmp_path / "tb")
    writer.add_scalars("acc", {"train": 0.5, "val": 0.4}, 3, walltime=1_700_000_100.0)
    writer.add_hparams({"lr": 0.01, "layers": 3, "opt": "sgd"}, {"hparam/best_acc": 0.9}, global_step=2)
    values = torch.arange(10, dtype=torch.float32)
    writer.add_histogram("weights", values, 4)
    writer.add_image("sample", torch.rand(3, 8, 8), 1)
    writer.add_image("sample", torch.rand(3, 8, 8), 2)  # same tag within the interval: rate-limited
    writer.add_text("notes", "**hello** tracelet", 5)
    writer.add_image("other", torch.rand(3, 4, 4), 6)  # over image_max (2 media in all): rate-limited
    writer.close()
    tracelet.stop_logging()

    points = store_points(exp.id)
    assert points["acc/train"] == [(3, 0.5, 1_700_000_100.0)] and points["acc/val"] == [(3, 0.4, 1_700_000_100.0)]
    assert [(s, v) for s, v, _ in points["hparam/best_acc"]] == [(2, 0.9)]  # once, not again via the inner write
    stats = {k.split("/")[1]: v[0][1] for k, v in points.items() if k.startswith("weights/")}
    assert stats == pytest.approx({"min": 0.0, "max": 9.0, "mean": 4.5, "std": float(values.std(unbiased=False)),
                                   "count": 10.0})  # fmt: skip
    assert all(v[0][0] == 4 for k, v in points.items() if k.startswith("weights/"))
    run = open_run(exp.id)
    assert run.params() == {"lr": 0.01, "layers": 3, "opt": "sgd"}
    arts = {(a.name, a.type.value, a.version) for a in run.artifacts()}
    assert arts == {("sample", "image", "v1"), ("notes", "report", "v1")}
    image = run.artifact("sample")
    png = Path(image.files[0].local_path).read_bytes()
    assert png.startswith(b"\x89PNG") and image.metadata["step"] == 1 and image.metadata["tag"] == "sample"
    assert Path(run.artifact("notes").files[0].local_path).read_text() == "**hello** tracelet"
    acc = event_scalars(tmp_path / "tb")  # the writer's own files: hparams metric still written by it
    assert any(tag == "hparam/best_acc" for tag in acc) or any(
        "hparam/best_acc" in event_scalars(p) for p in (tmp_path / "tb").iterdir() if p.is_dir()
    )


def test_tensorboardx_writer_is_captured(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter as XWriter

    exp = tracelet.start_logging("tbx", backend="local", config=config())
    writer = XWriter(str(tmp_path / "tbx"))
    for step in range(3):
        writer.add_scalar("x/loss", 1.0 / (step + 1), step, walltime=1_700_000_000.0 + step)
    writer.add_scalars("x/acc", {"val": 0.5}, 4, walltime=1_700_000_004.0)
    writer.add_hparams({"lr": 0.3}, {"hp/best": 0.7}, None, 6)  # tensorboardX: global_step is the 4th argument
    writer.add_histogram("x/w", torch.arange(4.0), 5)
    writer.close()
    tracelet.stop_logging()
    points = store_points(exp.id)
    assert points["x/acc/val"] == [(4, 0.5, 1_700_000_004.0)]
    assert [p[:2] for p in points["hp/best"]] == [(6, 0.7)] and open_run(exp.id).params() == {"lr": 0.3}
    assert [p[:2] for p in points["x/w/max"]] == [(5, 3.0)]
    assert store_points(exp.id)["x/loss"] == [(s, pytest.approx(1.0 / (s + 1)), 1_700_000_000.0 + s) for s in range(3)]
    assert [(s, round(v, 6)) for s, v, _ in event_scalars(tmp_path / "tbx")["x/loss"]] == [
        (s, round(1.0 / (s + 1), 6)) for s in range(3)
    ]


def test_automagic_frameworks_without_tensorboard_captures_nothing(tmp_path: Path) -> None:
    exp = tracelet.start_logging("off", backend="local", config=config(automagic_frameworks="pytorch"))
    assert SummaryWriter.add_scalar is ORIGINAL_ADD_SCALAR
    writer = SummaryWriter(tmp_path / "tb")
    writer.add_scalar("loss", 1.0, 0)
    writer.close()
    exp.log_metric("direct", 1.0, 0)
    tracelet.stop_logging()
    assert set(store_points(exp.id)) == {"direct"}


def test_a_value_the_run_cannot_take_is_skipped_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exp = tracelet.start_logging("bad", backend="local", config=config())
    writer = SummaryWriter(tmp_path / "tb")
    writer.add_scalar("ok", 1.0, 0)
    writer.add_scalar("ok", 2.0, 2.5)  # TensorBoard writes a fractional step; a run's steps are integers
    writer.add_scalar("ok", 3.0, 3.5)
    writer.add_scalar("ok", 4.0, 4)
    writer.close()
    tracelet.stop_logging()
    assert [p[:2] for p in store_points(exp.id)["ok"]] == [(0, 1.0), (4, 4.0)]
    assert len(event_scalars(tmp_path / "tb")["ok"]) == 4
    assert sum("TensorBoard scalar 'ok' not captured" in r.getMessage() for r in caplog.records) == 1


def test_start_imports_no_torch_and_a_writer_imported_after_start_is_captured(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    script = textwrap.dedent(
        """
        import json, sys
        import tracelet
        exp = tracelet.start_logging("lazy", backend="local",
                                     config={"track_system": False, "track_git": False, "track_env": False})
        heavy = sorted(m for m in ("torch", "tensorboard", "tensorboardX", "lightning", "pytorch_lightning")
                       if m in sys.modules)
        from torch.utils.tensorboard import SummaryWriter
        w = SummaryWriter("tb")
        w.add_scalar("late", 2.5, 3, walltime=1700000000.0)
        w.close()
        tracelet.stop_logging()
        from tracelet.store import open_run
        points = [(m.step, m.value, m.timestamp) for m in open_run(exp.id).metrics()["late"]]
        from tracelet_torch import _hooks
        print(json.dumps({"heavy": heavy, "points": points, "finder": _hooks.finder_installed(),
                          "restored": not hasattr(SummaryWriter.add_scalar, "__wrapped__")}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=python_env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "points": [[3, 2.5, 1700000000.0]], "finder": False, "restored": True}


def test_histogram_statistics_stay_on_the_tensors_device() -> None:
    # A "meta" tensor has a device but no data: any read of a value on this thread would raise. The statistics
    # come back as 0-d tensors on that device, which the core converts on the delivery side (as for CUDA).
    stats = tb.histogram_stats(torch.empty(10, device="meta"))
    assert stats["count"] == 10
    assert all(isinstance(stats[k], torch.Tensor) and stats[k].device.type == "meta" and stats[k].ndim == 0
               for k in ("min", "max", "mean", "std"))  # fmt: skip
    assert tb.histogram_stats([1.0, 3.0]) == {"min": 1.0, "max": 3.0, "mean": 2.0, "std": 1.0, "count": 2}
    assert tb.histogram_stats(torch.empty(0)) == {"count": 0}


def test_two_runs_at_once_each_get_the_points_written_while_they_are_active(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path / "tb")
    first = tracelet.Experiment("first", backend=["local"]).start()
    writer.add_scalar("x", 1.0, 1)
    second = tracelet.Experiment("second", backend=["local"]).start()
    writer.add_scalar("x", 2.0, 2)
    first.stop()
    assert SummaryWriter.add_scalar is not ORIGINAL_ADD_SCALAR  # still patched: the second run is active
    writer.add_scalar("x", 3.0, 3)
    second.stop()
    assert SummaryWriter.add_scalar is ORIGINAL_ADD_SCALAR and not _hooks.finder_installed()
    writer.add_scalar("x", 4.0, 4)
    writer.close()
    assert [p[:2] for p in store_points(first.id)["x"]] == [(1, 1.0), (2, 2.0)]
    assert [p[:2] for p in store_points(second.id)["x"]] == [(2, 2.0), (3, 3.0)]


def test_add_figure_becomes_an_image_artifact(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    exp = tracelet.start_logging("figure", backend="local", config=config(tensorboard_image_interval=0))
    writer = SummaryWriter(tmp_path / "tb")
    for step in range(2):
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.plot([0, 1], [step, 1 - step])
        writer.add_figure("curve", fig, step)  # rendered by TensorBoard, then written through add_image
    writer.close()
    tracelet.stop_logging()
    run = open_run(exp.id)
    versions = [(a.version, a.metadata["step"]) for a in run.artifacts() if a.name == "curve"]
    assert versions == [("v1", 0), ("v2", 1)]  # interval 0: every figure is kept
    assert Path(run.artifact("curve", "v2").files[0].local_path).read_bytes().startswith(b"\x89PNG")
