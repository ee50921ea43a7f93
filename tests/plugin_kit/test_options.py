"""`tracelet.plugin.BackendOptions`: one typed parser for every plugin's config block."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

import tracelet
from tracelet.plugin import BackendOptions, ConfigurationError


@attrs.define
class Demo(BackendOptions):
    plugin: ClassVar[str] = "tracelet-demo"
    aliases: ClassVar[dict[str, str]] = {"experiment": "experiment_name"}

    enabled: bool = True
    retries: int = 0
    timeout: float | None = None
    console: bool | str | None = None
    experiment_name: str | None = None
    switches: bool | dict[str, Any] = False
    tags: list[str] = attrs.field(factory=list)


@pytest.mark.parametrize("raw", ["false", "0", "no", "False", " NO ", 0, False])
def test_false_strings_are_false(raw: object) -> None:
    assert Demo.from_config({"enabled": raw}).enabled is False


def test_values_are_converted_as_people_write_them() -> None:
    opts = Demo.from_config(
        {
            "retries": "3",
            "timeout": "2.5",
            "console": "wrap",
            "switches": {"a": True},
            "tags": "a, b",
            "experiment": "exp",
        }
    )
    assert (opts.retries, opts.timeout, opts.console, opts.switches) == (3, 2.5, "wrap", {"a": True})
    assert opts.tags == ["a", "b"] and opts.experiment_name == "exp"
    assert Demo.from_config({"console": "false", "switches": "yes"}).console is False
    assert Demo.from_config({"switches": "yes"}).switches is True
    assert Demo.from_config({"timeout": None}).timeout is None and Demo.from_config({}).enabled is True
    # The field's own name wins over an alias given beside it.
    assert Demo.from_config({"experiment": "a", "experiment_name": "b"}).experiment_name == "b"


def test_numbers_in_any_spelling_of_their_value() -> None:
    opts = Demo.from_config({"retries": 4.0, "timeout": 3})
    assert (opts.retries, opts.timeout) == (4, 3.0) and type(opts.retries) is int and type(opts.timeout) is float
    assert (Demo.from_config({"retries": " 7 "}).retries, Demo.from_config({"timeout": " 1e-3 "}).timeout) == (7, 0.001)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("retries", "many", "a whole number"),
        ("retries", True, "a whole number"),
        ("retries", 2.5, "a whole number"),
        ("retries", "2.0", "a whole number"),
        ("enabled", "maybe", "a boolean"),
        ("timeout", [1], "a number"),
        ("timeout", True, "a number"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_configuration_error_naming_the_key(
    key: str, raw: object, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as err:
        Demo.from_config({key: raw})
    assert f"tracelet-demo: config key {key!r}" in str(err.value) and expected in str(err.value)
    assert isinstance(err.value, ValueError)


def test_an_unknown_key_is_warned_once_with_the_closest_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tracelet")
    Demo.from_config({"retires": 2, "stop_timeout": 5})
    Demo.from_config({"retires": 2})
    warnings = [r.getMessage() for r in caplog.records if "retires" in r.getMessage()]
    assert len(warnings) == 1 and "did you mean 'retries'?" in warnings[0]
    assert "stop_timeout" not in caplog.text.split("(options")[0]  # the core's key: accepted, no warning


def test_a_bad_backend_name_is_a_value_error_as_documented() -> None:
    try:
        tracelet.start_logging("fallback", backend="no-such-tracker")
    except ValueError as exc:  # the documented fallback of upstream's examples
        assert "unknown backend 'no-such-tracker'" in str(exc)
    else:
        pytest.fail("an unknown backend must raise")


def test_plugins_parse_their_blocks_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    template = Path(__file__).resolve().parents[2] / "examples" / "tracelet-backend-template" / "src"
    monkeypatch.syspath_prepend(str(template))  # the template is a distribution of its own, not installed here
    from tracelet_backend_template import Options as TemplateOptions

    from tracelet_clearml.options import Options as ClearMLOptions
    from tracelet_mlflow.options import Options as MLflowOptions
    from tracelet_wandb.options import Options as WandbOptions

    for cls in (TemplateOptions, ClearMLOptions, MLflowOptions, WandbOptions):
        assert issubclass(cls, BackendOptions)
    wandb = WandbOptions.from_config({"console": "false", "system_metrics": "0", "metadata": "no", "tags": ["t"]})
    assert (wandb.console, wandb.system_metrics, wandb.metadata, wandb.tags) == (False, False, False, ["t"])
    mlflow = MLflowOptions.from_config({"experiment_name": "upstream", "http_retries": "2"})
    assert (mlflow.experiment_name, mlflow.http_retries) == ("upstream", 2)
    assert ClearMLOptions.from_config({"tags": "x,y", "offline": "true"}).tags == ["x", "y"]
    assert TemplateOptions.from_config({"fsync": "false"}).fsync is False
