"""`PluginMetadata`'s name, version, type and distribution come from the entry point (or the `register_plugin`
call), so a plugin states only what differs: its description and capabilities. A stated value that disagrees is
overruled, and `tracelet plugins` warns about it.

Installed plugins are real entry points (this repository's distributions, and a distribution's dist-info folder
put on sys.path for a plugin that states stale values).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tracelet
from tracelet.cli import main
from tracelet.core.contract import discovery
from tracelet.core.engine.backend import instantiate
from tracelet.plugin import PluginMetadata, PluginType, hookimpl


def _described(ptype: PluginType, name: str) -> tuple[PluginMetadata, list[str]]:
    spec = discovery.find(ptype, name)
    plugin = instantiate(spec.load())
    stated = plugin.plugin_metadata() if hasattr(plugin, "plugin_metadata") else None
    return spec.metadata(stated)


@pytest.mark.parametrize(
    ("ptype", "name", "distribution", "description"),
    [
        (PluginType.BACKEND, "local", "tracelet", "Embedded local store"),
        (PluginType.BACKEND, "mlflow", "tracelet-mlflow", "Logs runs to MLflow"),
        (PluginType.FRAMEWORK, "tensorboard", "tracelet-torch", "Captures torch.utils.tensorboard"),
        (PluginType.FRAMEWORK, "testframework", "tracelet-testplugin", ""),  # no plugin_metadata hook at all
    ],
)
def test_name_version_type_and_distribution_come_from_the_entry_point(
    ptype: PluginType, name: str, distribution: str, description: str
) -> None:
    meta, wrong = _described(ptype, name)
    assert (meta.name, meta.type, meta.distribution, meta.version) == (name, ptype, distribution, tracelet.__version__)
    assert meta.description.startswith(description) and wrong == []


def test_our_plugins_state_only_what_differs() -> None:
    spec = discovery.find(PluginType.BACKEND, "mlflow")
    stated = instantiate(spec.load()).plugin_metadata()
    assert (stated.name, stated.version, stated.type, stated.distribution) == ("", "", None, None)
    assert "attach" in stated.capabilities


def test_explicit_values_that_agree_are_accepted_without_a_word() -> None:
    spec = discovery.find(PluginType.BACKEND, "mlflow")
    agreeing = PluginMetadata(
        name="mlflow", version=spec.version, type=PluginType.BACKEND, distribution="tracelet-mlflow", description="d"
    )
    meta, wrong = spec.metadata(agreeing)
    assert wrong == [] and meta.description == "d" and meta.name == "mlflow"


@pytest.fixture
def stated_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    info = tmp_path / "site" / "tracelet_stated-2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tracelet-stated\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text(
        "[tracelet.backends]\nstated = tracelet_testplugin.backends:StatedMetadataBackend\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    discovery.refresh()
    yield
    monkeypatch.undo()
    discovery.refresh()


@pytest.mark.usefixtures("stated_plugin")
def test_a_stated_value_that_disagrees_is_overruled_and_tracelet_plugins_warns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    meta, wrong = _described(PluginType.BACKEND, "stated")
    assert (meta.name, meta.version, meta.type, meta.distribution) == (
        "stated", "2.0", PluginType.BACKEND, "tracelet-stated"
    )  # fmt: skip
    assert meta.description == "States everything" and meta.capabilities == ["metrics"]
    assert len(wrong) == 4 and "plugin_metadata states name='old-name', but its entry point says 'stated'" in wrong[0]
    assert any("version='0.0.1'" in w and "'2.0'" in w for w in wrong)
    assert any("type='framework'" in w and "'backend'" in w for w in wrong)

    assert main(["plugins", "--json", "--check"]) == 1  # others (typo, broken) are broken; "stated" is not
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)}["stated"]
    assert row["status"] == "ok" and row["description"] == "States everything"
    assert (row["distribution"], row["version"], row["type"]) == ("tracelet-stated", "2.0", "backend")
    assert row["warnings"] == wrong


class InProcess:
    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(name="renamed", version="1.2", distribution="acme-tools", description="mine")


@pytest.fixture
def registered() -> Iterator[Any]:
    tracelet.register_plugin(InProcess, name="in-process-meta")
    yield discovery.find(PluginType.BACKEND, "in-process-meta")
    tracelet.unregister_plugin("in-process-meta")


def test_a_registered_plugin_gets_name_and_type_from_register_plugin_and_keeps_its_stated_version(
    registered: discovery.PluginSpec,
) -> None:
    meta, wrong = registered.metadata(InProcess().plugin_metadata())
    assert (meta.name, meta.type, meta.version, meta.distribution) == (
        "in-process-meta", PluginType.BACKEND, "1.2", "acme-tools"
    )  # fmt: skip
    assert wrong == ["plugin_metadata states name='renamed', but register_plugin says 'in-process-meta', which is "
                     "used; leave name out of PluginMetadata (Tracelet fills it in)"]  # fmt: skip
    bare, _ = registered.metadata(PluginMetadata(description="d"))
    assert (bare.distribution, bare.version) == (discovery.IN_PROCESS, "")


def test_plugin_metadata_that_is_not_a_plugin_metadata_is_reported(registered: discovery.PluginSpec) -> None:
    meta, wrong = registered.metadata({"description": "a dict"})
    assert meta.name == "in-process-meta" and meta.description == ""
    assert wrong == ["plugin_metadata returned dict, not a PluginMetadata; ignored"]
