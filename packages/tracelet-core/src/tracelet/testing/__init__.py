"""tracelet.testing: a conformance kit for backend plugins, run in the plugin author's own pytest suite.

Subclass `BackendConformance` in a test module (the subclass name must start with ``Test``), say which class
is your backend, what configuration it gets, and how to read a run back from your tracker::

    from tracelet.testing import BackendConformance, RunUnderTest, TrackedRun
    from tracelet_mytracker import MyTrackerBackend

    class TestMyTracker(BackendConformance):
        backend = MyTrackerBackend        # the class your entry point names (instantiated once per run)

        def backend_config(self, tmp_path):
            # what plugin_setup(config) and run.config receive; a fresh tmp_path per test
            return {"url": f"file://{tmp_path}/tracker"}

        def read_run(self, run: RunUnderTest) -> TrackedRun:
            # run.details: what your backend_start_run returned; run.config: the dict above
            data = my_client(run.config["url"]).fetch(run.details["id"])
            return TrackedRun(
                metrics={name: [(p.step, p.value, p.time_s) for p in points] for name, points in data.metrics},
                params=data.params, tags=data.tags, status=data.state,  # "FINISHED" / "FAILED" / "KILLED"
            )

Then ``pytest`` runs every ``test_*`` method inherited from the base class against your backend. Each one
drives it through Tracelet's real orchestrator (a real `Experiment`, its worker thread, batching and retries),
with a local store in ``tmp_path`` whose journal is the ground truth the tracker is compared with:

- start, and the run's metrics: every point, per metric in logging order, with its step and timestamp, across
  several batches; NaN and ±inf (±inf may be stored clamped to ±1.797e308, as MLflow does);
- params: plain, nested (stored as JSON or flattened with "/" or "."), and re-logged (`relogged_params`), and
  key/value tags (a later value wins), each when the plugin implements its hook (every hook is optional: the
  check is skipped, with the reason, otherwise); artifacts, when the plugin implements `backend_log_artifact`;
- a delivery hook that raises once and then succeeds: retried, nothing lost, nothing duplicated; and, when you
  override `inject_fault`, a failure of your own transport in the middle of a batch;
- stop statuses FINISHED, FAILED and KILLED, and several runs in one process, each keeping its own data;
- importing, when the plugin implements `backend_import_runs` and you override `import_source(run)`: the run
  read back out of your tracker has every point with its step and timestamp, and a second import writes nothing.
- for a plugin that declares `concurrent_batches` (docs/plugins.md), metric batches from several threads at
  once (the default ``max_in_flight``, 4), one failing once: every point once, read back in logging order; params and
  tags keep their rule (skipped for a plugin that does not declare it).

Knobs (class attributes): `plugin_name` (your own entry-point name works: the class under test stands in for
the installed plugin during each test), `timestamp_tolerance` (seconds; None when your tracker keeps no
timestamps), `value_rel_tol`, `relogged_params` ("latest" or "first"), `stop_timeout`. The kit is also
published as a pytest plugin (entry point ``pytest11``: ``tracelet``) that provides the `tracelet_isolated`
fixture: a clean ``TRACELET_*`` environment and local store in ``tmp_path``, for your other tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracelet.testing.conformance import BackendConformance, ConformanceError, RunUnderTest, TrackedRun

__all__ = ["BackendConformance", "ConformanceError", "RunUnderTest", "TrackedRun"]


def __getattr__(name: str) -> Any:
    # Lazy: pytest imports this package at startup for the `tracelet` pytest11 plugin (fixtures only), and
    # that must not import the conformance kit (and Tracelet's run machinery) into every pytest session.
    if name in __all__:
        from tracelet.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'tracelet.testing' has no attribute {name!r}")
