"""A small real training run tracked by Tracelet on the embedded default (the local store).

Trains a logistic-regression classifier with plain-Python gradient descent on a synthetic two-blob dataset,
logging hyperparameters, loss and accuracy per epoch, then prints where the run is and how to look at it.
Run it with `hatch run example:run` (see the README), or with any Python that has `tracelet` installed.
"""

from __future__ import annotations

import math
import random

import tracelet


def make_data(n: int, seed: int) -> list[tuple[list[float], int]]:
    rng = random.Random(seed)
    data = []
    for i in range(n):
        label = i % 2
        cx, cy = (1.5, 1.0) if label else (-1.0, -1.5)
        data.append(([rng.gauss(cx, 1.0), rng.gauss(cy, 1.0)], label))
    return data


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def main() -> None:
    params = {"learning_rate": 0.1, "epochs": 30, "batch_size": 16, "samples": 800, "seed": 7}
    train = make_data(params["samples"], params["seed"])
    valid = make_data(200, params["seed"] + 1)
    w, b = [0.0, 0.0], 0.0

    with tracelet.start_logging("quickstart-logreg", project="examples") as exp:
        exp.log_params(params)
        step = 0
        for epoch in range(params["epochs"]):
            random.Random(epoch).shuffle(train)
            for start in range(0, len(train), params["batch_size"]):
                batch = train[start : start + params["batch_size"]]
                gw, gb, loss = [0.0, 0.0], 0.0, 0.0
                for x, y in batch:
                    p = sigmoid(w[0] * x[0] + w[1] * x[1] + b)
                    loss -= math.log(max(p if y else 1 - p, 1e-12))
                    gw[0] += (p - y) * x[0]
                    gw[1] += (p - y) * x[1]
                    gb += p - y
                n = len(batch)
                w = [w[0] - params["learning_rate"] * gw[0] / n, w[1] - params["learning_rate"] * gw[1] / n]
                b -= params["learning_rate"] * gb / n
                exp.log_metric("train/loss", loss / n, step)
                step += 1
            correct = sum((sigmoid(w[0] * x[0] + w[1] * x[1] + b) > 0.5) == bool(y) for x, y in valid)
            exp.log_metric("valid/accuracy", correct / len(valid), epoch)
        run_id, run_dir = exp.id, exp.run_dir

    print(f"Tracked run {run_id}: final validation accuracy {correct / len(valid):.3f}")
    print(f"Run folder: {run_dir.resolve() if run_dir else '(local store off)'}")
    print(
        f"Look at it: tracelet show {run_id}   (from this repository: python3 -m hatch run example:tracelet show {run_id})"
    )
    print(
        "Or in the browser: tracelet ui   (charts, compare, live; from this repository: "
        "python3 -m hatch run example:tracelet ui)"
    )


if __name__ == "__main__":
    main()
