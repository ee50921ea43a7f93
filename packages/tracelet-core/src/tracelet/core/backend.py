"""A backend plugin bound to one run: its own plugin manager, so calling it reaches it alone."""

from __future__ import annotations

from typing import Any

import pluggy

from tracelet.core.discovery import PluginSpec
from tracelet.core.plugins import PluginMetadata, PluginType, new_plugin_manager
from tracelet.core.records import RunContext


def instantiate(obj: Any) -> Any:
    """An entry point names a class (one instance per run) or a module/object (used as it is)."""
    return obj() if isinstance(obj, type) else obj


class Backend:
    """One active backend of a run. `name` is the name the user selected it by."""

    def __init__(self, name: str, plugin: Any, run: RunContext, spec: PluginSpec | None = None) -> None:
        self.name = name
        self.plugin = plugin
        self.run = run
        self.spec = spec
        self.pm: pluggy.PluginManager = new_plugin_manager()
        self.pm.register(plugin, name=name)
        self.details: dict[str, Any] = {}

    def implements(self, hook: str) -> bool:
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call one hook of this backend; `run` is passed to hooks that take it."""
        caller = getattr(self.pm.hook, hook)
        if "run" in caller.spec.argnames:
            kwargs["run"] = self.run
        return caller(**kwargs)

    @property
    def metadata(self) -> PluginMetadata:
        meta = self.pm.hook.plugin_metadata()
        if meta is None:
            meta = PluginMetadata(
                name=self.name,
                version=self.spec.version if self.spec else "?",
                description=(type(self.plugin).__doc__ or "").strip().split("\n")[0],
                type=PluginType.BACKEND,
                distribution=self.spec.distribution if self.spec else None,
            )
        return meta

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"
