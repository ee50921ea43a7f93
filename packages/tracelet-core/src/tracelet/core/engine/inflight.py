"""Several metric batches of one backend in flight at once: the window a `BackendWorker` sends through.

Over a real network a tracker's request costs a round trip, so one batch at a time is bound by latency, not by
the tracker. A backend whose plugin declares `concurrent_batches` (docs/plugins.md) gets up to `max_in_flight`
metric batches (its config key; `DEFAULT_IN_FLIGHT` when unset) outstanding at once, each sent and retried on
its own sender thread. Guarantees, the same as one at a time:

- **Batches fill the window.** A batch is cut into up to `max_in_flight` pieces of a multiple of `PIECE`
  points (`pieces`), each a batch of its own (every `backend_log_metrics` call still holds at most 10,000).
- **Order where it matters.** Only metric batches overlap (a tracker orders points by step and timestamp, not
  arrival). Params, tags and artifacts wait until every batch before them is confirmed and go one at a time,
  so a later value of a param or tag still wins, and no two params/tags batches are ever out together.
- **Retries stay per batch.** A failed batch is retried (capped backoff, until the stop deadline) on its
  sender thread alone; the others are neither held nor sent again. One refused for good (`ConfigurationError`)
  is split until the refused events stand alone, on that thread, as the one-at-a-time path does.
- **The cursor moves only over contiguous confirmed batches.** `BackendWorker.cursor`, which `flush()`,
  progress checkpoints, `tracelet sync`'s record and the stop report read, never passes an unconfirmed batch:
  a dead run's sync resumes at the first event that may be missing. Batches after it that were delivered are
  sent again then (at-least-once; the tracker folds the repeats, as after any retry).
- **Bounded.** At most `max_in_flight` batches of up to `BATCH_LIMIT` events are held besides the
  orchestrator's buffer; a sender thread bound to the run's stop deadline gives up with it, and the worker
  waits for its senders before it ends the backend's run.

A plugin that does not declare the capability keeps one batch at a time whatever `max_in_flight` says (with a
warning when it asks for more). `max_in_flight = 1` is exactly the one-at-a-time path.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from tracelet.core.engine import backoff
from tracelet.core.engine.clock import SYSTEM, Clock
from tracelet.exceptions import ConfigurationError

logger = logging.getLogger("tracelet")

CAPABILITY = "concurrent_batches"  # the plugin attribute that opts a backend in (read once its run started)
CONFIG_KEY = "max_in_flight"  # the per-backend config key: metric batches outstanding at once
DEFAULT_IN_FLIGHT = 4  # enough to hide a 20-50 ms round trip behind a server's own work; 1: one at a time
PIECE = 1000  # batches are cut in multiples of this many points (MLflow's per-request limit, a common one)


def pieces(group: list[tuple], size: int) -> list[list[tuple]]:
    """Cut one metric batch into about `size` pieces (multiples of `PIECE` points) so that a single large batch
    fills the window too: a training loop that logs faster than the tracker takes makes 10,000-point batches,
    one after another, and the window would otherwise hold only what the next fetch brings."""
    step = -(-len(group) // size)
    step = max(-(-step // PIECE) * PIECE, PIECE)
    return [group[i : i + step] for i in range(0, len(group), step)]


def requested(config: dict[str, Any]) -> int | None:
    """The `max_in_flight` a backend's config asks for, None when unset.

    :param config: the backend's config dict (`RunContext.config`); the value may be an int or a string (from
        the environment or a file).
    :raises ConfigurationError: when the value is not a whole number of 1 or more (it fails `start()`).
    """
    raw = config.get(CONFIG_KEY)
    if raw is None or raw == "":
        return None
    value: int | None = None
    if isinstance(raw, bool):  # True is not a number of batches
        value = None
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        value = int(raw) if raw.is_integer() else None
    else:  # from the environment or a config file: a string
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = None
    if value is None or value < 1:
        raise ConfigurationError(f"{CONFIG_KEY} must be a whole number of batches, 1 or more; got {raw!r}")
    return value


def window_size(name: str, plugin: Any, asked: int | None) -> int:
    """How many metric batches backend `name` may have in flight.

    :param name: the backend's name (for the warning).
    :param plugin: the plugin object, whose `concurrent_batches` attribute is read (after its run started).
    :param asked: what `requested` returned for its config.
    :return: `asked` (or `DEFAULT_IN_FLIGHT`) when the plugin declares `concurrent_batches`, else 1, warning
        when more was asked for.
    """
    if bool(getattr(plugin, CAPABILITY, False)):
        return DEFAULT_IN_FLIGHT if asked is None else asked
    if asked is not None and asked > 1:
        logger.warning(
            "tracelet: backend %r does not declare %s, so %s=%d is not supported by it; it gets one batch at a time",
            name,
            CAPABILITY,
            CONFIG_KEY,
            asked,
        )
    return 1


class Slot:
    """One batch in the window: `count` events from the worker's read position when it was sent."""

    __slots__ = ("count", "settled", "delivered", "refused", "dropped", "finished")

    def __init__(self, count: int) -> None:
        self.count = count
        self.settled = 0  # events from the batch's start delivered or refused for good (all of them, or a prefix)
        self.delivered = 0
        self.refused = 0
        self.dropped = 0
        self.finished = False


