"""The plugin's pure rules: metric names to title/series, params to hyperparameter sections, the config block."""

from __future__ import annotations

import logging

import pytest

from tracelet.exceptions import ConfigurationError
from tracelet_clearml.names import title_series
from tracelet_clearml.options import FRAMEWORK_KEYS, Options
from tracelet_clearml.params import hyperparameters, properties


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("train/loss", ("train", "loss")),
        ("loss", ("loss", "loss")),
        ("val/acc/top1", ("val", "acc/top1")),
        ("/a//b/", ("a", "b")),
        ("a/", ("a", "a")),
        ("///", ("///", "///")),
        ("", ("", "")),
        ("lr: group 0", ("lr: group 0", "lr: group 0")),
    ],
)
def test_title_series_rule(name: str, expected: tuple[str, str]) -> None:
    assert title_series(name) == expected


def test_hyperparameter_sections() -> None:
    got = hyperparameters(
        {"lr": 0.1, "opt": {"name": "adam", "betas": {"b1": 0.9}}, "train/bs": 32, "empty": {}, "flag": True}
    )
    assert got == {
        "General/lr": 0.1, "opt/name": "adam", "opt/betas/b1": 0.9, "General/train/bs": 32, "General/flag": True,
    }  # fmt: skip


def test_hyperparameter_values_never_raise() -> None:
    np = pytest.importorskip("numpy")
    got = hyperparameters({"a": np.float32(0.5), "b": np.arange(3), "c": (1, "x"), "d": object})
    assert got["General/a"] == 0.5 and got["General/b"] == str(np.arange(3))
    assert got["General/c"] == [1, "x"] and got["General/d"] == str(object)
    assert properties({"seed": 7, "": "dropped"}) == {"seed": "7"}


def test_numpy_scalars_become_python_numbers() -> None:
    # numpy.float64 subclasses float: passed as it is, ClearML would record its type as "float64".
    np = pytest.importorskip("numpy")
    got = hyperparameters({"f": np.float64(0.5), "b": np.bool_(True), "s": np.str_("x"), "i": np.int32(4)})
    assert [(got[f"General/{k}"], type(got[f"General/{k}"])) for k in "fbsi"] == [
        (0.5, float), (True, bool), ("x", str), (4, int),
    ]  # fmt: skip


def test_a_name_clearml_cannot_hold_is_escaped() -> None:
    # ClearML builds a section with SectionParams(**params): a parameter named "self" raises in every later edit.
    assert hyperparameters({"self": 1, "opt": {"self": 2, "b": {"self": 3}}}) == {
        "General/_self": 1, "opt/_self": 2, "opt/b/self": 3,
    }  # fmt: skip
    assert properties({"self": "x", "name": "n"}) == {"_self": "x", "name": "n"}


def test_options_defaults_switch_every_capture_off() -> None:
    opts = Options.from_config({})
    assert opts.offline is False and opts.reuse_last_task_id is False and opts.task_type == "training"
    frameworks = opts.frameworks_argument()
    assert frameworks == {**dict.fromkeys(FRAMEWORK_KEYS, False), "detect_repository": False}
    assert not (opts.auto_connect_arg_parser or opts.auto_connect_streams or opts.auto_resource_monitoring)


def test_options_switches(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CLEARML_OFFLINE_MODE", "1")
    assert Options.from_config({}).offline is True
    assert Options.from_config({"offline": "false"}).offline is False  # the block wins over the environment
    opts = Options.from_config({"auto_connect_frameworks": {"tensorboard": True}, "detect_repository": "yes"})
    args = opts.frameworks_argument()
    assert args["tensorboard"] is True and args["pytorch"] is False and args["detect_repository"] is True
    assert Options.from_config({"auto_connect_frameworks": True}).frameworks_argument() == {"detect_repository": False}
    assert Options.from_config({"reuse_last_task_id": "abc123"}).reuse_last_task_id == "abc123"
    assert Options.from_config({"reuse_last_task_id": "true"}).reuse_last_task_id is True
    assert Options.from_config({"auto_connect_streams": {"stdout": True}}).streams_captured() is True
    with caplog.at_level(logging.WARNING, logger="tracelet.clearml"):
        Options.from_config({"stop_timeout": 5, "sdk_thing": 1})
    assert "'sdk_thing' is not supported" in caplog.text and "'stop_timeout'" not in caplog.text


@pytest.mark.parametrize(
    "config",
    [{"offline": "maybe"}, {"close_timeout": 0}, {"close_timeout": "soon"}, {"auto_connect_streams": "sometimes"}],
)
def test_bad_values_are_configuration_errors(config: dict) -> None:
    with pytest.raises(ConfigurationError, match="tracelet-clearml: config key"):
        Options.from_config(config)
