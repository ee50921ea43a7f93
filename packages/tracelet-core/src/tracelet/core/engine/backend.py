"""A plugin bound to one run: its own plugin manager, so calling it reaches it alone.

"Backend" names several things in Tracelet; each has its own name in code:

- a **backend plugin**: the tracker integration an entry point of `tracelet.backends` names (MLflowBackend);
- a **backend name**: how a user selects one (`backend=["mlflow"]`, `TRACELET_BACKEND`); `ArtifactResult.backend`,
  `BackendError.backend` and the keys of a stop report are backend names;
- `Backend` (here): a backend plugin bound to one run; `Experiment.backends` lists them;
- `BackendWorker` (`tracelet.core.engine.worker`): the thread that delivers to one `Backend`;
- `BackendReport` (`tracelet.core.contract.records`): what one backend received by the end of the run.

Framework plugins are bound the same way, as a `BoundPlugin` (not a `Backend`). How a watched folder notices
changes (watchdog or polling) is the watcher's `mechanism`.
"""

from __future__ import annotations

from typing import Any

import pluggy

from tracelet.core.contract.discovery import PluginSpec
from tracelet.core.contract.records import RunContext
from tracelet.core.plugins import BackendPlugin, new_plugin_manager, register_checked


def instantiate(obj: Any) -> Any:
    """An entry point names a class (one instance per run) or a module/object (used as it is)."""
    return obj() if isinstance(obj, type) else obj


class BoundPlugin:
    """One plugin bound to one run. `name` is the name the user selected it by."""

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
        """Call one hook of this plugin; `run` is passed to hooks that take it."""
        caller = getattr(self.pm.hook, hook)
        if "run" in caller.spec.argnames:
            kwargs["run"] = self.run
        return caller(**kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Backend(BoundPlugin):
    """One active backend of a run: a backend plugin bound to it, delivered to by its `BackendWorker`."""

    def journal_record(self) -> frozenset[str]:
        """The kinds of event ("metrics", "params", "tags", "summary") whose record is the run's journal itself: the
        plugin's `journal_record` attribute (docs/plugins.md), read once its run has started."""
        return frozenset(
            str(kind) for kind in getattr(self.plugin, "journal_record", BackendPlugin.journal_record) or ()
        )
