"""The backend's config block, as the plugin guide asks: an unknown key is warned about (with the closest valid
one) and the run goes on; a value of the wrong type fails `start()` with an error naming the key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from tracelet_backend_template import JsonlBackend, read_run

import tracelet
from tracelet.plugin import ConfigurationError

NAME = "template-config-test"


@pytest.fixture
def registered(tracelet_isolated: Path) -> Iterator[str]:
    tracelet.register_plugin(JsonlBackend, name=NAME)
    yield NAME
    tracelet.unregister_plugin(NAME)


def test_an_unknown_key_is_warned_about_and_the_run_goes_on(
    registered: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tracelet")
    config = {registered: {"dir": str(tmp_path / "out"), "dri": "elsewhere"}, f"{registered}_colour": "blue"}
    exp = tracelet.start_logging("unknown-keys", backend=registered, config=config)
    exp.log_metric("loss", 0.5, 0)
    tracelet.stop_logging()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("config key 'dri' is not supported and is ignored; did you mean 'dir'?" in w for w in warnings)
    assert any("config key 'colour' is not supported and is ignored" in w for w in warnings)
    report = exp.report
    assert report is not None and report.backends[registered].delivered == report.events
    data = read_run(report.backends[registered].details["path"])
    assert Path(report.backends[registered].details["path"]).is_relative_to(tmp_path / "out")
    assert data["metrics"]["loss"][0][:2] == (0, 0.5) and data["status"] == "FINISHED"


def test_a_value_of_the_wrong_type_fails_start_naming_the_key(registered: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="config key 'fsync' must be a boolean"):
        tracelet.start_logging("bad-value", backend=registered, config={registered: {"fsync": "sometimes"}})
