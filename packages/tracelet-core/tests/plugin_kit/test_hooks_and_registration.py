"""Typo-proof hooks, in-process registration, name clashes and `tracelet plugins` marking broken plugins.

The misspelled and undecorated backends are real entry points of the test plugin distribution; the clash is
two real distributions (dist-info folders on sys.path) publishing one name.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

import tracelet
import tracelet.plugin
from tracelet import ConfigurationError
from tracelet.cli import main
from tracelet.core.contract import discovery
from tracelet.plugin import Metric, RunContext, RunStatus, hookimpl


def test_misspelled_hook_fails_start_naming_plugin_hook_and_the_real_one() -> None:
    with pytest.raises(ConfigurationError) as err:
        tracelet.start_logging("typo-run", backend="typo")
    msg = str(err.value)
    assert "plugin 'typo'" in msg
    assert "unknown hook `backend_log_metric`" in msg
    assert "did you mean `backend_log_metrics`?" in msg


def test_hook_named_method_without_hookimpl_is_warned_about_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracelet.core import plugins
    from tracelet_testplugin.backends import RECORDS

    monkeypatch.setattr(plugins, "_warned_undecorated", set())  # "once" is per process: start this test afresh
    caplog.set_level(logging.WARNING, logger="tracelet")
    ids = []
    for _ in range(2):
        exp = tracelet.start_logging("undecorated-run", backend="undecorated")
        exp.log_metric("loss", 1.0, 0)
        tracelet.stop_logging()
        ids.append(exp.id)
    warnings = [r.getMessage() for r in caplog.records if "no @hookimpl" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "`backend_flush`" in warnings[0] and "'undecorated'" in warnings[0]
    assert all("flushed" not in RECORDS[f"undecorated:{i}"] for i in ids)  # never called, as warned


class Collected:
    """An unpackaged backend, as a notebook would define it."""

    runs: dict[str, dict[str, Any]] = {}

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        self.rec = Collected.runs[run.run_id] = {"metrics": [], "params": {}, "status": None, "config": run.config}
        return {"id": run.run_id}

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        self.rec["metrics"].extend(metrics)

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        self.rec["params"].update(params)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        self.rec["status"] = status


@pytest.fixture
def unregister() -> Any:
    names: list[str] = []
    yield names
    for name in names:
        tracelet.unregister_plugin(name)


def test_register_plugin_runs_a_backend_end_to_end(unregister: list[str]) -> None:
    assert tracelet.register_plugin is tracelet.plugin.register_plugin
    tracelet.register_plugin(Collected, name="collected")
    unregister.append("collected")
    exp = tracelet.start_logging("in-process", backend=["collected", "local"], config={"collected": {"k": 1}})
    for i in range(2500):
        exp.log_metric("loss", 1.0 / (i + 1), i)
    exp.log_params({"lr": 0.1})
    report = exp.stop()
    rec = Collected.runs[exp.id]
    assert [(m.step, m.value) for m in rec["metrics"]] == [(i, 1.0 / (i + 1)) for i in range(2500)]
    assert rec["params"] == {"lr": 0.1} and rec["status"] is RunStatus.FINISHED and rec["config"] == {"k": 1}
    assert report is not None and report.backends["collected"].delivered == report.events
    assert "collected" in {s.name for s in discovery.installed(tracelet.plugin.PluginType.BACKEND)}
    assert tracelet.unregister_plugin("collected") is True
    with pytest.raises(ConfigurationError, match="unknown backend 'collected'"):
        tracelet.start_logging("gone", backend="collected")


def test_register_plugin_refuses_an_installed_name_unless_replace(
    unregister: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigurationError) as err:
        tracelet.register_plugin(Collected, name="recorder")
    assert "already installed by tracelet-testplugin 0.1.0" in str(err.value) and "replace=True" in str(err.value)
    caplog.set_level(logging.WARNING, logger="tracelet")
    tracelet.register_plugin(Collected, name="recorder", replace=True)
    unregister.append("recorder")
    assert any("is replaced in this process" in r.getMessage() for r in caplog.records)
    exp = tracelet.start_logging("replaced", backend="recorder")
    exp.log_metric("x", 1.0, 0)
    tracelet.stop_logging()
    assert [m.value for m in Collected.runs[exp.id]["metrics"]] == [1.0]


def test_register_plugin_checks_hooks_at_registration() -> None:
    class Typo:
        @hookimpl
        def backend_log_param(self, params: dict[str, Any]) -> None: ...

    with pytest.raises(ConfigurationError, match="did you mean `backend_log_params`"):
        tracelet.register_plugin(Typo, name="typo-inline")
    assert "typo-inline" not in {s.name for s in discovery.installed(tracelet.plugin.PluginType.BACKEND)}


def test_register_plugin_refuses_an_argument_the_hookspec_lacks_naming_hook_and_argument() -> None:
    class BadArgument:
        @hookimpl
        def backend_log_metrics(self, metrics: list[Metric], step: int) -> None: ...

    for plugin in (BadArgument, BadArgument()):  # a class (one instance per run) and an object, both refused
        with pytest.raises(ConfigurationError) as err:
            tracelet.register_plugin(plugin, name="bad-argument")
        msg = str(err.value)
        assert "plugin 'bad-argument'" in msg and "hook `backend_log_metrics` takes `step`" in msg
        assert "its arguments are: `metrics`, `run`" in msg
        assert "bad-argument" not in {s.name for s in discovery.installed(tracelet.plugin.PluginType.BACKEND)}


def test_an_installed_plugin_with_a_bad_argument_is_broken_in_tracelet_plugins_and_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _distribution(
        tmp_path / "site", "badarg-dist", "1.0", {"badarg": "tracelet_testplugin.backends:BadArgumentBackend"}
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    discovery.refresh()
    try:
        assert main(["plugins", "--json", "--check"]) == 1
        row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["badarg"]
        assert row["status"] == "broken" and row["hooks"] == ["backend_end_run", "backend_log_artifact",
            "backend_log_metrics", "backend_log_params", "backend_log_tags", "backend_snapshot_artifact",
            "backend_start_run", "plugin_setup"]  # fmt: skip
        assert row["error"].startswith("hook `backend_log_metrics` takes `step`, which the hookspec does not have")
        with pytest.raises(ConfigurationError, match="plugin 'badarg': hook `backend_log_metrics` takes `step`"):
            tracelet.start_logging("bad-argument", backend="badarg")
    finally:
        monkeypatch.undo()
        discovery.refresh()


def test_hooks_taking_a_subset_of_arguments_by_any_method_kind_are_accepted(unregister: list[str]) -> None:
    class Subsets:
        @hookimpl
        def backend_log_metrics(self) -> None: ...

        @staticmethod
        @hookimpl
        def backend_log_params(params: dict[str, Any], run: RunContext) -> None: ...

        @classmethod
        @hookimpl
        def backend_end_run(cls, status: RunStatus) -> None: ...

        @hookimpl
        def backend_flush(self, run: RunContext, timeout: float = 1.0) -> None: ...  # a default: left alone

        @hookimpl(wrapper=True, specname="backend_log_tags")
        def around_tags(plugin: Any) -> Any:  # noqa: N805 - the bound instance may have any name, as in pluggy
            return (yield)

    tracelet.register_plugin(Subsets, name="subsets")
    unregister.append("subsets")
    exp = tracelet.start_logging("subsets", backend="subsets")
    exp.log_params({"a": 1})
    exp.set_tags({"t": "x"})
    assert exp.stop() is not None


def test_register_plugin_with_an_unknown_type_names_the_valid_ones() -> None:
    class Fine:
        @hookimpl
        def backend_log_params(self, params: dict[str, Any]) -> None: ...

    with pytest.raises(ConfigurationError, match="unknown plugin type 'exporter'; use one of 'backend', 'framework'"):
        tracelet.register_plugin(Fine, name="typed-wrong", type="exporter")


def _distribution(root: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = ["[tracelet.backends]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def clashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    target = "tracelet_testplugin.backends:RecorderBackend"
    _distribution(site, "clash-one", "1.0", {"dupe": target})
    _distribution(site, "clash-two", "2.0", {"dupe": target, "recorder": target})
    monkeypatch.syspath_prepend(str(site))
    discovery.refresh()


@pytest.mark.usefixtures("clashing")
def test_two_distributions_with_one_name_is_an_error_naming_both() -> None:
    with pytest.raises(ConfigurationError) as err:
        tracelet.start_logging("clash", backend="dupe")
    msg = str(err.value)
    assert "'dupe' is registered by more than one distribution" in msg
    assert "clash-one 1.0" in msg and "clash-two 2.0" in msg and "TRACELET_DISABLED_PLUGINS=" in msg
    with pytest.raises(
        ConfigurationError, match="tracelet-testplugin 0.1.0.*clash-two 2.0|clash-two 2.0.*tracelet-testplugin"
    ):
        tracelet.start_logging("clash", backend="recorder")


@pytest.mark.usefixtures("clashing")
def test_hiding_one_distribution_settles_a_clash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_DISABLED_PLUGINS", "clash-two")
    spec = discovery.find(tracelet.plugin.PluginType.BACKEND, "dupe")
    assert spec.distribution == "clash-one"


@pytest.mark.usefixtures("clashing")
def test_plugins_check_marks_clashes_typos_and_import_failures_broken(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--json", "--check"]) == 1
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["typo"]["status"] == "broken" and "did you mean `backend_log_metrics`" in rows["typo"]["error"]
    assert "backend_log_metric" not in rows["typo"]["hooks"] and "backend_start_run" in rows["typo"]["hooks"]
    assert rows["dupe"]["status"] == "broken" and "clash-two" in rows["dupe"]["error"]
    assert rows["broken"]["status"] == "broken" and "ModuleNotFoundError" in rows["broken"]["error"]
    assert rows["undecorated"]["status"] == "ok" and "`backend_flush`" in rows["undecorated"]["warnings"][0]
    assert rows["local"]["status"] == "ok"
    assert rows["local"]["description"].startswith("Embedded local store")
    assert rows["local"]["capabilities"] == ["metrics", "params", "tags", "artifacts"]


def test_plugins_table_shows_status_description_and_capabilities(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACELET_LOAD_PLUGINS", "recorder,typo")
    assert main(["plugins"]) == 0  # without --check, a broken plugin is shown, not an exit status
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "DISTRIBUTION", "VERSION", "STATUS", "DESCRIPTION"]
    assert any(line.split()[:5] == ["typo", "backend", "tracelet-testplugin", "0.1.0", "broken"] for line in lines)
    assert any(line.split()[:5] == ["local", "backend", "tracelet", "0.1.0", "ok"] for line in lines)
    assert "local (backend): capabilities: metrics, params, tags, artifacts; hooks:" in out
    assert "  BROKEN: unknown hook `backend_log_metric`; did you mean `backend_log_metrics`?" in out
    assert main(["plugins", "--check"]) == 1
    monkeypatch.setenv("TRACELET_LOAD_PLUGINS", "recorder")
    capsys.readouterr()
    assert main(["plugins", "--check"]) == 0


class ParamsOnly:
    """Takes params and nothing else: metrics and tags have no hook here."""

    got: dict[str, Any] = {}

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        ParamsOnly.got.update(params)


def _metrics_params_and_a_tag(name: str, backends: list[str]) -> tuple[Any, Any]:
    """A run of 1000 metric points, one params call and one tag; the experiment and its stop report."""
    exp = tracelet.start_logging(name, backend=backends)
    for i in range(1000):
        exp.log_metric("loss", float(i), i)
    exp.log_params({"lr": 0.1})
    exp.set_tags({"team": "a"})
    report = exp.stop()
    assert report is not None
    return exp, report


def test_a_backend_without_a_metrics_hook_reports_it_instead_of_counting_points_delivered(
    unregister: list[str],
) -> None:
    from tracelet.store import open_run

    tracelet.register_plugin(ParamsOnly, name="params-only")
    unregister.append("params-only")
    exp, report = _metrics_params_and_a_tag("no-hook", ["params-only"])
    mine = report.backends["params-only"]
    assert mine.no_hook == {"metrics": 1000, "tags": 1}
    assert mine.delivered == 1 and mine.undelivered == 0 and ParamsOnly.got == {"lr": 0.1}
    assert open_run(exp.id).meta["delivery"]["params-only"]["no_hook"] == {"metrics": 1000, "tags": 1}


class JournalReader(ParamsOnly):
    """A store that reads the run's journal itself for metrics (and declares it), taking params by hook."""

    journal_record = ("metrics",)


