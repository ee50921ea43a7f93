"""What log_metric accepts, how it stamps time and steps, and how the journal keeps it."""

from __future__ import annotations

import math
import time

import pytest

import tracelet
from tracelet.store import open_run


def test_scalars_of_many_kinds_are_accepted_and_nonfinite_values_kept() -> None:
    np = pytest.importorskip("numpy")
    with tracelet.start_logging("values", backend="local") as exp:
        exp.log_metric("int", 3, 0)
        exp.log_metric("bool", True, 0)
        exp.log_metric("np64", np.float64(0.25), 0)
        exp.log_metric("np32", np.float32(0.5), 0)
        exp.log_metric("npint", np.int64(7), 0)
        exp.log_metric("np0d", np.array(1.5), 0)
        exp.log_metric("nan", float("nan"), 0)
        exp.log_metric("inf", math.inf, 0)
        exp.log_metric("ninf", -math.inf, np.int64(4))
    metrics = open_run(exp.id).metrics()
    got = {k: v[0].value for k, v in metrics.items()}
    assert got["int"] == 3.0 and got["bool"] == 1.0 and got["np64"] == 0.25 and got["np32"] == 0.5
    assert got["npint"] == 7.0 and got["np0d"] == 1.5
    assert math.isnan(got["nan"]) and got["inf"] == math.inf and got["ninf"] == -math.inf
    assert metrics["ninf"][0].step == 4


def test_torch_scalars_are_accepted() -> None:
    torch = pytest.importorskip("torch")
    with tracelet.start_logging("torch-values", backend="local") as exp:
        exp.log_metric("t", torch.tensor(0.75), 0)
        exp.log_metric("t_int", torch.tensor(3), torch.tensor(2))
    metrics = open_run(exp.id).metrics()
    assert metrics["t"][0].value == 0.75 and metrics["t_int"][0].value == 3.0 and metrics["t_int"][0].step == 2


@pytest.mark.parametrize("bad", ["0.5", b"1", [1.0], {"a": 1}, None, object(), 1 + 2j])
def test_non_scalars_raise_type_error_at_the_call(bad: object) -> None:
    with tracelet.start_logging("bad", backend="local") as exp:
        with pytest.raises(TypeError):
            exp.log_metric("x", bad, 0)
        exp.log_metric("ok", 1.0, 0)
    assert list(open_run(exp.id).metrics()) == ["ok"]


def test_multi_element_arrays_raise_type_error() -> None:
    np = pytest.importorskip("numpy")
    with tracelet.start_logging("arr", backend="local") as exp:
        with pytest.raises(TypeError):
            exp.log_metric("x", np.array([1.0, 2.0]), 0)


def test_iteration_none_uses_current_iteration() -> None:
    with tracelet.start_logging("steps", backend="local") as exp:
        exp.log_metric("a", 1.0)
        exp.set_iteration(5)
        exp.log_metric("a", 2.0)
        exp.log_metric("a", 3.0, 9)
        exp.log_metric("a", 4.0)
    assert [p.step for p in open_run(exp.id).metrics()["a"]] == [0, 5, 9, 5]


def test_timestamp_is_taken_at_the_call_not_at_delivery() -> None:
    exp = tracelet.start_logging("stamp", backend="recorder")
    before = time.time()
    exp.log_metric("a", 1.0, 0)
    after = time.time()
    time.sleep(0.3)
    tracelet.stop_logging()
    (point,) = open_run(exp.id).metrics()["a"]
    assert before <= point.timestamp <= after


def test_params_are_normalised_and_secrets_redacted() -> None:
    np = pytest.importorskip("numpy")
    with tracelet.start_logging("params", backend="local") as exp:
        exp.log_params(
            {
                "lr": np.float32(0.5),
                "api_key": "abc123",
                "db_url": "postgresql://user:hunter2@127.0.0.1/db",
                "shape": (3, 4),
                "obj": object,
            }
        )
    params = open_run(exp.id).params()
    assert params["lr"] == 0.5 and params["api_key"] == "***" and params["shape"] == [3, 4]
    assert params["db_url"] == "postgresql://***@127.0.0.1/db"
    assert params["obj"] == "<class 'object'>"


class DeviceScalar:
    """Duck-types a 0-d tensor on an accelerator: converting it would synchronise the device."""

    ndim = 0

    class device:  # noqa: N801 - mirrors torch.Tensor.device
        type = "cuda"

    def __init__(self, value: float) -> None:
        self.value = value
        self.converted_on: list[str] = []

    def detach(self) -> DeviceScalar:
        return self

    def __float__(self) -> float:
        import threading

        self.converted_on.append(threading.current_thread().name)
        return self.value


def test_accelerator_scalars_are_converted_off_the_calling_thread() -> None:
    scalar = DeviceScalar(2.5)
    with tracelet.start_logging("device", backend="local") as exp:
        exp.log_metric("gpu_loss", scalar, 0)
        assert "MainThread" not in scalar.converted_on  # nothing on the training thread
    assert open_run(exp.id).metrics()["gpu_loss"][0].value == 2.5
    assert scalar.converted_on and "MainThread" not in scalar.converted_on
