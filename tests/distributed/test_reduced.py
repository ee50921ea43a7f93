"""`tracelet_torch.distributed` in one process: the reduced value a rank-0 run receives, read back from the
local store's journal (the multi-rank means are checked by test_torchrun against MLflow)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist

import tracelet
from tracelet.core.engine import journal
from tracelet_testsupport.distributed import free_port
from tracelet_torch.distributed import log_reduced, log_reduced_dict


def _points(exp: tracelet.Experiment) -> list[tuple[str, float, int]]:
    assert exp.run_dir is not None
    return [(e[1], e[2], e[3]) for _, e in journal.read_events(exp.run_dir / journal.EVENTS_FILE) if e[0] == "m"]


@pytest.fixture
def gloo_world_of_one() -> Iterator[None]:
    """A real gloo process group of this process alone (what `torchrun --nproc-per-node 1` gives)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1,
                            timeout=timedelta(seconds=60))  # fmt: skip
    yield
    dist.destroy_process_group()


def test_without_a_process_group_the_value_is_logged_as_it_is() -> None:
    exp = tracelet.start_logging("reduced", backend="local")
    log_reduced("loss", torch.tensor(0.25), 3)
    log_reduced_dict({"a": 1.5, "b": 2}, 4, op="max")
    exp.stop()
    assert _points(exp) == [("loss", 0.25, 3), ("a", 1.5, 4), ("b", 2.0, 4)]
    with pytest.raises(ValueError, match="mean, sum, min, max"):
        log_reduced("loss", 1.0, op="median")


def test_every_op_in_a_gloo_group(gloo_world_of_one: None) -> None:
    exp = tracelet.start_logging("reduced", backend="local")
    for op in ("mean", "sum", "min", "max"):
        log_reduced(f"x/{op}", 2.5, 1, op=op)
    log_reduced_dict({"t": torch.tensor([3.0]), "n": 4}, 2)
    exp.stop()
    assert sorted(_points(exp)) == sorted(
        [("x/mean", 2.5, 1), ("x/sum", 2.5, 1), ("x/min", 2.5, 1), ("x/max", 2.5, 1), ("t", 3.0, 2), ("n", 4.0, 2)]
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_value_under_gloo_is_reduced_once_the_gpu_has_computed_it(gloo_world_of_one: None) -> None:
    """The value is produced by a kernel still queued behind a long one: a non-blocking copy to the CPU would
    hand gloo a buffer not yet written."""
    exp = tracelet.start_logging("reduced", backend="local")
    x = torch.full((1024,), 2.0, device="cuda")
    torch.cuda._sleep(200_000_000)  # keep the stream busy, so the value below is not ready for a while
    log_reduced("cuda_sum", (x * 3).sum(), 0, op="sum")
    exp.stop()
    assert _points(exp) == [("cuda_sum", 6144.0, 0)]
