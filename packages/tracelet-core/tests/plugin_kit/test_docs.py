"""The plugin author guide (docs/plugins.md) documents every hookspec, and every hookspec documents itself
the way pytest's do: a `:param:` line per argument, what raising does, and whether it is optional.

The guide's hook reference is the hookspecs' docstrings, word for word: each `#### `hook(...)`` section is
what `render_section` makes of the hookspec (its signature, whether the first non-None result wins, and its
docstring with ``:param x:`` shown as ``- `x`:`` and ``:return:`` as ``- returns:``). After changing a
docstring, ``python tests/plugin_kit/test_docs.py --write`` rewrites those sections of the guide.
"""

from __future__ import annotations

import inspect
import re
import sys
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


def render_section(name: str, fn: object) -> str:
    """The guide's section for one hookspec, from the hookspec alone."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values() if p.name != "self")
    first = " — first non-None result wins" if getattr(fn, "tracelet_spec", {}).get("firstresult") else ""
    doc = inspect.getdoc(fn) or ""
    doc = re.sub(r"^:param (\w+):", r"- `\1`:", doc, flags=re.M)
    doc = re.sub(r"^:return:", "- returns:", doc, flags=re.M)
    return f"#### `{name}({args}) -> {sig.return_annotation}`{first}\n\n{doc}\n"


def reference_spans(text: str) -> dict[str, tuple[int, int]]:
    """Hook name -> (start, end) of its section in the guide's hook reference (heading to the next heading)."""
    start = text.index("## Hook reference")
    heads = [m for m in re.finditer(r"^#{2,4} ", text[start:], flags=re.M)][1:]
    spans = {}
    for i, m in enumerate(heads):
        found = re.match(r"#### `(\w+)\(", text[start + m.start() :])
        if found:
            end = start + heads[i + 1].start() if i + 1 < len(heads) else len(text)
            spans[found.group(1)] = (start + m.start(), end)
    return spans


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


@pytest.mark.parametrize("name", [n for n, _ in hookspecs()])
def test_the_guides_section_is_the_hookspec_docstring_word_for_word(name: str) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    spans = reference_spans(text)
    assert name in spans, f"docs/plugins.md has no `#### \\`{name}(...)\\`` section in its hook reference"
    begin, end = spans[name]
    in_guide = text[begin:end].rstrip("\n") + "\n"
    assert in_guide == render_section(name, dict(hookspecs())[name]), (
        f"docs/plugins.md's section on {name} differs from the hookspec's docstring in tracelet.core.plugins; "
        "run `python tests/plugin_kit/test_docs.py --write` to rewrite the guide from the hookspecs"
    )


def write_guide() -> None:
    """Rewrite the guide's hook sections from the hookspecs (the text between the sections is kept)."""
    text = GUIDE.read_text(encoding="utf-8")
    for name, (begin, end) in sorted(reference_spans(text).items(), key=lambda item: -item[1][0]):
        fn = dict(hookspecs()).get(name)
        if fn is not None:
            tail = "\n" if end < len(text) else ""
            text = text[:begin] + render_section(name, fn) + tail + text[end:]
    GUIDE.write_text(text, encoding="utf-8")


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


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    write_guide()