Job = Callable[[], tuple[int, int, int]]  # -> (settled, delivered, refused)


class Window:
    """Up to `size` batches out at once, sent by as many daemon threads bound to the run's stop deadline."""

    def __init__(
        self,
        name: str,
        size: int,
        deadline: Callable[[], float | None],
        finishing: threading.Event,
        wake: threading.Event,
        clock: Clock = SYSTEM,
    ) -> None:
        """:param name: the backend's name (for its threads' names and log lines).
        :param size: the most batches out at once (2 or more; the worker sends on its own thread at 1).
        :param deadline: the run's stop deadline, as `backoff.bind_deadline` takes it.
        :param finishing: set by stop(): ends a backoff wait begun before the deadline was known.
        :param wake: the worker's event, set whenever a batch finishes.
        :param clock: the clock `deadline` is measured on (the worker's).
        """
        self.name = name
        self.size = size
        self._deadline = deadline
        self._finishing = finishing
        self._clock = clock
        self._wake = wake  # set when a batch finishes, so the worker moves its cursor promptly
        self._cond = threading.Condition()
        self._slots: deque[Slot] = deque()
        self._open = 0  # slots not finished yet
        self._jobs: queue.SimpleQueue[tuple[Slot, Job] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, count: int, job: Job) -> None:
        """Send a batch on a sender thread, once fewer than `size` are out (waits for room until then).

        :param count: how many events the batch holds (the cursor moves over them once it is settled).
        :param job: delivers it and returns (events settled from its start, delivered, refused).
        """
        with self._cond:
            while self._open >= self.size:
                self._cond.wait()
            slot = Slot(count)
            self._slots.append(slot)
            self._open += 1
        if len(self._threads) < self.size:
            thread = threading.Thread(target=self._send_loop, name=f"tracelet-{self.name}-send", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._jobs.put((slot, job))

    def skipped(self, dropped: int) -> None:
        """`dropped` events behind the batches out were lost (no journal, past the memory bound)."""
        slot = Slot(dropped)
        slot.settled = slot.dropped = dropped
        slot.finished = True
        with self._cond:
            self._slots.append(slot)

    @property
    def empty(self) -> bool:
        return not self._slots

    def finished(self) -> list[Slot]:
        """Pop the finished batches at the front, in order (the cursor may move over them)."""
        out = []
        with self._cond:
            while self._slots and self._slots[0].finished:
                out.append(self._slots.popleft())
        return out

    def wait_all(self) -> None:
        """Wait until every batch sent has finished (delivered, refused, or given up at the stop deadline)."""
        with self._cond:
            while self._open:
                self._cond.wait()

    def close(self) -> None:
        """End the sender threads (after `wait_all`)."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []

    def _send_loop(self) -> None:
        backoff.bind_deadline(
            self._deadline, self._finishing, self._clock
        )  # retries here stop at the run's stop deadline
        while True:
            item = self._jobs.get()
            if item is None:
                return
            slot, job = item
            try:
                slot.settled, slot.delivered, slot.refused = job()
            except BaseException as exc:  # a bug must not wedge the window: the batch counts as not delivered
                logger.error("tracelet: backend %r: a batch failed unexpectedly: %r", self.name, exc)
            finally:
                with self._cond:
                    slot.finished = True
                    self._open -= 1
                    self._cond.notify_all()
                self._wake.set()
