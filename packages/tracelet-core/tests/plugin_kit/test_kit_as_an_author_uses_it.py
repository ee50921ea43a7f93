"""The kit as a third-party author uses it (findings of an author who wrote a backend from the docs alone):
`plugin_name` set to the plugin's own, installed entry-point name, and a plugin that implements only some of
the (optional) hooks.

The installed plugin is `recorder`, a real entry point of the test plugin distribution (tests/testplugin).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracelet.core.contract import discovery
from tracelet.plugin import Metric, PluginType, RunContext, RunStatus, hookimpl
from tracelet.testing import BackendConformance, RunUnderTest, TrackedRun
from tracelet_testplugin.backends import RECORDS, RecorderBackend


def _tracked(rec: dict[str, Any]) -> TrackedRun:
    metrics: dict[str, list[Metric]] = {}
    for m in rec["metrics"]:
        metrics.setdefault(m.name, []).append(m)
    return TrackedRun(metrics=metrics, params=rec["params"], tags=rec["tags"], status=rec["status"])


class Recorder(RecorderBackend):
    """The installed `recorder`, saying which run it recorded (the kit wants each run's details to differ)."""

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        return {**super().backend_start_run(run), "run": run.run_id}


class TestKitUnderTheEntryPointName(BackendConformance):
    """Every check of the kit, with the plugin registered under its own installed entry-point name."""

    backend = Recorder
    plugin_name = "recorder"

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        return _tracked(RECORDS[f"recorder:{run.run_id}"])


def test_the_installed_plugin_is_back_after_a_kit_test(tmp_path: Path) -> None:
    kit = TestKitUnderTheEntryPointName()
    kit.setup_kit(tmp_path)
    try:
        kit.test_start_and_finish()
        during = discovery.find(PluginType.BACKEND, "recorder")
        assert during.distribution == discovery.IN_PROCESS  # the class under test stood in for the entry point
    finally:
        kit.teardown_kit()
    after = discovery.find(PluginType.BACKEND, "recorder")
    assert (after.distribution, after.value) == ("tracelet-testplugin", "tracelet_testplugin.backends:RecorderBackend")


class MetricsOnly:
    """Implements metrics and the run's lifecycle, and neither params nor tags (every hook is optional)."""

    runs: dict[str, dict[str, Any]] = {}

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        self.rec = MetricsOnly.runs[run.run_id] = {"metrics": [], "params": {}, "tags": {}, "status": None}
        return {"id": run.run_id}

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        self.rec["metrics"].extend(metrics)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        self.rec["status"] = status


class TestMetricsOnlyBackend(BackendConformance):
    """The kit passes a plugin without params and tags hooks: those checks are skipped, the rest pass."""

    backend = MetricsOnly

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        return _tracked(MetricsOnly.runs[run.details["id"]])


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        ("test_params_nested_and_relogged", "the plugin implements no backend_log_params hook: it declares no params"),
        ("test_tags", "the plugin implements no backend_log_tags hook: it declares no tags support"),
    ],
)
def test_params_and_tags_checks_are_skipped_with_a_reason_without_their_hooks(
    tmp_path: Path, check: str, reason: str
) -> None:
    kit = TestMetricsOnlyBackend()
    kit.setup_kit(tmp_path)
    try:
        with pytest.raises(pytest.skip.Exception, match=reason):
            getattr(kit, check)()
    finally:
        kit.teardown_kit()


def test_the_same_checks_run_for_a_plugin_with_the_hooks(tmp_path: Path) -> None:
    kit = TestKitUnderTheEntryPointName()
    kit.setup_kit(tmp_path)
    try:  # not skipped: they run (and pass) where the hooks exist
        kit.test_params_nested_and_relogged()
        kit.test_tags()
    finally:
        kit.teardown_kit()
