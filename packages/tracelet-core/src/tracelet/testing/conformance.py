"""The conformance tests behind `tracelet.testing.BackendConformance` (see the package docstring for use).

Guarantees: every check compares what the author's `read_run` returns with the run's journal in the local
store (what Tracelet was given), so a test fails on a lost, duplicated, reordered or altered point and says
which one, with a hint at the usual cause. Nothing here patches Tracelet: runs go through a real `Experiment`,
the plugin is added with `tracelet.register_plugin`, and faults are injected as pluggy hook wrappers on a
subclass of the author's class, so the plugin's own code runs unchanged.
"""

from __future__ import annotations

import ast
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from tracelet.core.contract.discovery import register_plugin, unregister_plugin
from tracelet.core.contract.records import Metric, RunStatus
from tracelet.core.engine.inflight import DEFAULT_IN_FLIGHT
from tracelet.core.experiment import Experiment
from tracelet.core.plugins import hookimpl, implemented_hooks
from tracelet.settings import TraceletSettings

_DELIVERY_HOOKS = ("backend_log_metrics", "backend_log_params", "backend_log_tags")
_FLOAT_MAX = 1.7976931348623157e308


class ConformanceError(AssertionError):
    """A backend does not meet the plugin contract; the message says how."""


@attrs.define
class TrackedRun:
    """A run as read back from the tracker by the author's `read_run`.

    :param metrics: metric name -> its points in the order the tracker returns them, each a `Metric`, an object
        with `step`, `value` (and `timestamp`) attributes, or a tuple ``(step, value[, timestamp])``;
        timestamps in seconds since the epoch (None when the tracker keeps none).
    :param params: parameter name -> value as stored (strings are fine: values are compared loosely, so
        ``"0.1"`` matches 0.1 and ``"true"`` matches True).
    :param tags: key/value tags as stored (the tracker's own system tags may be there too).
    :param status: the run's final state in Tracelet's words: "FINISHED", "FAILED", "KILLED" (or a RunStatus);
        map your tracker's states in `read_run`.
    :param artifacts: names of the artifacts the tracker holds for the run, or None if the reader does not say.
    """

    metrics: dict[str, list[Any]] = attrs.field(factory=dict)
    params: dict[str, Any] = attrs.field(factory=dict)
    tags: dict[str, Any] = attrs.field(factory=dict)
    status: Any = None
    artifacts: list[str] | None = None


@attrs.frozen
class RunUnderTest:
    """What the kit knows about a run it drove, handed to `read_run`.

    :param run_id: Tracelet's run id (`RunContext.run_id`).
    :param name: the run's name; :param project: its project.
    :param details: what the backend's `backend_start_run` returned (its tracker's run id, URL, ...).
    :param config: the configuration the backend was given (`backend_config(tmp_path)`).
    :param run_dir: the run's folder in the local store.
    :param report: the backend's `BackendReport` from `stop()` (delivered, undelivered, errors, details).
    """

    run_id: str
    name: str
    project: str
    details: dict[str, Any]
    config: dict[str, Any]
    run_dir: Path | None
    report: Any


