"""Patch a library when it is (or once it has been) imported, without ever importing it ourselves.

Guarantees:

- **Cheap when unused.** Attaching a run never imports torch, tensorboard or lightning. Patches for modules
  already in `sys.modules` are applied at once; for the others a `sys.meta_path` finder waits for the
  script's own import and applies them right after the module has executed (a post-import hook).
- **Once, never stacked.** A `Patcher` applies its patches when the first run attaches and removes them
  (and its finder) when the last one detaches. Every wrapper is marked, so a patch is never applied over
  itself, even by a second `Patcher` for the same module.
- **A stopped run receives nothing.** Wrappers read `Patcher.targets`, a tuple replaced (never mutated) on
  attach/detach, so the hot path takes no lock and a detached run is out of it at once.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, ClassVar

from tracelet.plugin import hookimpl

logger = logging.getLogger("tracelet")

Undo = Callable[[], None]
PatchFn = Callable[[ModuleType], list[Undo]]

MARK = "__tracelet_wrapped__"


def patch_attr(owner: Any, name: str, make: Callable[[Any], Any]) -> list[Undo]:
    """Replace `owner.name` with `make(original)`; returns how to undo it ([] when already ours or absent).

    Only an attribute defined on `owner` itself is replaced, so a subclass is never patched in place of its base.
    """
    original = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if original is None or getattr(original, MARK, False):
        return []
    wrapper = make(original)
    setattr(wrapper, MARK, True)
    wrapper.__wrapped__ = original
    setattr(owner, name, wrapper)

    def undo() -> None:
        current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if current is wrapper:  # someone patched over us: leave their wrapper (and ours inside it) alone
            setattr(owner, name, original)

    return [undo]


class _Loader:
    """Runs the real loader, then the patch callbacks; forwards everything else to the real loader.

    The finder and loader protocols are duck-typed (no `importlib.abc` base classes: importing it costs more
    than everything else this package does at start)."""

    def __init__(self, loader: Any, on_loaded: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._on_loaded = on_loaded

    def create_module(self, spec: Any) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Put the real loader back first: code that inspects `module.__spec__.loader` (importlib.resources,
        # reloads) must see the library's own loader, not ours.
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        self._on_loaded(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Finder:
    """Finds the watched modules through the other finders and wraps their loaders."""

    def __init__(self) -> None:
        self.watched: dict[str, list[Callable[[ModuleType], None]]] = {}

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        callbacks = self.watched.get(fullname)
        if not callbacks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # namespace package or legacy loader: nothing to wrap, patch on a later attach

        def on_loaded(module: ModuleType) -> None:
            for callback in list(self.watched.get(fullname, ())):
                callback(module)

        # Duck-typed (see _Loader): the import system needs only create_module/exec_module, while typeshed
        # declares the importlib.abc.Loader base class.
        spec.loader = _Loader(spec.loader, on_loaded)  # type: ignore[assignment]
        return spec


_finder = _Finder()
_finder_lock = threading.RLock()


def _watch(name: str, callback: Callable[[ModuleType], None]) -> None:
    with _finder_lock:
        _finder.watched.setdefault(name, []).append(callback)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)


def _unwatch(name: str, callback: Callable[[ModuleType], None]) -> None:
    with _finder_lock:
        callbacks = _finder.watched.get(name, [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            _finder.watched.pop(name, None)
        if not _finder.watched and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)


def finder_installed() -> bool:
    """Whether the post-import finder is in `sys.meta_path` (it is only while some run is attached)."""
    return _finder in sys.meta_path


class Patcher:
    """A set of per-module patches shared by every attached run.

    :param patches: module name -> function that patches the loaded module and returns its undo callbacks.
    """

    def __init__(self, name: str, patches: dict[str, PatchFn]) -> None:
        self.name = name
        self.patches = patches
        self.targets: tuple[Any, ...] = ()
        self._undo: list[Undo] = []
        self._lock = threading.RLock()
        self._callbacks: dict[str, Callable[[ModuleType], None]] = {}

    @property
    def active(self) -> bool:
        return bool(self.targets)

    def attach(self, experiment: Any) -> None:
        """Send what the patched libraries emit to `experiment` (too); the first attach installs the patches."""
        with self._lock:
            if any(t is experiment for t in self.targets):
                return
            first = not self.targets
            self.targets = (*self.targets, experiment)
            if first:
                self._install()

    def detach(self, experiment: Any) -> None:
        """Stop sending to `experiment`; the last detach removes every patch and the import hook."""
        with self._lock:
            self.targets = tuple(t for t in self.targets if t is not experiment)
            if not self.targets:
                self._uninstall()

    def _install(self) -> None:
        for module_name, patch in self.patches.items():
            module = sys.modules.get(module_name)
            if module is not None:
                self._apply(patch, module)
            else:
                callback = self._make_callback(patch)
                self._callbacks[module_name] = callback
                _watch(module_name, callback)

    def _make_callback(self, patch: PatchFn) -> Callable[[ModuleType], None]:
        def callback(module: ModuleType) -> None:
            with self._lock:
                if self.targets:
                    self._apply(patch, module)

        return callback

    def _apply(self, patch: PatchFn, module: ModuleType) -> None:
        try:
            self._undo.extend(patch(module))
        except Exception as exc:  # a library version we do not understand must not break the import or the run
            logger.warning("tracelet: cannot instrument %s for %s: %s", module.__name__, self.name, exc)

    def _uninstall(self) -> None:
        for module_name, callback in self._callbacks.items():
            _unwatch(module_name, callback)
        self._callbacks.clear()
        undo, self._undo = self._undo, []
        for fn in reversed(undo):
            try:
                fn()
            except Exception as exc:
                logger.warning("tracelet: cannot remove a %s patch: %s", self.name, exc)


class Sink:
    """One run as a capture target of a `Patcher`'s wrappers: the experiment they feed and its failure log."""

    def __init__(self, experiment: Any) -> None:
        self.experiment = experiment
        self.warn = WarnOnce()


