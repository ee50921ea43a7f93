"""The plugin author guide (docs/plugins.md) documents every hookspec, and every hookspec documents itself
the way pytest's do: a `:param:` line per argument, what raising does, and whether it is optional."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import tracelet.plugin
from tracelet.core import plugins

GUIDE = Path(__file__).resolve().parents[4] / "docs" / "plugins.md"


def hookspecs() -> list[tuple[str, object]]:
    found = []
    for spec in plugins.SPEC_CLASSES:
        for name, fn in vars(spec).items():
            if callable(fn) and getattr(fn, "tracelet_spec", None) is not None:
                found.append((name, fn))
    return found


def arguments(fn: object) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]  # type: ignore[arg-type]


def sections() -> dict[str, str]:
    """Hook name -> its section of the guide's hook reference."""
    text = GUIDE.read_text(encoding="utf-8")
    reference = text[text.index("## Hook reference") :]
    parts = re.split(r"^#### `(\w+)\(", reference, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_the_spec_has_hooks_to_check() -> None:
    names = [n for n, _ in hookspecs()]
    assert {"backend_log_metrics", "plugin_setup", "framework_instrument", "collector_sample"} <= set(names)
    assert names == plugins.hook_names()  # the typo check knows exactly the hookspecs


@pytest.mark.parametrize("name", [n for n, _ in hookspecs()])
def test_every_hookspec_is_in_the_guide_with_its_arguments(name: str) -> None:
    documented = sections()
    assert name in documented, f"docs/plugins.md has no `#### \\`{name}(...)\\`` section in its hook reference"
    fn = dict(hookspecs())[name]
    for arg in arguments(fn):
        assert f"- `{arg}`:" in documented[name], f"the guide's section on {name} does not describe `{arg}`"


def test_the_guide_documents_no_hook_that_does_not_exist() -> None:
    assert set(sections()) == {n for n, _ in hookspecs()}


@pytest.mark.parametrize("name", [n for n, _ in hookspecs()])
def test_every_hookspec_docstring_has_param_lines_raising_and_optional(name: str) -> None:
    fn = dict(hookspecs())[name]
    doc = inspect.getdoc(fn) or ""
    for arg in arguments(fn):
        assert f":param {arg}:" in doc, f"{name}: no `:param {arg}:` line"
    assert "Raising:" in doc, f"{name}: the docstring does not say what raising does"
    assert re.search(r"\b(Optional|Required)\b", doc), f"{name}: the docstring does not say whether it is optional"
    if inspect.signature(fn).return_annotation not in ("None", None):  # type: ignore[arg-type]
        assert ":return:" in doc, f"{name}: the docstring does not say what the return value is used for"


def test_the_guide_names_everything_tracelet_plugin_exports() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    missing = [name for name in tracelet.plugin.__all__ if f"`{name}`" not in text]
    assert not missing, f"docs/plugins.md does not mention tracelet.plugin exports {missing}"