class BackendConformance:
    """Base class of a backend's conformance tests; subclass it as ``Test<YourBackend>``.

    Required: `backend` (the plugin class) and `read_run`. Optional: `backend_config`, `inject_fault` and the
    class attributes below.
    """

    backend: ClassVar[type | None] = None
    #: the name the plugin is registered under for the tests (config is addressed to it); your own entry-point
    #: name works too: the class under test stands in for the installed one during each test
    plugin_name: ClassVar[str] = "undertest"
    #: how far a stored timestamp may be from the logged one, in seconds; None: the tracker stores none
    timestamp_tolerance: ClassVar[float | None] = 0.0011
    #: relative tolerance on metric values (0: exact; raise it for a tracker that stores float32)
    value_rel_tol: ClassVar[float] = 0.0
    #: which value a tracker keeps for a param logged twice with different values: "latest" or "first"
    relogged_params: ClassVar[str] = "latest"
    #: seconds each run's stop() may take to deliver everything
    stop_timeout: ClassVar[float] = 60.0
    #: metric points logged per flush in the metric tests (several flushes: several batches)
    points_per_batch: ClassVar[int] = 1500

    # -- what the author provides ------------------------------------------------------------------------------
    def backend_config(self, tmp_path: Path) -> dict[str, Any]:
        """The configuration for your plugin (its `plugin_setup(config)` and `run.config`), per test."""
        return {}

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        """Read `run` back from your tracker (a fresh client, not the plugin's own state)."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_run(run) -> TrackedRun")

    def import_source(self, run: RunUnderTest) -> tuple[str, dict[str, Any]]:
        """Optional, for a plugin that implements `backend_import_runs`: where `run` (just delivered to your
        tracker) can be imported from, as ``(SOURCE, config)`` for ``tracelet import --from <name>``, holding
        that run alone (e.g. ``(tracking_uri, {"run_ids": [run.details["run_id"]]})``)."""
        raise NotImplementedError

    def inject_fault(self, plugin: Any) -> None:
        """Optional: make your tracker's transport fail once in the middle of the next metric batch.

        Called on the plugin instance right after `backend_start_run` returned (the client exists by then),
        e.g. wrap the method that sends one request so its second call raises `ConnectionError` once. The kit
        then logs one batch bigger than your request size and checks nothing is lost or stored twice.
        """
        raise NotImplementedError

    # -- fixtures --------------------------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _tracelet_kit(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        for key in list(os.environ):
            if key.startswith("TRACELET_"):
                monkeypatch.delenv(key)
        self.setup_kit(tmp_path)
        yield
        self.teardown_kit()

    def setup_kit(self, tmp_path: Path) -> None:
        """What the autouse fixture does before each test (call it yourself to drive a check outside pytest)."""
        if self.relogged_params not in ("latest", "first"):
            raise ConformanceError(f"relogged_params must be 'latest' or 'first', not {self.relogged_params!r}")
        self.tmp_path = tmp_path
        self._runs = 0

    def teardown_kit(self) -> None:
        unregister_plugin(self.plugin_name)

    # -- driving runs ----------------------------------------------------------------------------------------------
    def plugin_class(self, *, fault_once: bool = False, author_fault: bool = False) -> type:
        """The class registered for a run: the author's own, or a subclass with fault-injecting hook wrappers."""
        cls = self.backend
        if not isinstance(cls, type):
            raise ConformanceError(f"{type(self).__name__}.backend must be the plugin class, got {cls!r}")
        if not (fault_once or author_fault):
            return cls
        namespace: dict[str, Any] = {}
        if fault_once:
            for hook in _DELIVERY_HOOKS:
                if _implements(cls, hook):
                    namespace[f"_kit_fault_{hook}"] = _raise_once_wrapper(hook)
        if author_fault:
            kit = self

            @hookimpl(wrapper=True, specname="backend_start_run")
            def _kit_after_start(self: Any) -> Any:
                result = yield
                kit.inject_fault(self)
                return result

            namespace["_kit_after_start"] = _kit_after_start
        return type(f"{cls.__name__}UnderFault", (cls,), namespace)

    def run_experiment(
        self,
        body: Callable[[Experiment], None],
        *,
        status: RunStatus | str = RunStatus.FINISHED,
        raise_inside: BaseException | None = None,
        tags: list[str] | None = None,
        plugin: type | None = None,
        config: dict[str, Any] | None = None,
    ) -> RunUnderTest:
        """Start a real Experiment with only the plugin under test, run `body(exp)`, stop it with `status`.

        With `raise_inside`, the exception is raised inside ``with exp:`` (how a failing script ends a run).
        `config` overlays `backend_config` (keys the core reads, such as ``max_in_flight``).
        """
        self._runs += 1
        name = f"conformance-{self._runs}"
        project = "tracelet-conformance"
        config = {**self.backend_config(self.tmp_path), **(config or {})}
        unregister_plugin(self.plugin_name)
        # replace=True: `plugin_name` may be the plugin's own entry-point name (installed), which this run's
        # class (the author's, or the kit's fault-injecting subclass of it) stands in for until teardown.
        register_plugin(plugin or self.plugin_class(), name=self.plugin_name, replace=True)
        settings = TraceletSettings(
            project=project,
            dir=str(self.tmp_path / "tracelet-runs"),
            local_store=True,
            track_system=False,
            track_git=False,
            track_env=False,
            stop_timeout=self.stop_timeout,
            start_timeout=self.stop_timeout,
        )
        exp = Experiment(
            name, backend=[self.plugin_name], tags=tags, project=project, settings=settings,
            options={self.plugin_name: config},
        )  # fmt: skip
        if raise_inside is not None:
            with pytest.raises(type(raise_inside)), exp:
                body(exp)
                raise raise_inside
        else:
            exp.start()
            try:
                body(exp)
            except BaseException:
                exp.stop(status=RunStatus.FAILED)
                raise
            exp.stop(status=status)
        assert exp.report is not None
        report = exp.report.backends[self.plugin_name]
        if report.undelivered or report.dropped or not report.finished:
            raise ConformanceError(
                f"stop() did not deliver everything to {self.plugin_name!r}: undelivered={report.undelivered}, "
                f"dropped={report.dropped}, finished={report.finished}, errors={report.errors}"
            )
        return RunUnderTest(
            run_id=exp.id, name=name, project=project, details=dict(report.details), config=config,
            run_dir=exp.run_dir, report=report,
        )  # fmt: skip

    def skip_unless_implemented(self, hook: str, what: str) -> None:
        """Skip a check of an optional hook the plugin does not implement (every hook is optional)."""
        cls = self.backend
        if isinstance(cls, type) and hook not in implemented_hooks(cls):
            pytest.skip(f"the plugin implements no {hook} hook: it declares no {what} support")

    def read(self, run: RunUnderTest) -> TrackedRun:
        tracked = self.read_run(run)
        if not isinstance(tracked, TrackedRun):
            raise ConformanceError(f"read_run must return a tracelet.testing.TrackedRun, got {tracked!r}")
        return tracked

    def journal(self, run: RunUnderTest) -> Any:
        from tracelet.store import LocalRun

        assert run.run_dir is not None
        return LocalRun(run.run_dir)

    def log_series(self, exp: Experiment, batches: int | None = None) -> None:
        """Two interleaved metrics and a sparse one, in several flushed batches (flush: one batch each)."""
        n = self.points_per_batch
        step = 0
        for _ in range(batches or 4):
            for _ in range(n):
                exp.log_metric("train/loss", 1.0 / (step + 1), step)
                if step % 3 == 0:
                    exp.log_metric("accuracy", step / (step + 7.0), step)
                step += 1
            exp.log_metric("epoch", float(step // n), step)
            exp.flush(self.stop_timeout)

    def check_metrics(self, run: RunUnderTest, tracked: TrackedRun, names: list[str] | None = None) -> None:
        expected = self.journal(run).metrics()
        for name in names or sorted(expected):
            _compare_series(name, expected[name], tracked.metrics, self.timestamp_tolerance, self.value_rel_tol, run)

    # -- the tests -------------------------------------------------------------------------------------------------
    def test_start_and_finish(self) -> None:
        run = self.run_experiment(lambda exp: exp.log_metric("one", 1.0, 0))
        tracked = self.read(run)
        _check_status(tracked, RunStatus.FINISHED)
        self.check_metrics(run, tracked)

    def test_metrics_in_order_with_steps_and_timestamps(self) -> None:
        run = self.run_experiment(self.log_series)
        self.check_metrics(run, self.read(run))

    def test_nan_and_inf(self) -> None:
        values = [1.0, math.nan, math.inf, -math.inf, 2.0, 0.0, -0.0, 1e-300]

        def body(exp: Experiment) -> None:
            for i, v in enumerate(values):
                exp.log_metric("edge", v, i)

        run = self.run_experiment(body)
        self.check_metrics(run, self.read(run), ["edge"])

    def test_params_nested_and_relogged(self) -> None:
        self.skip_unless_implemented("backend_log_params", "params")
        first: dict[str, Any] = {
            "lr": 0.001, "batch_size": 32, "optimizer": "adam", "amp": True, "model": {"depth": 4, "act": "relu"}
        }  # fmt: skip

        def body(exp: Experiment) -> None:
            exp.log_params(first)
            exp.log_metric("loss", 1.0, 0)
            exp.flush(self.stop_timeout)  # the second call reaches the backend in a later batch
            exp.log_params({"lr": 0.01, "epochs": 3})

        run = self.run_experiment(body)
        got = self.read(run).params
        want: dict[str, Any] = {"batch_size": 32, "optimizer": "adam", "amp": True, "epochs": 3}
        want["lr"] = 0.01 if self.relogged_params == "latest" else 0.001
        for key, value in want.items():
            if key not in got:
                raise ConformanceError(f"param {key!r} missing; the tracker holds {sorted(got)}")
            if not _same(got[key], value):
                hint = (
                    f" (re-logged: {self.relogged_params!r} value expected; set relogged_params if your tracker "
                    "keeps the other one)"
                    if key == "lr"
                    else ""
                )
                raise ConformanceError(f"param {key!r}: tracker has {got[key]!r}, logged {value!r}{hint}")
        _check_nested(got, "model", first["model"])

    def test_tags(self) -> None:
        self.skip_unless_implemented("backend_log_tags", "tags")

        def body(exp: Experiment) -> None:
            exp.set_tags({"team": "vision", "seed": 7})
            exp.log_metric("loss", 1.0, 0)
            exp.flush(self.stop_timeout)
            exp.set_tags({"team": "audio", "stage": "test"})

        run = self.run_experiment(body, tags=["conformance"])
        got = self.read(run).tags
        for key, value in {"team": "audio", "seed": "7", "stage": "test"}.items():
            if key not in got:
                raise ConformanceError(f"tag {key!r} missing; the tracker holds {sorted(got)}")
            if not _same(got[key], value):
                raise ConformanceError(
                    f"tag {key!r}: tracker has {got[key]!r}, expected {value!r} (a later value wins)"
                )

    def test_artifacts(self) -> None:
        self.skip_unless_implemented("backend_log_artifact", "artifact")
        from tracelet import ArtifactType

        source = self.tmp_path / "conformance-config.json"
        payload = json.dumps({"conformance": True, "n": 3}).encode()
        updated = json.dumps({"conformance": True, "n": 4}).encode()
        source.write_bytes(payload)
        found: dict[str, Any] = {}

        def body(exp: Experiment) -> None:
            artifact = exp.create_artifact("conformance-config", ArtifactType.CONFIG, "kit artifact")
            artifact.add_file(str(source), "config.json")
            found["result"] = exp.log_artifact(artifact, wait=self.stop_timeout)[self.plugin_name]
            # The same artifact object logged again (its file changed): the next version, not the first again.
            source.write_bytes(updated)
            found["again"] = exp.log_artifact(artifact, wait=self.stop_timeout)[self.plugin_name]
            if _implements(self.backend, "backend_get_artifact"):  # type: ignore[arg-type]
                found["got"] = exp.get_artifact("conformance-config", backend=self.plugin_name)

        run = self.run_experiment(body)
        result, again = found["result"], found["again"]
        for r in (result, again):
            if r.error is not None or not r.success:
                raise ConformanceError(f"backend_log_artifact failed: {r.error} (status {r.status})")
        if result.version and again.version == result.version:
            raise ConformanceError(
                f"logging the same artifact object twice stored version {result.version!r} both times: a second "
                "log_artifact of an object is the next version (only a retry of a failed store may reuse one)"
            )
        if "got" in found:
            got = found["got"]
            if got is None:
                raise ConformanceError("backend_get_artifact returned None for an artifact just stored")
            files = {f.artifact_path: Path(f.local_path).read_bytes() for f in got.files}
            if files.get("config.json") != updated:
                raise ConformanceError(
                    f"backend_get_artifact returned other files or bytes than the latest version's: {sorted(files)}"
                )
        names = self.read(run).artifacts
        if names is not None and not any("conformance-config" in str(n) for n in names):
            raise ConformanceError(f"the tracker lists no 'conformance-config' artifact: {names}")

    def test_hook_raises_once_then_succeeds(self) -> None:
        """Each delivery hook the plugin implements raises once (before it runs); the retry delivers it all."""

        def body(exp: Experiment) -> None:
            exp.log_params({"lr": 0.1, "layers": 2})
            exp.set_tags({"phase": "retry"})
            self.log_series(exp, batches=2)

        run = self.run_experiment(body, plugin=self.plugin_class(fault_once=True))
        injected = sum(n for where, n in run.report.errors.items() if "ConnectionError" in where)
        implemented = [h for h in _DELIVERY_HOOKS if _implements(self.backend, h)]  # type: ignore[arg-type]
        if implemented and injected < len(implemented):
            raise ConformanceError(f"the injected failures were not all seen by the worker: {run.report.errors}")
        tracked = self.read(run)
        self.check_metrics(run, tracked)
        if _implements(self.backend, "backend_log_params"):  # type: ignore[arg-type]
            for key, value in {"lr": 0.1, "layers": 2}.items():
                if not _same(tracked.params.get(key), value):
                    raise ConformanceError(
                        f"after a retried params batch, param {key!r} is {tracked.params.get(key)!r}"
                    )
        if _implements(self.backend, "backend_log_tags") and not _same(tracked.tags.get("phase"), "retry"):  # type: ignore[arg-type]
            raise ConformanceError(f"after a retried tags batch, tag 'phase' is {tracked.tags.get('phase')!r}")

    def test_transport_fault_mid_batch(self) -> None:
        """The author's `inject_fault` breaks the transport once inside a batch: no loss, no duplicate."""
        if type(self).inject_fault is BackendConformance.inject_fault:
            pytest.skip("override inject_fault(plugin) to test a transport failure in the middle of a batch")

        def body(exp: Experiment) -> None:
            self.log_series(exp, batches=1)

        run = self.run_experiment(body, plugin=self.plugin_class(author_fault=True))
        if not run.report.errors:
            raise ConformanceError("inject_fault made no delivery fail: the worker recorded no error")
        self.check_metrics(run, self.read(run))

    def test_batches_in_flight(self) -> None:
        """Only for a plugin that declares `concurrent_batches` (after its run started): with the default
        ``max_in_flight`` (4; no config key is added, so a plugin that refuses unknown keys runs it as it is),
        metric batches reach `backend_log_metrics` from several threads at once, and one of them fails once.
        Every point must be stored exactly once and read back in logging order (a tracker that orders points by
        arrival must not declare the capability), and params and tags keep their rule (they never overlap)."""
        lock = threading.Lock()
        seen = {"active": 0, "most": 0, "calls": 0, "declared": False}

        @hookimpl(wrapper=True, specname="backend_log_metrics")
        def _kit_in_flight(plugin: Any) -> Any:
            with lock:
                seen["calls"] += 1
                call = seen["calls"]
                seen["active"] += 1
                seen["most"] = max(seen["most"], seen["active"])
                seen["declared"] = bool(getattr(plugin, "concurrent_batches", False))
            try:
                time.sleep(0.2)  # longer than the gap between batches: those behind this one go out meanwhile
                if call == 2:
                    raise ConnectionError("tracelet.testing: the second metric batch fails once (injected)")
                return (yield)
            finally:
                with lock:
                    seen["active"] -= 1

        cls = self.plugin_class()
        plugin = type(f"{cls.__name__}InFlight", (cls,), {"_kit_in_flight": _kit_in_flight})

        def body(exp: Experiment) -> None:
            exp.log_params({"lr": 0.1})
            exp.set_tags({"phase": "first"})
            step = 0
            for _ in range(8):
                for _ in range(self.points_per_batch // 4):
                    exp.log_metric("train/loss", 1.0 / (step + 1), step)
                    if step % 3 == 0:
                        exp.log_metric("accuracy", step / (step + 7.0), step)
                    step += 1
                time.sleep(0.05)  # published apart: read as a batch of its own
            exp.log_params({"lr": 0.2})
            exp.set_tags({"phase": "last"})

        run = self.run_experiment(body, plugin=plugin)
        if not seen["declared"]:
            pytest.skip("the plugin does not declare concurrent_batches: its batches go one at a time")
        if not 2 <= seen["most"] <= DEFAULT_IN_FLIGHT:
            raise ConformanceError(
                f"expected 2 to {DEFAULT_IN_FLIGHT} metric batches at once (the default max_in_flight), saw {seen['most']}"
            )
        if not any("ConnectionError" in where for where in run.report.errors):
            raise ConformanceError(f"the injected failure was not seen by the worker: {run.report.errors}")
        tracked = self.read(run)
        self.check_metrics(run, tracked)
        if _implements(self.backend, "backend_log_params"):  # type: ignore[arg-type]
            want = 0.2 if self.relogged_params == "latest" else 0.1
            if not _same(tracked.params.get("lr"), want):
                raise ConformanceError(
                    f"with batches in flight, param 'lr' is {tracked.params.get('lr')!r}, not {want}"
                )
        if _implements(self.backend, "backend_log_tags") and not _same(tracked.tags.get("phase"), "last"):  # type: ignore[arg-type]
            raise ConformanceError(f"with batches in flight, tag 'phase' is {tracked.tags.get('phase')!r}, not 'last'")

    def test_stop_statuses(self) -> None:
        runs = {
            RunStatus.FINISHED: self.run_experiment(lambda exp: exp.log_metric("x", 1.0, 0)),
            RunStatus.FAILED: self.run_experiment(
                lambda exp: exp.log_metric("x", 2.0, 0), raise_inside=ValueError("training crashed")
            ),
            RunStatus.KILLED: self.run_experiment(lambda exp: exp.log_metric("x", 3.0, 0), status=RunStatus.KILLED),
        }
        for status, run in runs.items():
            _check_status(self.read(run), status)

    def test_several_runs_in_one_process(self) -> None:
        runs = []
        for index in range(3):

            def body(exp: Experiment, index: int = index) -> None:
                for step in range(50):
                    exp.log_metric("run_index", float(index), step)
                exp.log_params({"index": index})

            runs.append(self.run_experiment(body))
        ids = {json.dumps(run.details, sort_keys=True, default=str) for run in runs}
        if any(run.details for run in runs) and len(ids) != len(runs):  # details identify the tracker's run
            raise ConformanceError(f"backend_start_run returned the same details for different runs: {ids}")
        for index, run in enumerate(runs):
            tracked = self.read(run)
            self.check_metrics(run, tracked, ["run_index"])
            if _implements(self.backend, "backend_log_params") and not _same(tracked.params.get("index"), index):  # type: ignore[arg-type]
                raise ConformanceError(f"run {index}: param 'index' is {tracked.params.get('index')!r}")

    def test_import_round_trip(self) -> None:
        """A run delivered to the tracker, imported back: every point with its step and timestamp; a second
        import of it writes nothing."""
        self.skip_unless_implemented("backend_import_runs", "import")

        def body(exp: Experiment) -> None:
            exp.log_params({"lr": 0.01, "layers": 3})
            exp.set_tags({"team": "vision"})
            self.log_series(exp, batches=2)

        run = self.run_experiment(body)
        try:
            source, config = self.import_source(run)
        except NotImplementedError:
            pytest.skip("define import_source(run) -> (SOURCE, config) to check backend_import_runs")
        from tracelet.store import LocalRun
        from tracelet.transfer.importer import import_runs

        target = self.tmp_path / "imported"
        results = import_runs(source, source=self.plugin_name, config=config, dir=target)
        failed = [r.error for r in results if r.error]
        if failed or len(results) != 1:
            raise ConformanceError(
                f"importing {source!r} with {config}: expected one run, got {len(results)} ({failed or 'no errors'})"
            )
        imported = LocalRun(results[0].path)
        self.check_metrics(run, TrackedRun(metrics=dict(imported.metrics())))
        if not _same(imported.params().get("lr"), 0.01):
            raise ConformanceError(f"imported params lack lr=0.01: {imported.params()}")
        again = import_runs(source, source=self.plugin_name, config=config, dir=target)
        if [(r.run_id, r.existing, r.events) for r in again] != [(results[0].run_id, True, 0)]:
            raise ConformanceError(f"a second import of an unchanged run wrote again: {again}")


# -- comparison helpers --------------------------------------------------------------------------------------------
def _implements(cls: type, hook: str) -> bool:
    return hook in implemented_hooks(cls)  # the kit's own fault wrappers are hook wrappers: not counted


def _raise_once_wrapper(hook: str) -> Any:
    state = {"fired": False}

    @hookimpl(wrapper=True, specname=hook)
    def wrapper(self: Any) -> Any:
        if not state["fired"]:
            state["fired"] = True
            raise ConnectionError(f"tracelet.testing: {hook} fails once (injected before the hook ran)")
        return (yield)

    return wrapper


def _point(p: Any) -> tuple[int, float, float | None]:
    if isinstance(p, tuple) and not isinstance(p, Metric):
        step, value, *rest = p
        return int(step), float(value), (float(rest[0]) if rest and rest[0] is not None else None)
    ts = getattr(p, "timestamp", None)
    return int(p.step), float(p.value), (float(ts) if ts is not None else None)


def _value_matches(got: float, want: float, rel_tol: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    if math.isinf(want):  # stored as ±inf, or clamped to ±float max
        return got == want or (math.copysign(1.0, got) == math.copysign(1.0, want) and abs(got) >= _FLOAT_MAX * 0.999)
    return got == want or math.isclose(got, want, rel_tol=rel_tol, abs_tol=0.0)


def _compare_series(
    name: str, expected: list[Metric], got_all: Mapping[str, list[Any]], ts_tol: float | None, rel_tol: float,
    run: RunUnderTest,
) -> None:  # fmt: skip
    if name not in got_all:
        no_hook = getattr(run.report, "no_hook", None) or {}
        hint = f" (the backend takes no hook for: {', '.join(no_hook)})" if no_hook else ""
        raise ConformanceError(
            f"lost points: metric {name!r} has 0 of {len(expected)} points; the tracker holds metrics "
            f"{sorted(got_all)}{hint}"
        )
    got = [_point(p) for p in got_all[name]]
    want_steps = Counter(m.step for m in expected)
    got_steps = Counter(p[0] for p in got)
    dup = sorted(s for s in got_steps if got_steps[s] > want_steps.get(s, 0) and s in want_steps)
    if dup:
        raise ConformanceError(
            f"duplicate delivery: metric {name!r} has {len(got)} points for {len(expected)} logged; step(s) "
            f"{dup[:10]} stored more than once. A hook that writes part of a batch and then raises gets the whole "
            "batch again on retry: remember how far it got, or make the write idempotent"
        )
    lost = sorted(s for s in want_steps if got_steps.get(s, 0) < want_steps[s])
    if lost:
        raise ConformanceError(
            f"lost points: metric {name!r} has {len(got)} of {len(expected)} points; missing step(s) {lost[:10]}"
            f"{' ...' if len(lost) > 10 else ''}. Every point of every batch must reach the tracker"
        )
    extra = sorted(set(got_steps) - set(want_steps))
    if extra:
        raise ConformanceError(f"metric {name!r} has points at steps never logged: {extra[:10]}")
    for i, (want, (step, value, ts)) in enumerate(zip(expected, got)):
        if step != want.step:
            raise ConformanceError(
                f"metric {name!r} out of order at position {i}: step {step}, logged step {want.step} there "
                "(points must be stored, and read back, in logging order)"
            )
        if not _value_matches(value, want.value, rel_tol):
            raise ConformanceError(f"metric {name!r} step {step}: tracker has {value!r}, logged {want.value!r}")
        if ts_tol is not None:
            if ts is None:
                raise ConformanceError(
                    f"metric {name!r} step {step} has no timestamp (set timestamp_tolerance = None if the tracker "
                    "keeps none)"
                )
            if abs(ts - want.timestamp) > ts_tol:
                raise ConformanceError(
                    f"metric {name!r} step {step}: timestamp {ts!r} s, logged at {want.timestamp!r} s (off by "
                    f"{ts - want.timestamp:+.4f} s; Metric.timestamp is seconds since the epoch, taken at the call)"
                )


def _check_status(tracked: TrackedRun, want: RunStatus) -> None:
    got = getattr(tracked.status, "value", tracked.status)
    if str(got).upper() != want.value:
        raise ConformanceError(f"run status: tracker has {tracked.status!r}, the run ended {want.value}")


def _same(got: Any, want: Any) -> bool:
    """Loose equality for values a tracker may have stored as strings."""
    if got == want and type(got) is type(want):
        return True
    if isinstance(want, bool) or isinstance(got, bool):
        return str(got).strip().lower() == str(want).strip().lower()
    if got is None or want is None:
        return False
    if str(got) == str(want):
        return True
    try:
        return float(got) == float(want)
    except (TypeError, ValueError):
        return False


def _check_nested(got: Mapping[str, Any], key: str, want: Mapping[str, Any]) -> None:
    """A nested param is stored as a mapping, as JSON (or a Python literal), or flattened with "/" or "."."""
    if key in got:
        value = got[key]
        if isinstance(value, str):
            for parse in (json.loads, ast.literal_eval):
                try:
                    value = parse(value)
                    break
                except (ValueError, SyntaxError):
                    continue
        if isinstance(value, Mapping) and set(value) == set(want) and all(_same(value[k], v) for k, v in want.items()):
            return
        raise ConformanceError(f"nested param {key!r}: tracker has {got[key]!r}, logged {dict(want)!r}")
    for sep in ("/", "."):
        flat = {f"{key}{sep}{k}": v for k, v in want.items()}
        if all(k in got for k in flat):
            for k, v in flat.items():
                if not _same(got[k], v):
                    raise ConformanceError(f"nested param {k!r}: tracker has {got[k]!r}, logged {v!r}")
            return
    raise ConformanceError(
        f"nested param {key!r} ({dict(want)!r}) is missing: neither {key!r} nor flattened keys such as "
        f"'{key}/depth' are in {sorted(got)}"
    )
