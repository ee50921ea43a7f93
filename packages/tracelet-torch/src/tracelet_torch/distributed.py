"""Metrics reduced across the ranks of a `torch.distributed` job: one rank-0 point from every rank's value.

    from tracelet_torch.distributed import log_reduced, log_reduced_dict

    log_reduced("loss", loss, step)                          # mean over ranks, logged by global rank 0
    log_reduced_dict({"loss": loss, "acc": acc}, step, op="max")

What Lightning's ``self.log(..., sync_dist=True)`` does, without blocking the training thread: the calling
thread packs the values into one tensor and *enqueues* an ``all_reduce(..., async_op=True)``; the result is
waited for and divided on Tracelet's delivery side (its dispatcher thread), so no rank waits for the others
here and a device tensor is never synchronised on the training thread. Ops: ``mean`` (a sum divided by the
group's size), ``sum``, ``min``, ``max``.

**Every rank must make the same calls, in the same order, with the same names** (as with Lightning's
``sync_dist`` and any collective): a rank that skips a call leaves the others' collective unmatched. Such a
point is logged as NaN after ``timeout`` seconds (and a warning says so) rather than hanging delivery. Only
global rank 0 logs the result, into its active experiment (its own run under ``distributed=rank0``; its
``<name>/rank0`` run under ``per_rank``); the other ranks only contribute. Without an initialised process
group (a single process) the value is logged as it is.

Values may be Python numbers, numpy scalars or 0-d tensors. Under the ``nccl`` backend the packed tensor
lives on the current CUDA device; under ``gloo`` on the device of a CUDA tensor among the values (gloo reduces
CUDA tensors itself), else on the CPU; under other backends on the CPU (a CUDA value is then copied there
before the collective, which waits for the GPU).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

logger = logging.getLogger("tracelet.torch")

REDUCE_OPS = ("mean", "sum", "min", "max")
DEFAULT_TIMEOUT = 120.0  # seconds the delivery side waits for one reduction before logging NaN
_MAX_PENDING = 1024  # non-zero ranks keep this many unfinished reductions alive (their buffers must live)
_pending: deque[Any] = deque()
_warned: set[str] = set()


def log_reduced(
    name: str,
    value: Any,
    iteration: int | None = None,
    *,
    op: str = "mean",
    experiment: Any = None,
    group: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Reduce `value` across the ranks of `group` (default: the world) and log it as `name` on global rank 0.

    :param name: the metric's name.
    :param value: this rank's value (a number or a 0-d tensor).
    :param iteration: the step; None takes the experiment's current iteration.
    :param op: ``mean`` (default), ``sum``, ``min`` or ``max``.
    :param experiment: where rank 0 logs; default the active experiment (``tracelet.get_active_experiment()``).
    :param group: a ``torch.distributed`` process group; default the world.
    :param timeout: seconds the delivery side waits for the collective before logging NaN.
    """
    log_reduced_dict({name: value}, iteration, op=op, experiment=experiment, group=group, timeout=timeout)


