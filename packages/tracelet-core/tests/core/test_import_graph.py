"""The `tracelet` package has no import cycle, and `tracelet.core`'s imports point down its layers, counting every
import the AST holds.

Every kind counts: module-level, inside functions (lazy imports), under `if TYPE_CHECKING:`, `import a.b`,
`from a import b` (an edge to `a.b` when that is a module, else to `a`) and relative imports. A cycle of
type-only imports is still a cycle: it means two modules cannot be understood (or split) apart. Importing
`a.b.c` also runs `a/__init__` and `a/b/__init__`, but those implicit parent imports are not edges here: a
package's `__init__` re-exporting its modules is not a dependency of the modules on each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tracelet

ROOT = Path(tracelet.__file__).resolve().parent  # .../src/tracelet


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _edges(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            # `import tracelet.core.x.y` where y is an attribute: the nearest enclosing module.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("tracelet") and target != name:
                out.add(target)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module name -> the `tracelet` modules it imports, for the package at `root`."""
    modules = _modules(root)
    return {name: _edges(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The edge finder is itself checked on a package with one import of each kind."""
    root = tmp_path / "tracelet"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tracelet.b import B\n")
    (root / "b.py").write_text("def f():\n    import tracelet.sub.c\n")
    (root / "sub" / "c.py").write_text("from .. import a\nfrom ..b import f\n")
    graph = import_graph(root)
    assert graph["tracelet.a"] == {"tracelet.b"}  # type-only
    assert graph["tracelet.b"] == {"tracelet.sub.c"}  # inside a function
    assert graph["tracelet.sub.c"] == {"tracelet.a", "tracelet.b"}  # relative
    assert find_cycles(graph) == [["tracelet.a", "tracelet.b", "tracelet.sub.c"]]


def test_tracelet_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 20  # the real package was found
    cycles = find_cycles(graph)
    detail = "\n".join(
        " <-> ".join(c) + "\n    " + "\n    ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c)
        for c in cycles
    )
    assert not cycles, f"import cycles inside tracelet:\n{detail}"


def test_core_imports_no_backend() -> None:
    graph = import_graph()
    offenders = {
        m: sorted(t for t in deps if t.startswith("tracelet.backends"))
        for m, deps in graph.items()
        if m.startswith("tracelet.core")
    }
    assert not {m: d for m, d in offenders.items() if d}


def test_plugins_import_tracelet_only_through_its_public_modules() -> None:
    """Tracelet's own plugins use what a third-party author can: `tracelet.plugin` (and the top-level API)."""
    packages = Path(__file__).resolve().parents[4] / "packages"
    allowed = {"tracelet", "tracelet.plugin"}
    offenders = []
    for path in sorted(packages.glob("tracelet-*/src/*/**/*.py")):
        if "tracelet-core" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            )
            offenders += [
                f"{path.relative_to(packages)}:{node.lineno} {n}"
                for n in names
                if (n == "tracelet" or n.startswith("tracelet.")) and n not in allowed
            ]
    assert list(packages.glob("tracelet-mlflow/src/*/*.py")), "the plugin packages were found"
    assert not offenders, "plugins reach into tracelet's internals:\n" + "\n".join(offenders)


# The layers of `tracelet.core` (docs: each layer package's docstring). The spec's import paths stay faces of
# their layers where the spec put them: the orchestrator is the engine's, the hookspecs the contract's, the
# experiment the run layer's. The artifact model (what plugins are handed) sits with the contract; the manager
# and the folder watcher deliver, as the engine does.
LAYERS: dict[str, str] = {
    "tracelet.core.contract": "contract",
    "tracelet.core.plugins": "contract",
    "tracelet.core.artifacts": "contract",
    "tracelet.core.artifacts.manager": "engine",
    "tracelet.core.artifacts.watch": "engine",
    "tracelet.core.engine": "engine",
    "tracelet.core.orchestrator": "engine",
    "tracelet.core.run": "run",
    "tracelet.core.experiment": "run",
}
# layer -> the layers it must not import (every import points down: contract < engine < run).
FORBIDDEN = {"contract": {"engine", "run"}, "engine": {"run"}}


def layer_of(module: str) -> str | None:
    """The layer of a `tracelet.core` module: its longest prefix in LAYERS (None outside the core)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = LAYERS.get(".".join(parts[:n]))
        if found is not None:
            return found
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points up a layer, and every import of the built-in collectors from the core."""
    out = []
    for module, targets in sorted(graph.items()):
        layer = layer_of(module)
        if not module.startswith("tracelet.core"):
            continue
        for target in sorted(targets):
            if target == "tracelet.collectors" or target.startswith("tracelet.collectors."):
                out.append(f"{module} imports {target} (the core never imports the built-in collectors)")
            elif layer is not None and layer_of(target) in FORBIDDEN.get(layer, ()):
                out.append(f"{module} ({layer}) imports {target} ({layer_of(target)})")
    return out


def test_every_core_module_is_in_a_layer() -> None:
    graph = import_graph()
    core = [m for m in graph if m.startswith("tracelet.core.")]
    assert len(core) > 30
    assert [m for m in core if layer_of(m) is None] == []


def test_the_layer_rule_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a contract module importing the engine, an engine module importing the run layer,
    and a core module importing a collector are each reported; downward imports are not."""
    graph = {
        "tracelet.core.contract.records": {"tracelet.core.engine.worker"},
        "tracelet.core.engine.worker": {"tracelet.core.run.config", "tracelet.core.contract.records"},
        "tracelet.core.run.config": {"tracelet.core.engine.worker", "tracelet.core.contract.records"},
        "tracelet.core.artifacts.model": {"tracelet.collectors.checkpoints"},
        "tracelet.core.artifacts.manager": {"tracelet.core.engine.backoff", "tracelet.core.artifacts.model"},
    }
    assert layer_violations(graph) == [
        "tracelet.core.artifacts.model imports tracelet.collectors.checkpoints (the core never imports the "
        "built-in collectors)",
        "tracelet.core.contract.records (contract) imports tracelet.core.engine.worker (engine)",
        "tracelet.core.engine.worker (engine) imports tracelet.core.run.config (run)",
    ]


def test_core_imports_point_down_its_layers() -> None:
    """engine ↛ run, contract ↛ engine or run, and the core ↛ `tracelet.collectors`: counting lazy and
    type-only imports, as the cycle check does."""
    problems = layer_violations(import_graph())
    assert not problems, "imports against the layers of tracelet.core:\n" + "\n".join(problems)
