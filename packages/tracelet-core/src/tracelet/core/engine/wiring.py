"""The composition root: the one place a run's backends are put together.

A live run (`Experiment.start`), a node's system metrics in a distributed job (`tracelet.core.run.idle`) and a
sync of a stored run (`tracelet.transfer.sync`) all bind their backends here, the same way: each selected backend
plugin is instantiated (one instance per run, so per-run state lives on it), bound to the `RunContext` its
caller gives for it (`Backend`, with a plugin manager of its own), and handed to the `BackendWorker` that
delivers to it from the caller's event source (the orchestrator, or a stored run's journal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tracelet.core.engine.backend import Backend, instantiate
from tracelet.core.engine.clock import SYSTEM, Clock
from tracelet.core.engine.worker import BackendWorker, EventSource

if TYPE_CHECKING:
    from tracelet.core.contract.discovery import PluginSpec
    from tracelet.core.contract.records import RunContext


def bind_backends(
    specs: Iterable[PluginSpec],
    context_for: Callable[[str], RunContext],
    source: EventSource,
    *,
    cursor: int = 0,
    accept: Callable[[PluginSpec, Any], bool] | None = None,
    on_error: Callable[[PluginSpec, Exception], None] | None = None,
    clock: Clock = SYSTEM,
) -> list[BackendWorker]:
    """One worker per backend plugin in `specs`, in order, each bound to its run and reading from `source`.

    :param specs: the backend plugins, as discovery found them; each is bound under its `spec.name`.
    :param context_for: the `RunContext` of the backend of that name (its config, the run's metadata).
    :param source: where the workers read events from (`EventSource`); the workers are not started.
    :param cursor: the first event each worker delivers (a sync resumes from there; a live run starts at 0).
    :param accept: given each spec and its new plugin instance; a plugin it refuses is left out (a node's
        system metrics take only backends that can attach to another process's run).
    :param on_error: called when a plugin cannot be loaded or instantiated, which then is left out; without
        it the error is raised (a live run's start() and a sync fail, naming the backend).
    :param clock: what the workers' stop deadlines and backoff waits are measured on (`tracelet.core.engine.clock`;
        a live run passes its orchestrator's).
    """
    workers = []
    for spec in specs:
        try:
            plugin = instantiate(spec.load())
        except Exception as exc:
            if on_error is None:
                raise
            on_error(spec, exc)
            continue
        if accept is not None and not accept(spec, plugin):
            continue
        backend = Backend(spec.name, plugin, context_for(spec.name), spec)
        workers.append(BackendWorker(backend, source, cursor=cursor, clock=clock))
    return workers