def test_a_store_whose_record_is_the_journal_counts_those_kinds_delivered(unregister: list[str]) -> None:
    from tracelet.store import open_run

    tracelet.register_plugin(JournalReader, name="journal-reader")
    unregister.append("journal-reader")
    exp, report = _metrics_params_and_a_tag("journaled", ["journal-reader", "local"])
    reader = report.backends["journal-reader"]
    assert reader.no_hook == {"tags": 1} and reader.delivered == 1001  # the tag is still reported: not declared
    local = report.backends["local"]  # the built-in store: the journal is its record of all three kinds
    assert local.no_hook == {} and local.delivered == report.events and local.undelivered == 0
    assert len(open_run(exp.id).metrics()["loss"]) == 1000


def test_a_collector_with_a_misspelled_hook_is_reported_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tracelet")
    exp = tracelet.start_logging("typo-collector", backend="local")
    tracelet.stop_logging()
    from tracelet.store import open_run

    messages = [r.getMessage() for r in caplog.records if "typocollector" in r.getMessage()]
    assert messages and "unknown hook `collector_samples`; did you mean `collector_sample`?" in messages[0]
    assert "never" not in open_run(exp.id).metrics()


def test_a_distribution_claiming_local_is_ignored_with_one_warning_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The built-in store cannot be hijacked: `local` from a third party loses to the core's, which the runs
    that name no backend keep using; that distribution's other backends stay selectable."""
    site = tmp_path / "site"
    target = "tracelet_testplugin.backends:RecorderBackend"
    _distribution(site, "hijacker", "6.6", {"local": target, "hijacker-extra": target})
    monkeypatch.syspath_prepend(str(site))  # first on sys.path: before the core distribution
    discovery.refresh()
    discovery._shadowed_warned.clear()
    caplog.set_level(logging.WARNING, logger="tracelet")
    spec = discovery.find(tracelet.plugin.PluginType.BACKEND, "local")
    assert spec.distribution == "tracelet" and spec.value == "tracelet.backends.local:LocalBackend"
    with tracelet.start_logging("no-backend-named") as exp:
        exp.log_metric("x", 1.0, 0)
    assert exp.run_dir is not None and (Path(exp.run_dir) / "events.bin").exists()
    warnings = [r.getMessage() for r in caplog.records if "hijacker" in r.getMessage()]
    assert len(warnings) == 1 and "'local'" in warnings[0] and "hijacker 6.6" in warnings[0]
    assert discovery.find(tracelet.plugin.PluginType.BACKEND, "hijacker-extra").distribution == "hijacker"
    assert [s.distribution for s in discovery.installed(tracelet.plugin.PluginType.BACKEND) if s.name == "local"] == [
        "tracelet"
    ]
    assert "local" not in discovery.clashes(tracelet.plugin.PluginType.BACKEND)


