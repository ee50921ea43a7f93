"""Finding and loading plugins through entry points.

Entry-point lookups cost milliseconds each, so they are cached per process; a plugin is imported only when a
run selects it (or `tracelet plugins` lists it). `TRACELET_LOAD_PLUGINS` and `TRACELET_DISABLED_PLUGINS` narrow
what is visible, by plugin name or distribution name, like llm's `LLM_LOAD_PLUGINS`: an empty
`TRACELET_LOAD_PLUGINS` hides every third-party plugin; plugins of the core distribution stay visible.

Plugins registered in-process (`tracelet.register_plugin`) are listed with the installed ones and are always
visible. Name clashes are never settled silently: two distributions publishing one name make selecting that
name a ConfigurationError naming both (hide one with `TRACELET_DISABLED_PLUGINS`); registering in-process a
name that is installed or already registered is refused unless `replace=True`, which warns.

The core distribution's own plugins (the `local` store, the built-in collectors) cannot be taken by an
installed package: a third-party distribution publishing one of their names is left out, with one warning
naming it; its plugins under other names stay usable.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import attrs

from tracelet.core.plugins import ENTRY_POINT_GROUPS, PluginMetadata, PluginType
from tracelet.exceptions import ConfigurationError

if TYPE_CHECKING:
    from importlib import metadata

logger = logging.getLogger("tracelet")

CORE_DISTRIBUTION = "tracelet"
IN_PROCESS = "<in-process>"  # the `distribution` of a plugin added with register_plugin


@attrs.frozen
class PluginSpec:
    """An installed plugin, known from its entry point and not imported yet."""

    name: str
    type: PluginType
    value: str
    distribution: str
    version: str
    entry_point: metadata.EntryPoint | None = attrs.field(default=None, eq=False, repr=False)
    target: Any = attrs.field(default=None, eq=False, repr=False)  # the object itself, when registered in-process

    def load(self) -> Any:
        """Import the plugin's object, or raise ConfigurationError naming the distribution and the cause."""
        if self.entry_point is None:
            return self.target
        try:
            return self.entry_point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"{self.type.value} plugin {self.name!r} (distribution {self.distribution} {self.version}, "
                f"entry point {self.value}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc

    def metadata(self, stated: Any) -> tuple[PluginMetadata, list[str]]:
        """The plugin's `PluginMetadata` completed from its entry point, and what the plugin stated wrongly.

        `stated` is what its `plugin_metadata` hook returned (None: nothing). `name` is the entry point's name,
        `type` its group, `distribution` and `version` those of the distribution that declares it: the plugin
        need not state them, and a stated value that disagrees is overruled (one message each, for `tracelet
        plugins` to show). A plugin added with `register_plugin` has no entry point: `name` and `type` are the
        registration's (overruling likewise); `distribution` and `version` are what it states, else
        "<in-process>" and "".
        """
        problems: list[str] = []
        if stated is None:
            stated = PluginMetadata()
        elif not isinstance(stated, PluginMetadata):
            problems.append(f"plugin_metadata returned {type(stated).__name__}, not a PluginMetadata; ignored")
            stated = PluginMetadata()
        known: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.entry_point is not None:
            known.update(distribution=self.distribution, version=self.version)
        source = "its entry point" if self.entry_point is not None else "register_plugin"
        for field, value in known.items():
            said = getattr(stated, field)
            if said not in (None, "") and said != value:
                shown = said.value if isinstance(said, PluginType) else said
                right = value.value if isinstance(value, PluginType) else value
                problems.append(
                    f"plugin_metadata states {field}={shown!r}, but {source} says {right!r}, which is used; "
                    f"leave {field} out of PluginMetadata (Tracelet fills it in)"
                )
        filled = attrs.evolve(stated, **known)
        if self.entry_point is None:
            filled.distribution = stated.distribution or IN_PROCESS
            filled.version = stated.version or ""
        return filled, problems


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
def _entry_points() -> Any:
    """Every installed entry point, read in one pass over the distributions (a pass costs about a tenth of a
    millisecond per installed distribution, and a run looks up three groups)."""
    from importlib import metadata  # ~20 ms of imports: paid when a run starts, not at `import tracelet`

    return metadata.entry_points()


