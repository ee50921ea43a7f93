"""`tracelet.plugin` is a static, typed surface: what a type checker sees is what exists at run time.

Its names are plain imports listed once in a literal `__all__` (no `__getattr__` resolving them late), the
distribution is marked typed, a third-party plugin written against it passes `mypy --strict`, importing it
loads no tracker library, the built-in collectors use nothing else of Tracelet, and the attributes plugins set
for the core to read (`journal_record`, `concurrent_batches`, `config_switch`) are declared on the spec classes.
"""

from __future__ import annotations

import ast
import collections.abc
import importlib
import importlib.util
import subprocess
import sys
import typing
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import tracelet.plugin
from tracelet.core.plugins import BackendPlugin, CollectorPlugin

SOURCE = Path(tracelet.plugin.__file__)


def test_all_is_one_literal_list_of_names_imported_by_the_module() -> None:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    assigned = [n for n in tree.body if isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]  # fmt: skip
    assert len(assigned) == 1 and isinstance(assigned[0].value, ast.List)
    listed = [ast.literal_eval(e) for e in assigned[0].value.elts]
    imported = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert listed == sorted(set(listed), key=listed.index), "a name is listed twice"
    assert set(listed) == imported - {"annotations"}, "every import is an export, and every export an import"
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert not functions & {"__getattr__", "__dir__"}, "no late resolution: type checkers could not follow it"
    assert listed == tracelet.plugin.__all__


def test_every_export_is_the_object_its_defining_module_holds() -> None:
    tree = ast.parse(SOURCE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert getattr(tracelet.plugin, alias.asname or alias.name) is getattr(module, alias.name)


def test_the_experiment_protocol_and_the_redaction_helpers_are_exported() -> None:
    from tracelet.core.contract.protocols import InstrumentedExperiment
    from tracelet.core.contract.redact import redact_text

    assert tracelet.plugin.InstrumentedExperiment is InstrumentedExperiment
    assert tracelet.plugin.redact_text("https://user:hunter2@example.invalid/x") == "https://***@example.invalid/x"
    assert tracelet.plugin.redact_text is redact_text
    assert tracelet.plugin.redact_mapping({"api_key": "k", "lr": 0.1}) == {"api_key": "***", "lr": 0.1}
    assert tracelet.plugin.redact_argv(["--token", "t", "--lr", "1"]) == ["--token", "***", "--lr", "1"]


def test_importing_the_surface_loads_no_tracker_library(python_env: dict[str, str]) -> None:
    code = (
        "import sys, tracelet.plugin\n"
        "heavy = ('mlflow', 'wandb', 'clearml', 'torch', 'numpy', 'lightning', 'transformers', 'yaml')\n"
        "print([m for m in heavy if m in sys.modules], [m for m in sys.modules if m.startswith('tracelet_')])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] []"


def test_builtin_collectors_import_only_tracelet_plugin() -> None:
    """The collectors published in the core's `tracelet.collectors` group are written like third-party ones."""
    modules = {ep.value.partition(":")[0] for ep in entry_points(group="tracelet.collectors")
               if ep.dist is not None and ep.dist.name == "tracelet"}  # fmt: skip
    assert {"tracelet.collectors.system", "tracelet.collectors.git", "tracelet.collectors.stdout"} <= modules
    offenders = []
    for name in sorted(modules):
        path = Path(importlib.util.find_spec(name).origin)  # type: ignore[union-attr,arg-type]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            found = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
            offenders += [f"{name}: {m}" for m in found if m.startswith("tracelet") and m != "tracelet.plugin"]
    assert not offenders


def test_the_attributes_plugins_set_are_declared_on_the_spec_classes() -> None:
    backend = typing.get_type_hints(BackendPlugin)
    assert backend["journal_record"] == collections.abc.Collection[str]
    assert backend["concurrent_batches"] is bool
    assert BackendPlugin.journal_record == () and BackendPlugin.concurrent_batches is False
    assert typing.get_type_hints(CollectorPlugin)["config_switch"] == str | None
    assert CollectorPlugin.config_switch == "track_system_metrics"
    # Declared attributes are not hooks: the plugin manager still knows exactly the spec's methods.
    from tracelet.core.plugins import hook_names, new_plugin_manager

    assert not {"journal_record", "concurrent_batches", "config_switch"} & set(hook_names())
    assert not hasattr(new_plugin_manager().hook, "journal_record")


THIRD_PARTY_PLUGIN = '''\
"""A backend as a third-party author writes it from the guide, importing only tracelet.plugin."""

from __future__ import annotations

from tracelet.plugin import (
    ArtifactResult,
    BackendOptions,
    ConfigurationError,
    InstrumentedExperiment,
    Metric,
    PluginMetadata,
    PluginType,
    RunContext,
    RunStatus,
    TraceletArtifact,
    VersionBook,
    find_version,
    hookimpl,
    link_or_copy,
    plan,
    redact_text,
    retry,
    write_version,
)


class Options(BackendOptions):
    endpoint: str = "http://localhost"


class AcmeBackend:
    journal_record = ("tags",)

    def __init__(self) -> None:
        self.points: list[tuple[str, float, int]] = []
        self.book = VersionBook(lambda name: [])

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(name="acme", version="1.0", type=PluginType.BACKEND)

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric], run: RunContext) -> None:
        self.points.extend((m.name, m.value, m.step) for m in metrics)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        if status is RunStatus.FAILED:
            raise ConfigurationError(redact_text("failed"))

    @hookimpl
    def backend_log_artifact(self, artifact: TraceletArtifact) -> ArtifactResult:
        version = self.book.version_for(artifact)
        planned = plan(artifact, version)
        number = find_version(artifact.name, "latest", lambda name: [1])
        return ArtifactResult(backend="acme", uri=planned.manifest_json(), version=f"{version}{number}")


def describe(experiment: InstrumentedExperiment) -> str:
    return retry(lambda: experiment.name, attempts=2)
'''


@pytest.mark.slow
def test_a_third_party_plugin_passes_mypy_strict(tmp_path: Path) -> None:
    """Tracelet is found as an installed, typed distribution (PEP 561), as in an author's own environment."""
    pytest.importorskip("mypy")
    (tmp_path / "acme_plugin.py").write_text(THIRD_PARTY_PLUGIN, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "acme_plugin.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    # ...and the check is real: a wrong use of an export is an error.
    (tmp_path / "acme_plugin.py").write_text(THIRD_PARTY_PLUGIN.replace("m.step", "m.iteration"), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "acme_plugin.py"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)  # fmt: skip
    assert out.returncode == 1 and '"Metric" has no attribute "iteration"' in out.stdout, out.stdout