def test_a_raising_hook_logs_its_traceback_exactly_once_and_run_json_keeps_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Buggy:
        calls = 0

        @hookimpl
        def backend_log_metrics(self, metrics: list[Metric]) -> None:
            Buggy.calls += 1
            ratio = len(metrics) / 0  # the author's bug: every batch raises
            print(ratio)

    tracelet.register_plugin(Buggy, name="buggy")
    try:
        caplog.set_level(logging.DEBUG, logger="tracelet")
        exp = tracelet.start_logging("buggy-run", backend=["local", "buggy"], config={"buggy_stop_timeout": 1.0})
        for i in range(50):
            exp.log_metric("x", float(i), i)
        report = exp.stop()
    finally:
        tracelet.unregister_plugin("buggy")
    assert Buggy.calls >= 2  # retried: the later failures are counted, not logged again
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1
    text = caplog.text
    assert text.count("Traceback (most recent call last)") == 1 and "ratio = len(metrics) / 0" in text
    assert report is not None and report.backends["buggy"].errors["log_metrics: ZeroDivisionError"] == Buggy.calls
    kept = json.loads((Path(exp.run_dir) / "run.json").read_text())["delivery"]["buggy"]["tracebacks"]
    assert "ratio = len(metrics) / 0" in kept["log_metrics: ZeroDivisionError"]
