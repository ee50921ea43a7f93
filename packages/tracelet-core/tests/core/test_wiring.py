"""The composition root, `tracelet.core.engine.wiring.bind_backends`: the one way a live run, a node's system
metrics and a sync bind their backends (each run's own paths are covered by their tests; this is the function)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tracelet.core.contract.discovery import PluginSpec
from tracelet.core.contract.records import RunContext
from tracelet.core.engine.clock import SYSTEM, ManualClock
from tracelet.core.engine.wiring import bind_backends
from tracelet.core.orchestrator import Orchestrator
from tracelet.core.plugins import PluginType, hookimpl


class Tracker:
    """A backend plugin class: the core makes one instance per run."""

    @hookimpl
    def backend_log_metrics(self, metrics: list) -> None:
        pass


class NoClient:
    def __init__(self) -> None:
        raise RuntimeError("no client for this tracker")


def spec(name: str, target: type) -> PluginSpec:
    return PluginSpec(name, PluginType.BACKEND, f"tests:{target.__name__}", "tests", "0", target=target)


def context_for(name: str) -> RunContext:
    return RunContext(run_id=f"run-{name}", name="r", project="p", created_at=datetime.now(timezone.utc))


def test_each_plugin_is_instantiated_bound_to_its_context_and_given_a_worker_on_the_source() -> None:
    source = Orchestrator()
    workers = bind_backends([spec("a", Tracker), spec("b", Tracker)], context_for, source, cursor=7)
    assert [w.backend.name for w in workers] == ["a", "b"]
    plugins = [w.backend.plugin for w in workers]
    assert all(isinstance(p, Tracker) for p in plugins) and plugins[0] is not plugins[1]  # one instance each
    assert [w.backend.run.run_id for w in workers] == ["run-a", "run-b"]
    assert all(w.source is source and w.cursor == 7 and not w.is_alive() for w in workers)  # not started
    assert workers[0].hooks["m"] and not workers[0].hooks["p"]  # bound: its hooks are known


def test_a_plugin_that_cannot_be_made_raises_unless_on_error_takes_it() -> None:
    with pytest.raises(RuntimeError, match="no client"):
        bind_backends([spec("a", NoClient)], context_for, Orchestrator())
    seen: list[tuple[str, str]] = []
    workers = bind_backends([spec("bad", NoClient), spec("good", Tracker)], context_for, Orchestrator(),
                            on_error=lambda s, exc: seen.append((s.name, str(exc))))  # fmt: skip
    assert [w.backend.name for w in workers] == ["good"]
    assert seen == [("bad", "no client for this tracker")]


def test_accept_is_shown_each_new_instance_and_may_leave_it_out() -> None:
    offered: list[tuple[str, type]] = []

    def accept(s: PluginSpec, plugin: object) -> bool:
        offered.append((s.name, type(plugin)))
        return s.name == "b"

    workers = bind_backends([spec("a", Tracker), spec("b", Tracker)], context_for, Orchestrator(), accept=accept)
    assert offered == [("a", Tracker), ("b", Tracker)]
    assert [w.backend.name for w in workers] == ["b"]


def test_the_workers_measure_their_deadlines_on_the_clock_the_root_is_given() -> None:
    """One clock per run, given at construction: the orchestrator's, or real time when none is given."""
    clock = ManualClock()
    orch = Orchestrator(clock=clock)
    workers = bind_backends([spec("a", Tracker)], context_for, orch, clock=orch.clock)
    assert [w.clock for w in workers] == [clock]
    assert orch.add_backend(workers[0].backend).clock is clock  # a backend added later gets the same one
    assert [w.clock for w in bind_backends([spec("b", Tracker)], context_for, Orchestrator())] == [SYSTEM]
    assert Orchestrator().clock is SYSTEM
