"""What tracelet-torch adds: `SummaryWriter.add_scalar` with capture, a training step with `log_metric`, `start()`.

    python benchmarks/torch_overhead.py [--batches 60] [--starts 7]

Everything is measured in this one run, side by side, as medians over interleaved batches (the machines here
are small and noisy):

- `add_scalar` on one real `torch.utils.tensorboard.SummaryWriter` inside a run, captured, against the very
  same writer's unpatched method (`__wrapped__`) in alternating batches of 200 calls. Target: capture adds
  <= 5% to TensorBoard's own cost (~24 us a call).
- a training step (forward, backward, SGD step) of a small MLP on CPU, with `exp.log_metric("loss", loss)` of
  the CPU tensor loss, against the same step without logging, in alternating batches of 50 steps. Target:
  <= 1% added.
- `start()` in a fresh interpreter with tracelet-torch installed: with every framework plugin against none
  (`automagic_frameworks` naming no plugin), once without torch imported (the plugins must import nothing)
  and once after `import torch` and `torch.utils.tensorboard` (the patches are installed at start).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ADD_BATCH = 200
STEP_BATCH = 50

START_SCRIPT = """
import json, sys, time
if sys.argv[1] == "torch":
    import torch, torch.utils.tensorboard
import tracelet
config = {"dir": sys.argv[3], "track_system": False, "track_git": False, "track_env": False}
if sys.argv[2] == "none":
    config["automagic_frameworks"] = "no-such-framework"
t0 = time.perf_counter()
exp = tracelet.start_logging("bench-start", backend="local", config=config)
t1 = time.perf_counter()
loaded = sorted(m for m in ("torch", "tensorboard", "lightning") if m in sys.modules)
tracelet.stop_logging()
print(json.dumps({"start": t1 - t0, "loaded": loaded}))
"""


def add_scalar(batches: int, root: str) -> tuple[list[float], list[float]]:
    from torch.utils.tensorboard import SummaryWriter

    import tracelet

    writer = SummaryWriter(f"{root}/tb")
    exp = tracelet.start_logging("bench-tb", backend="local", config={"dir": root, "track_system": False})
    captured = writer.add_scalar
    plain = SummaryWriter.add_scalar.__wrapped__  # TensorBoard's own method, no capture
    assert plain is not SummaryWriter.add_scalar, "capture is not installed"
    clock = time.perf_counter_ns
    ours, base = [], []
    step = 0
    for _ in range(batches):
        t0 = clock()
        for _ in range(ADD_BATCH):
            plain(writer, "loss", 0.5, step)
            step += 1
        t1 = clock()
        for _ in range(ADD_BATCH):
            captured("loss", 0.5, step)
            step += 1
        t2 = clock()
        base.append((t1 - t0) / ADD_BATCH / 1000)
        ours.append((t2 - t1) / ADD_BATCH / 1000)
    tracelet.stop_logging()
    writer.close()
    assert exp.report is not None and exp.report.events >= batches * ADD_BATCH
    return ours, base


def training_step(batches: int, root: str) -> tuple[list[float], list[float]]:
    import torch
    from torch import nn

    import tracelet

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    exp = tracelet.start_logging("bench-step", backend="local", config={"dir": root, "track_system": False})
    log = exp.log_metric

    def step() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(100):  # warm-up
        step()
    clock = time.perf_counter_ns
    ours, base = [], []
    i = 0
    for _ in range(batches):
        t0 = clock()
        for _ in range(STEP_BATCH):
            step()
        t1 = clock()
        for _ in range(STEP_BATCH):
            log("loss", step().detach(), i)
            i += 1
        t2 = clock()
        base.append((t1 - t0) / STEP_BATCH / 1000)
        ours.append((t2 - t1) / STEP_BATCH / 1000)
    tracelet.stop_logging()
    return ours, base


def start_cost(starts: int, root: str) -> dict[str, dict[str, float | list[str]]]:
    # Bytecode cached as an installed wheel has it (pip compiles on install), in a private cache folder: with
    # PYTHONDONTWRITEBYTECODE every start would mostly measure compiling sources. The first round warms it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(root, "pycache")
    results: dict[str, dict[str, list]] = {}
    for round_ in range(starts + 1):
        for torch_mode in ("no-torch", "torch"):
            for plugins in ("all", "none"):
                out = subprocess.run(
                    [sys.executable, "-c", START_SCRIPT, torch_mode, plugins, root],
                    capture_output=True, text=True, check=True, env=env,
                )  # fmt: skip
                if round_ == 0:
                    continue
                data = json.loads(out.stdout.strip().splitlines()[-1])
                entry = results.setdefault(f"{torch_mode}/{plugins}", {"start": [], "loaded": []})
                entry["start"].append(data["start"])
                entry["loaded"] = data["loaded"]
    return {k: {"start": statistics.median(v["start"]), "loaded": v["loaded"]} for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--starts", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        ours, base = add_scalar(args.batches, root)
        a_ours, a_base = statistics.median(ours), statistics.median(base)
        print(f"add_scalar: TensorBoard alone {a_base:.1f} us, with capture {a_ours:.1f} us "
              f"-> capture adds {100 * (a_ours / a_base - 1):+.1f}% (target <= 5%)")  # fmt: skip
        ours, base = training_step(args.batches, root)
        s_ours, s_base = statistics.median(ours), statistics.median(base)
        print(f"training step: no logging {s_base:.1f} us, with log_metric(cpu tensor) {s_ours:.1f} us "
              f"-> {100 * (s_ours / s_base - 1):+.2f}% (target <= 1%)")  # fmt: skip
        starts = start_cost(args.starts, root)
        for mode in ("no-torch", "torch"):
            full, none = starts[f"{mode}/all"], starts[f"{mode}/none"]
            added = 1000 * (float(full["start"]) - float(none["start"]))
            print(f"start() {mode:8}: {1000 * float(full['start']):.1f} ms with the framework plugins, "
                  f"{1000 * float(none['start']):.1f} ms without -> {added:+.1f} ms; "
                  f"heavy modules loaded after start: {full['loaded'] or 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
