"""Finding and loading plugins through entry points.

Entry-point lookups cost milliseconds each, so they are cached per process; a plugin is imported only when a
run selects it (or `tracelet plugins` lists it). `TRACELET_LOAD_PLUGINS` and `TRACELET_DISABLED_PLUGINS` narrow
what is visible, by plugin name or distribution name, like llm's `LLM_LOAD_PLUGINS`: an empty
`TRACELET_LOAD_PLUGINS` hides every third-party plugin; plugins of the core distribution stay visible.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import attrs

from tracelet.core.plugins import ENTRY_POINT_GROUPS, PluginType
from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from importlib import metadata

CORE_DISTRIBUTION = "tracelet"


@attrs.frozen
class PluginSpec:
    """An installed plugin, known from its entry point and not imported yet."""

    name: str
    type: PluginType
    value: str
    distribution: str
    version: str
    entry_point: metadata.EntryPoint = attrs.field(eq=False, repr=False)

    def load(self) -> Any:
        """Import the plugin's object, or raise ConfigurationError naming the distribution and the cause."""
        try:
            return self.entry_point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"{self.type.value} plugin {self.name!r} (distribution {self.distribution} {self.version}, "
                f"entry point {self.value}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc


def _split(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def _visible(spec: PluginSpec) -> bool:
    disabled = _split(os.environ.get("TRACELET_DISABLED_PLUGINS", ""))
    if spec.name in disabled or spec.distribution in disabled:
        return False
    load = os.environ.get("TRACELET_LOAD_PLUGINS")
    if load is None or spec.distribution == CORE_DISTRIBUTION:
        return True
    allowed = _split(load)
    return spec.name in allowed or spec.distribution in allowed


@functools.cache
def _installed(group: str) -> tuple[PluginSpec, ...]:
    from importlib import metadata  # ~20 ms of imports: paid when a run starts, not at `import tracelet`

    ptype = next(t for t, g in ENTRY_POINT_GROUPS.items() if g == group)
    found: dict[str, PluginSpec] = {}
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        spec = PluginSpec(
            name=ep.name,
            type=ptype,
            value=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else "?",
            version=dist.version if dist is not None else "?",
            entry_point=ep,
        )
        found.setdefault(ep.name, spec)  # the first on sys.path wins, as for imports
    return tuple(found.values())


def installed(ptype: PluginType) -> list[PluginSpec]:
    """Plugins of one type that are installed and not hidden by the environment."""
    return [s for s in _installed(ENTRY_POINT_GROUPS[ptype]) if _visible(s)]


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in a running process)."""
    _installed.cache_clear()
    _core_extras.cache_clear()


@functools.cache
def _core_extras() -> frozenset[str]:
    from importlib import metadata

    try:
        return frozenset(metadata.metadata(CORE_DISTRIBUTION).get_all("Provides-Extra") or ())
    except metadata.PackageNotFoundError:
        return frozenset()


def find(ptype: PluginType, name: str) -> PluginSpec:
    """The installed plugin called `name`, or ConfigurationError listing what is installed."""
    specs = installed(ptype)
    for spec in specs:
        if spec.name == name:
            return spec
    folded = [s for s in specs if s.name.lower() == name.strip().lower()]  # "MLflow" means "mlflow"
    if len(folded) == 1:
        return folded[0]
    names = ", ".join(sorted(s.name for s in specs)) or "none"
    msg = f"unknown {ptype.value} {name!r}; installed {ptype.value}s: {names}."
    if name in _core_extras():
        msg += f' Install it with: pip install "tracelet[{name}]"'
    raise ConfigurationError(msg)
