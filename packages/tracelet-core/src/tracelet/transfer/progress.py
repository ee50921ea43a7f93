"""Progress of a sync or an import: a bar on a terminal, plain lines otherwise (logs, CI), or nothing."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

LINE_EVERY = 5.0  # seconds between plain progress lines
BAR_EVERY = 0.1
BAR_WIDTH = 28


class Progress:
    """Quiet by default; see `create`."""

    def __init__(
        self, out: TextIO | None = None, label: str = "", total: int | None = None, unit: str = "events"
    ) -> None:
        self.out = out
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.started = time.monotonic()
        self._last = 0.0

    @staticmethod
    def create(mode: bool | None, out: TextIO | None, label: str, total: int | None, unit: str = "events") -> Progress:
        """`mode` True: a bar when `out` (default stderr) is a terminal, else lines; None: lines; False: nothing."""
        if mode is False:
            return Progress()
        stream = out if out is not None else sys.stderr
        if mode and getattr(stream, "isatty", lambda: False)():
            return _Bar(stream, label, total, unit)
        return _Lines(stream, label, total, unit)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def update(self, done: int, where: Any = None) -> None:
        self.done = done

    def close(self, note: str | None = None, results: Any = None) -> None:
        pass

    def _count(self) -> str:
        total = f"/{self.total:,}" if self.total is not None else ""
        return f"{self.done:,}{total} {self.unit} ({self.rate():,.0f} {self.unit}/s)"

    def _summary(self, note: str | None, results: Any) -> str:
        lines = []
        for r in results or []:
            if r.error:  # with a status the run was delivered and ended, short of what `error` says
                lines.append(f"  {r.backend}: {'' if r.status else 'failed to start: '}{r.error}")
            elif r.complete:
                lines.append(
                    f"  {r.backend}: {r.delivered:,} {self.unit} delivered, run {r.run_id or '-'} ended {r.status}"
                )
            else:
                lines.append(
                    f"  {r.backend}: {r.delivered:,} delivered, {max(r.events - r.cursor, 0):,} behind; "
                    "run the same sync again to resume"
                )
        if note:
            lines.append(f"  {note}")
        return "\n".join(lines)


class _Lines(Progress):
    def update(self, done: int, where: Any = None) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last >= LINE_EVERY:
            if self._last == 0.0:
                self._last = now
                return
            self._last = now
            self.out.write(f"{self.label}: {self._count()}\n")  # type: ignore[union-attr]
            self.out.flush()  # type: ignore[union-attr]

    def close(self, note: str | None = None, results: Any = None) -> None:
        assert self.out is not None
        self.out.write(f"{self.label}: {self._count()}\n")
        summary = self._summary(note, results)
        if summary:
            self.out.write(summary + "\n")
        self.out.flush()


class _Bar(Progress):
    def update(self, done: int, where: Any = None) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last < BAR_EVERY:
            return
        self._last = now
        self._draw()

    def _draw(self) -> None:
        assert self.out is not None
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = int(frac * BAR_WIDTH)
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {frac:4.0%} "
        else:
            bar = ""
        self.out.write(f"\r{self.label} {bar}{self._count()}\x1b[K")
        self.out.flush()

    def close(self, note: str | None = None, results: Any = None) -> None:
        assert self.out is not None
        self._draw()
        self.out.write("\n")
        summary = self._summary(note, results)
        if summary:
            self.out.write(summary + "\n")
        self.out.flush()