@functools.cache
def _installed(group: str) -> tuple[PluginSpec, ...]:
    """Every entry point of `group`, clashing names included (one spec per distribution and name)."""
    ptype = next(t for t, g in ENTRY_POINT_GROUPS.items() if g == group)
    found: dict[tuple[str, str], PluginSpec] = {}
    for ep in _entry_points().select(group=group):
        dist = ep.dist
        spec = PluginSpec(
            name=ep.name,
            type=ptype,
            value=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else "?",
            version=dist.version if dist is not None else "?",
            entry_point=ep,
        )
        found.setdefault((ep.name, spec.distribution), spec)  # one distribution seen twice on sys.path: once
    return tuple(found.values())


_registered: dict[PluginType, dict[str, PluginSpec]] = {t: {} for t in PluginType}
_register_lock = threading.Lock()


_shadowed_warned: set[tuple[PluginType, str, str]] = set()


def _visible_installed(ptype: PluginType) -> list[PluginSpec]:
    specs = [s for s in _installed(ENTRY_POINT_GROUPS[ptype]) if _visible(s)]
    core = {s.name for s in specs if s.distribution == CORE_DISTRIBUTION}
    out = []
    for spec in specs:
        if spec.name in core and spec.distribution != CORE_DISTRIBUTION:
            _warn_shadowed(spec)
            continue
        out.append(spec)
    return out


def _warn_shadowed(spec: PluginSpec) -> None:
    key = (spec.type, spec.name, spec.distribution)
    with _register_lock:
        if key in _shadowed_warned:
            return
        _shadowed_warned.add(key)
    logger.warning(
        "tracelet: distribution %s %s registers the %s name %r (%s), which is Tracelet's own; it is ignored and "
        "the built-in one is used. Ask its authors to publish it under another name",
        spec.distribution,
        spec.version,
        spec.type.value,
        spec.name,
        spec.value,
    )


def installed(ptype: PluginType) -> list[PluginSpec]:
    """Plugins of one type that are installed (or registered in-process) and not hidden by the environment.

    A name published by several distributions is listed once (the first on sys.path); `clashes` names them all.
    """
    registered = dict(_registered[ptype])
    out: dict[str, PluginSpec] = {}
    for spec in _visible_installed(ptype):
        if spec.name not in registered:
            out.setdefault(spec.name, spec)
    out.update(registered)
    return list(out.values())


def clashes(ptype: PluginType) -> dict[str, list[PluginSpec]]:
    """Names that two or more visible distributions publish for `ptype`: name -> every spec of it."""
    by_name: dict[str, list[PluginSpec]] = {}
    for spec in _visible_installed(ptype):
        if spec.name not in _registered[ptype]:  # an in-process registration replaced them all
            by_name.setdefault(spec.name, []).append(spec)
    return {name: specs for name, specs in by_name.items() if len(specs) > 1}


def clash_message(ptype: PluginType, name: str, specs: list[PluginSpec]) -> str:
    sources = " and ".join(f"{s.distribution} {s.version} ({s.value})" for s in specs)
    hide = specs[-1].distribution
    return (
        f"{ptype.value} name {name!r} is registered by more than one distribution: {sources}. Uninstall one, "
        f"or hide one with TRACELET_DISABLED_PLUGINS={hide}"
    )


