"""What Tracelet adds to a Hugging Face `Trainer`: a tiny BERT trained for 200 steps, with and without a run.

    python benchmarks/hf_trainer.py [--steps 200] [--rounds 5] [--logging-steps 10]

A default `Trainer` (`report_to="none"`, a tiny BERT built from a config, CPU, a synthetic dataset) is trained
in alternating rounds: plain, then inside a Tracelet run on the local store (the `transformers` framework
plugin attaches its `TraceletCallback`: params, a point per logged value, the summary values), and so on;
a first pair of rounds warms up and is not counted. The figure is the median wall-clock time of
`trainer.train()` in each mode, and their ratio (target: <= 2% added). `start()` and `stop()` are timed
apart (once per run, outside training). Every round's points are checked to have reached the run's journal.

Exit status 3 when the ratio misses its target (the machines here are small and shared: noise alone can do
that), 1 when points are missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings

TARGET = 0.02


def make_trainer(output_dir: str, steps: int, logging_steps: int) -> object:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    class Synthetic(torch.utils.data.Dataset):
        def __init__(self, n: int) -> None:
            g = torch.Generator().manual_seed(0)
            self.ids = torch.randint(2, 64, (n, 16), generator=g)
            self.labels = (self.ids % 2 == 0).sum(dim=1).gt(8).long()

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            return {"input_ids": self.ids[i], "labels": self.labels[i]}

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, num_labels=2)  # fmt: skip
    args = TrainingArguments(
        output_dir=output_dir, max_steps=steps, per_device_train_batch_size=8, logging_steps=logging_steps,
        save_strategy="no", eval_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
        log_level="error",
    )  # fmt: skip
    return Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=Synthetic(256))


def one_round(root: str, steps: int, logging_steps: int, with_tracelet: bool) -> tuple[float, float, int]:
    """(seconds in train(), seconds in start()+stop(), train/loss points in the run's journal)."""
    import tracelet
    from tracelet.store import open_run

    overhead = 0.0
    exp = None
    if with_tracelet:
        t0 = time.perf_counter()
        exp = tracelet.start_logging("bench-hf", backend="local", config={"dir": root})
        overhead += time.perf_counter() - t0
    trainer = make_trainer(os.path.join(root, "out"), steps, logging_steps)
    t0 = time.perf_counter()
    trainer.train()  # type: ignore[attr-defined]
    train_s = time.perf_counter() - t0
    points = 0
    if exp is not None:
        t0 = time.perf_counter()
        tracelet.stop_logging()
        overhead += time.perf_counter() - t0
        points = len(open_run(exp.id, root).metrics().get("train/loss", []))
    return train_s, overhead, points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--logging-steps", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    plain: list[float] = []
    ours: list[float] = []
    overheads: list[float] = []
    expected = args.steps // args.logging_steps
    missing = False
    with tempfile.TemporaryDirectory() as root:
        for round_ in range(args.rounds + 1):
            for with_tracelet in (False, True):
                train_s, overhead, points = one_round(root, args.steps, args.logging_steps, with_tracelet)
                if with_tracelet and points != expected:
                    print(f"round {round_}: {points} train/loss points in the run, expected {expected}")
                    missing = True
                label = "with Tracelet" if with_tracelet else "plain"
                print(f"round {round_}{' (warm-up)' if round_ == 0 else ''}: {label} {train_s:.2f} s", flush=True)
                if round_ == 0:
                    continue  # warm-up: imports, first allocations
                (ours if with_tracelet else plain).append(train_s)
                if with_tracelet:
                    overheads.append(overhead)
    base, with_run = statistics.median(plain), statistics.median(ours)
    added = with_run / base - 1
    verdict = "ok" if added <= TARGET else "MISSED"
    print(f"Trainer.train(), {args.steps} steps, a point every {args.logging_steps} steps, median of "
          f"{args.rounds} interleaved rounds: plain {base:.2f} s, inside a Tracelet run {with_run:.2f} s "
          f"-> {100 * added:+.1f}% (target <= {100 * TARGET:.0f}%)  {verdict}")  # fmt: skip
    print(f"  start() + stop() of the run, outside train(): median {1000 * statistics.median(overheads):.0f} ms")
    print(
        f"  rounds plain: {', '.join(f'{s:.2f}' for s in plain)}; with Tracelet: {', '.join(f'{s:.2f}' for s in ours)}"
    )
    if missing:
        return 1
    return 0 if added <= TARGET else 3


if __name__ == "__main__":
    sys.exit(main())
