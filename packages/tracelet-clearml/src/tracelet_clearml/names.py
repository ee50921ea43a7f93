"""Metric names to ClearML's (title, series) pairs, by one rule that never fails.

ClearML groups scalars into plots (`title`) of lines (`series`). Tracelet names are split at their first `/`:

    "train/loss"     -> ("train", "loss")
    "loss"           -> ("loss", "loss")        one line, in a plot of its own name
    "val/acc/top1"   -> ("val", "acc/top1")     deeper names keep the rest in the series

Empty segments are dropped first (`"/a//b/"` -> `("a", "b")`); a name made only of slashes (or empty) is kept
as both title and series. The mapping is pure, so the same name always lands in the same plot.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=4096)  # metric names repeat every step: split each once
def title_series(name: str) -> tuple[str, str]:
    """Return ClearML's (title, series) for a Tracelet metric name."""
    parts = [part for part in name.split("/") if part]
    if not parts:
        return name, name
    title = parts[0]
    series = "/".join(parts[1:]) or title
    return title, series