class PatchingFramework:
    """A framework plugin whose capture is a set of `Patcher`s: one capture target (a "sink") per run, attached
    when the run starts and detached when it stops (one plugin instance per run).

    A subclass sets `patchers`, and `sink_type` when its wrappers keep more per run than a `Sink`; it overrides
    `patchers_for` when a patcher depends on the run's switches, and `released` to report on the sink once it
    is detached.
    """

    patchers: ClassVar[tuple[Patcher, ...]] = ()
    sink_type: ClassVar[type[Sink]] = Sink

    def __init__(self) -> None:
        self._sink: Any = None
        self._attached: tuple[Patcher, ...] = ()

    def patchers_for(self, experiment: Any) -> tuple[Patcher, ...]:
        """The patchers that capture into `experiment` (default: all of `patchers`)."""
        return self.patchers

    def released(self, sink: Any, experiment: Any) -> None:
        """Called once `sink` no longer receives anything (default: nothing to do)."""

    @hookimpl
    def framework_instrument(self, experiment: Any) -> None:
        """Start capturing into `experiment`; the first run to start installs the patches.

        :param experiment: the run being started.
        """
        self._sink = self.sink_type(experiment)
        self._attached = self.patchers_for(experiment)
        for patcher in self._attached:
            patcher.attach(self._sink)

    @hookimpl
    def framework_uninstrument(self, experiment: Any) -> None:
        """Stop capturing into `experiment`; the last run to stop removes the patches.

        :param experiment: the run being stopped.
        """
        sink, self._sink = self._sink, None
        attached, self._attached = self._attached, ()
        if sink is None:
            return
        for patcher in attached:
            patcher.detach(sink)
        self.released(sink, experiment)


def feed(targets: tuple[Any, ...], kind: str, capture: Callable[..., None], *args: Any) -> None:
    """`capture(sink, *args)` for every sink in `targets`; a failure is logged once per sink and kind (`sink.warn`)
    and never reaches the patched call."""
    for sink in targets:
        try:
            capture(sink, *args)
        except Exception as exc:
            sink.warn(kind, exc)


class WarnOnce:
    """Logs a capture failure once per kind, so a broken value never floods the log nor reaches training."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, kind: str, exc: BaseException) -> None:
        if kind not in self._seen:
            self._seen.add(kind)
            logger.warning("tracelet: %s not captured: %s: %s", kind, type(exc).__name__, exc)
