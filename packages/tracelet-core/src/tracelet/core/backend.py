"""A backend plugin bound to one run: its own plugin manager, so calling it reaches it alone."""

from __future__ import annotations

from typing import Any

import pluggy

from tracelet.core.discovery import PluginSpec
from tracelet.core.plugins import new_plugin_manager, register_checked
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
        register_checked(self.pm, plugin, name)  # unknown hook names fail start(), naming the closest real one
        self.details: dict[str, Any] = {}

    def implements(self, hook: str) -> bool:
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call one hook of this backend; `run` is passed to hooks that take it."""
        caller = getattr(self.pm.hook, hook)
        if "run" in caller.spec.argnames:
            kwargs["run"] = self.run
        return caller(**kwargs)

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"
