"""Scalar points into a ClearML task, each with the time it was logged.

`Logger.report_scalar` stamps a point with the time it is *reported*; Tracelet delivers from a worker
thread (and replays journals after outages), so that would be the delivery time. The writer builds ClearML's
own `ScalarEvent` with the point's logging time (milliseconds, as ClearML stores it) and hands it to the
task's reporter, which is exactly what `report_scalar` does minus the timestamp. Should a ClearML version
move those internals, the writer falls back to `report_scalar` (points keep their values and steps, only
the timestamps become delivery times) and says so once.

Values ClearML cannot hold: it replaces NaN and ±inf with 0.0 (a diverged loss would read as perfect).
Here ±inf become ±1.7976931348623157e308 (the largest double, as SQL stores such as MLflow's keep them) and
NaN points are not sent (ClearML's server takes no NaN); they stay in Tracelet's journal and local store, and
the first one of each metric is warned about.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("tracelet.clearml")

FLOAT_MAX = sys.float_info.max


class ScalarWriter:
    """Writes (title, series, value, step, timestamp) points into one task."""

    def __init__(self, task: Any) -> None:
        task_logger = task.get_logger()
        self._report_scalar: Callable[..., Any] = task_logger.report_scalar
        self._nan_warned: set[str] = set()
        self.timestamps = False
        try:
            from clearml.backend_interface.metrics.events import ScalarEvent

            self._event = ScalarEvent
            self._add = task._reporter._report
            self._touch = task_logger._touch_title_series  # what report_scalar records for get_all_reported_...
            self.timestamps = True
        except (ImportError, AttributeError) as exc:
            logger.warning(
                "tracelet-clearml: this ClearML version hides its scalar events (%s); points are reported "
                "with report_scalar and carry their delivery time instead of their logging time",
                exc,
            )

    def write(self, name: str, title: str, series: str, value: float, step: int, timestamp: float) -> None:
        if not math.isfinite(value):
            if math.isnan(value):
                self._skip_nan(name)
                return
            value = math.copysign(FLOAT_MAX, value)
        if self.timestamps:
            self._touch(title, series)
            self._add(
                self._event(metric=title, variant=series, value=value, iter=step, timestamp=int(timestamp * 1000))
            )
        else:
            self._report_scalar(title, series, value, iteration=step)

    def _skip_nan(self, name: str) -> None:
        if name not in self._nan_warned:
            self._nan_warned.add(name)
            logger.warning(
                "tracelet-clearml: NaN value of metric %r not sent (ClearML cannot store NaN and would record "
                "0.0); it stays in Tracelet's journal. Further NaN points of this metric are skipped silently",
                name,
            )