def register(
    plugin: Any, name: str, ptype: PluginType | str = PluginType.BACKEND, *, replace: bool = False
) -> PluginSpec:
    """Make `plugin` (a class, instantiated per run, or an object/module used as it is) selectable as `name`.

    Its hooks are checked now (an unknown hook name is a ConfigurationError). A name that an installed
    distribution or an earlier registration already uses is refused unless `replace=True`, which warns.
    """
    from tracelet.core.plugins import check_plugin

    try:
        ptype = PluginType(ptype)
    except ValueError:
        kinds = ", ".join(repr(t.value) for t in PluginType)
        raise ConfigurationError(f"register_plugin: unknown plugin type {ptype!r}; use one of {kinds}") from None
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError("register_plugin needs a non-empty name= for the plugin")
    name = name.strip()
    check_plugin(plugin, name)
    with _register_lock:
        taken = _registered[ptype].get(name)
        owners = [s for s in _visible_installed(ptype) if s.name == name]
        where = f"registered in-process ({taken.value})" if taken is not None else ""
        if owners:
            where = "installed by " + " and ".join(f"{s.distribution} {s.version}" for s in owners)
        if where and not replace:
            raise ConfigurationError(
                f"{ptype.value} name {name!r} is already {where}; pick another name, or pass replace=True to "
                "use this plugin instead in this process"
            )
        if where:
            logger.warning("tracelet: %s %r (%s) is replaced in this process by %r", ptype.value, name, where, plugin)
        spec = PluginSpec(
            name=name,
            type=ptype,
            value=getattr(plugin, "__qualname__", None) or getattr(plugin, "__name__", None) or repr(plugin),
            distribution=IN_PROCESS,
            version="",
            target=plugin,
        )
        _registered[ptype][name] = spec
    return spec


def unregister(name: str, ptype: PluginType | str = PluginType.BACKEND) -> bool:
    """Forget an in-process registration; True if there was one. Runs already started keep their plugin."""
    with _register_lock:
        return _registered[PluginType(ptype)].pop(name, None) is not None


def refresh() -> None:
    """Forget cached entry points (after installing a plugin in a running process).

    In-process registrations stay: they are not read from the environment.
    """
    _entry_points.cache_clear()
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
    found = next((s for s in specs if s.name == name), None)
    if found is None:
        folded = [s for s in specs if s.name.lower() == name.strip().lower()]  # "MLflow" means "mlflow"
        found = folded[0] if len(folded) == 1 else None
    if found is not None:
        clashing = clashes(ptype).get(found.name)
        if clashing:
            raise ConfigurationError(clash_message(ptype, found.name, clashing))
        return found
    names = ", ".join(sorted(s.name for s in specs)) or "none"
    close = difflib.get_close_matches(name.strip().lower(), sorted({s.name.lower() for s in specs}), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    msg = f"unknown {ptype.value} {name!r}{hint}; installed {ptype.value}s: {names}."
    if name in _core_extras():
        msg += f' Install it with: pip install "tracelet[{name}]"'
    raise ConfigurationError(msg)


def register_plugin(
    plugin: Any, name: str, type: PluginType | str = PluginType.BACKEND, *, replace: bool = False
) -> None:
    """Add a plugin in this process, without packaging it: a notebook, a test or an application's own backend.

    :param plugin: a class (one instance per run, like an entry point naming a class) or an object or module
        whose `@hookimpl` methods are used as they are.
    :param name: the name to select it by, e.g. ``Experiment(..., backend=["mine"])``.
    :param type: ``"backend"`` (default), ``"framework"`` or ``"collector"`` (a PluginType or its value).
    :param replace: use this plugin instead of an installed or earlier-registered one of the same name
        (a warning says so); without it such a clash is a ConfigurationError.
    :raises ConfigurationError: a clash (see `replace`), or an unknown hook name on the plugin.

    Entry points stay the way to publish a plugin; ``unregister_plugin(name, type)`` undoes this.
    """
    register(plugin, name, type, replace=replace)


def unregister_plugin(name: str, type: PluginType | str = PluginType.BACKEND) -> bool:
    """Remove a plugin added with `register_plugin`; True if it was registered."""
    return unregister(name, type)