def log_reduced_dict(
    values: Mapping[str, Any],
    iteration: int | None = None,
    *,
    op: str = "mean",
    experiment: Any = None,
    group: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Reduce several values with one collective and log each on global rank 0 (see `log_reduced`).

    :param values: metric name -> this rank's value; every rank passes the same names in the same order.
    :param iteration: the step; None takes the experiment's current iteration.
    :param op: ``mean`` (default), ``sum``, ``min`` or ``max``.
    :param experiment: where rank 0 logs; default the active experiment.
    :param group: a ``torch.distributed`` process group; default the world.
    :param timeout: seconds the delivery side waits for the collective before logging NaN.
    """
    if op not in REDUCE_OPS:
        raise ValueError(f"op={op!r}: use one of {', '.join(REDUCE_OPS)}")
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be a mapping of metric names to values, got {type(values).__name__}")
    if not values:
        return
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        exp = experiment if experiment is not None else _active()
        if exp is not None:
            for name, value in values.items():
                exp.log_metric(name, value, iteration)
        return
    names = list(values)
    device = _device(dist, group, values.values())
    # Non-blocking only towards an accelerator: a device-to-host copy with non_blocking=True lands in pinned
    # memory later, and the CPU collective would read the buffer before the value is there.
    non_blocking = device.type != "cpu"
    parts = []
    for value in values.values():
        if isinstance(value, torch.Tensor):
            parts.append(value.detach().reshape(()).to(device=device, dtype=torch.float64, non_blocking=non_blocking))
        else:
            parts.append(torch.tensor(float(value), dtype=torch.float64, device=device))
    buffer = torch.stack(parts)
    reduce_op = {"mean": dist.ReduceOp.SUM, "sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN,
                 "max": dist.ReduceOp.MAX}[op]  # fmt: skip
    work = dist.all_reduce(buffer, op=reduce_op, group=group, async_op=True)
    divisor = dist.get_world_size(group) if op == "mean" else 1
    if dist.get_rank() != 0:
        _keep(work, buffer)
        return
    exp = experiment if experiment is not None else _active()
    if exp is None:
        _keep(work, buffer)
        return
    reduction = _Reduction(work, buffer, divisor, timeout, names)
    for i, name in enumerate(names):
        exp.log_metric(name, _Reduced(reduction, i), iteration)


def _active() -> Any:
    import tracelet

    return tracelet.get_active_experiment()


def _device(dist: Any, group: Any, values: Any = ()) -> Any:
    """Where the packed values are reduced: nccl's CUDA device; under gloo the device of a CUDA tensor among
    the values (gloo reduces CUDA tensors itself, ordered after the kernels that produce them, so neither the
    training thread nor the GPU waits here); else the CPU."""
    import torch

    try:
        backend = str(dist.get_backend(group)).lower()
    except Exception:
        backend = ""
    if "nccl" in backend and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if "gloo" in backend:
        for value in values:
            if isinstance(value, torch.Tensor) and value.is_cuda:
                return value.device
    return torch.device("cpu")


def _keep(work: Any, buffer: Any) -> None:
    """Hold a contribution's work and buffer until the collective is done (the buffer must outlive it)."""
    while _pending and _pending[0][0].is_completed():
        _pending.popleft()
    if len(_pending) >= _MAX_PENDING:
        _pending.popleft()  # the oldest has had 1024 collectives' time to finish; gloo/nccl hold their own refs
    _pending.append((work, buffer))


class _Reduction:
    """One collective's result, waited for once, on the first value the delivery side converts."""

    def __init__(self, work: Any, buffer: Any, divisor: int, timeout: float, names: list[str]) -> None:
        self.work = work
        self.buffer = buffer
        self.divisor = divisor
        self.timeout = timeout
        self.names = names
        self.values: list[float] | None = None
        self._lock = threading.Lock()

    def value(self, index: int) -> float:
        with self._lock:
            if self.values is None:
                self.values = self._resolve()
        return self.values[index]

    def _resolve(self) -> list[float]:
        try:
            self.work.wait(timedelta(seconds=self.timeout))
            result = self.buffer.cpu().tolist()
        except Exception as exc:
            key = type(exc).__name__
            if key not in _warned:
                _warned.add(key)
                logger.warning(
                    "tracelet-torch: reducing %s across ranks failed (%s): logged as NaN. Every rank must "
                    "make the same log_reduced calls in the same order",
                    ", ".join(self.names), exc,
                )  # fmt: skip
            return [float("nan")] * len(self.names)
        finally:
            self.work = None
        return [v / self.divisor for v in result]


class _ReducedDevice:
    type = "tracelet-reduce"  # not "cpu": the core defers converting it to its dispatcher thread


_DEVICE = _ReducedDevice()


class _Reduced:
    """One metric value of a pending reduction, as the core sees it: a 0-d value on a device, converted
    (with float()) off the training thread, exactly like a CUDA tensor handed to log_metric."""

    __slots__ = ("_reduction", "_index")
    device = _DEVICE
    ndim = 0

    def __init__(self, reduction: _Reduction, index: int) -> None:
        self._reduction = reduction
        self._index = index

    def detach(self) -> _Reduced:
        return self

    def __float__(self) -> float:
        return self._reduction.value(self._index)

    def __repr__(self) -> str:
        return f"<reduced {self._reduction.names[self._index]}>"
