"""Plugins are found through real entry points, imported only when selected, and errors say what to do."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tracelet
from tracelet import ConfigurationError
from tracelet.core.contract import discovery
from tracelet.core.plugins import PluginType


def test_installed_backends_come_from_entry_points() -> None:
    names = {s.name for s in discovery.installed(PluginType.BACKEND)}
    assert {"local", "recorder", "failing", "slow", "flaky", "broken"} <= names
    local = discovery.find(PluginType.BACKEND, "local")
    assert local.distribution == "tracelet" and local.version == tracelet.__version__
    assert {s.name for s in discovery.installed(PluginType.FRAMEWORK)} >= {"testframework"}
    assert "system" in {s.name for s in discovery.installed(PluginType.COLLECTOR)}


def test_unknown_backend_lists_installed_ones() -> None:
    with pytest.raises(ConfigurationError) as err:
        tracelet.start_logging("x", backend="nonesuch")
    msg = str(err.value)
    assert "unknown backend 'nonesuch'" in msg and "local" in msg and "recorder" in msg
    assert "pip install" not in msg and "did you mean" not in msg  # nothing installed is close to it


def test_a_misspelled_backend_names_the_closest_installed_one() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown backend 'recroder' \(did you mean 'recorder'\?\)"):
        tracelet.start_logging("x", backend="recroder")


def test_missing_first_party_backend_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_DISABLED_PLUGINS", "mlflow,tracelet-mlflow")
    with pytest.raises(ConfigurationError, match=r'pip install "tracelet\[mlflow\]"'):
        tracelet.start_logging("x", backend="mlflow")


def test_plugin_that_fails_to_import_names_distribution_and_cause() -> None:
    with pytest.raises(ConfigurationError) as err:
        tracelet.start_logging("x", backend="broken")
    msg = str(err.value)
    assert "tracelet-testplugin" in msg and "ModuleNotFoundError" in msg
    assert "tracelet_testplugin_missing_dependency" in msg


def test_load_plugins_restricts_to_named_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_LOAD_PLUGINS", "recorder")
    names = {s.name for s in discovery.installed(PluginType.BACKEND)}
    assert "recorder" in names and "slow" not in names and "local" in names  # core plugins stay
    monkeypatch.setenv("TRACELET_LOAD_PLUGINS", "")
    assert {s.name for s in discovery.installed(PluginType.BACKEND)} == {"local"}
    monkeypatch.setenv("TRACELET_LOAD_PLUGINS", "tracelet-testplugin")
    assert "slow" in {s.name for s in discovery.installed(PluginType.BACKEND)}


def test_disabled_plugins_are_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_DISABLED_PLUGINS", "slow, testframework")
    assert "slow" not in {s.name for s in discovery.installed(PluginType.BACKEND)}
    assert "testframework" not in {s.name for s in discovery.installed(PluginType.FRAMEWORK)}
    with pytest.raises(ConfigurationError, match="unknown backend 'slow'"):
        tracelet.start_logging("x", backend="slow")


def test_entry_point_lookups_are_cached() -> None:
    first = discovery._installed("tracelet.backends")
    assert discovery._installed("tracelet.backends") is first


def test_only_selected_plugins_are_imported(python_env: dict[str, str], tmp_path) -> None:
    code = (
        "import sys, tracelet\n"
        "exp = tracelet.start_logging('lazy', backend='recorder', config={'track_system': False})\n"
        "assert 'tracelet_testplugin.backends' in sys.modules\n"
        "assert 'tracelet_testplugin.broken' not in sys.modules\n"
        "tracelet.stop_logging()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_import_tracelet_imports_no_backend_library_and_no_plugin(python_env: dict[str, str]) -> None:
    code = (
        "import sys, tracelet\n"
        "heavy = [m for m in ('mlflow', 'wandb', 'clearml', 'torch', 'numpy', 'lightning', 'psutil') if m in sys.modules]\n"
        "plugins = [m for m in sys.modules if m.startswith(('tracelet_', 'tracelet.backends'))]\n"
        "print(heavy, plugins)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


def test_a_backend_that_cannot_start_fails_start_and_ends_the_others() -> None:
    from tracelet.core.contract.records import RunStatus
    from tracelet.store import list_runs
    from tracelet_testplugin.backends import RECORDS

    with pytest.raises(ConfigurationError, match="bad-config"):
        tracelet.start_logging("bad", backend=["recorder", "misconfigured"])
    (run,) = list_runs()
    assert run.status == "FAILED"
    assert RECORDS[f"recorder:{run.id}"]["status"] is RunStatus.FAILED


def test_backend_names_are_forgiving_about_case_spaces_and_commas() -> None:
    exp = tracelet.start_logging("names", backend=" Recorder, LOCAL ", config={"recorder": {"fail_times": 1}})
    assert [b.name for b in exp.backends] == ["recorder", "local"]
    assert exp.backends[0].run.config == {"fail_times": 1}  # config keys follow the plugin's own name
    tracelet.stop_logging()
