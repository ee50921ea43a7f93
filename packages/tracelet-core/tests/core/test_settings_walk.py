"""Every knob a user can set acts, or says it is not supported yet.

The walk covers every field of `TraceletSettings` (through `start_logging(config=...)`, as the spec's
examples set them), of `ExperimentConfig` (through `Experiment(config=...)`) and of `AutomagicConfig`. For
each one a probe runs a real experiment with the field at its default and at another value and observes
something a user could see (the run folder, run.json, metrics, params, artifacts, the stop report, a log line).
The two observations must differ, unless the knob is listed in `tracelet.core.run.config.NOT_SUPPORTED_YET`, in
which case setting it must log "not supported yet". A new field without a probe fails
`test_every_knob_has_a_probe`, so a knob cannot be added without showing what it does.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import tracelet
from tracelet import AutomagicConfig, Experiment, ExperimentConfig, TraceletSettings, hookimpl
from tracelet.core.run import config as config_mod
from tracelet.store import LocalRun, open_run

WATCH = {"artifact_watch_interval": 0.05, "artifact_watch_settle": 0.05, "artifact_watcher": "polling"}


@attrs.define
class Outcome:
    exp: Any
    run: LocalRun | None
    report: Any
    log: str


def _finish(exp: Any, caplog: pytest.LogCaptureFixture, t0: int) -> Outcome:
    report = exp.stop()
    run = open_run(str(exp.run_dir)) if exp.run_dir is not None else None
    return Outcome(exp, run, report, "\n".join(r.getMessage() for r in caplog.records[t0:]))


def _settings_run(
    caplog: pytest.LogCaptureFixture,
    config: dict[str, Any],
    body: Callable[[Any], None] | None = None,
    backend: str | list[str] = "local",
) -> Outcome:
    t0 = len(caplog.records)
    exp = tracelet.start_logging("walk", backend=backend, config={"track_system": False, **config})
    if body is not None:
        body(exp)
    return _finish(exp, caplog, t0)


def _config_run(
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, Any],
    body: Callable[[Any], None] | None = None,
    automagic_config: AutomagicConfig | None = None,
    options: dict[str, Any] | None = None,
) -> Outcome:
    t0 = len(caplog.records)
    cfg = ExperimentConfig(**{"track_system_metrics": False, "track_stdout": False, **fields})
    exp = Experiment("walk", config=cfg, backend=["local"], automagic_config=automagic_config, options=options)
    exp.start()
    if body is not None:
        body(exp)
    return _finish(exp, caplog, t0)


# -- observations ----------------------------------------------------------------------------------------------
def metric_names(o: Outcome) -> set[str]:
    return set(o.run.metrics()) if o.run is not None else set()


def system_samples(o: Outcome) -> int:
    return len(o.run.metrics().get("system/cpu_percent", [])) if o.run is not None else 0


def artifact_names(o: Outcome) -> set[str]:
    return {a.name for a in o.run.artifacts()} if o.run is not None else set()


def metadata(o: Outcome) -> dict[str, Any]:
    assert o.run is not None
    return o.run.meta.get("metadata", {})


def sleep(seconds: float) -> Callable[[Any], None]:
    return lambda exp: time.sleep(seconds)


def write_watched(tmp: Path, name: str = "new.txt") -> Callable[[Any], None]:
    def body(exp: Any) -> None:
        time.sleep(0.15)  # the watcher has taken its first look
        (tmp / "watched" / name).write_text("x")
        time.sleep(0.4)

    return body


def frameworks_instrumented(o: Outcome) -> bool:
    from tracelet_testplugin.framework import EVENTS

    return ("instrument", o.exp.id) in EVENTS


# -- plugins some probes need ----------------------------------------------------------------------------------
class SlowStart:
    @hookimpl
    def backend_start_run(self) -> None:
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def _walk_env(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.INFO, logger="tracelet")
    (tmp_path / "watched").mkdir()
    tracelet.register_plugin(SlowStart, "walk_slow_start")
    config_mod._warned.clear()
    try:
        yield
    finally:
        tracelet.unregister_plugin("walk_slow_start")


# knob -> (other value, probe(value, tmp, caplog) -> observation). The probe gets the default or the other value.
Probe = Callable[[Any, Path, pytest.LogCaptureFixture], Any]


def _git_repo(tmp: Path) -> None:
    if not (tmp / ".git").exists():
        subprocess.run(["git", "init", "-q", str(tmp)], check=True)
        subprocess.run(
            [
                "git",
                "-C",
                str(tmp),
                "-c",
                "user.email=walk@example.com",
                "-c",
                "user.name=walk",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "walk",
            ],
            check=True,
        )


SETTINGS_PROBES: dict[str, tuple[Any, Probe]] = {
    "project": ("walk-project", lambda v, t, c: _settings_run(c, {"project": v}).run.project),
    "backend": (["recorder"], lambda v, t, c: [b.name for b in _settings_run(c, {}, backend=v).exp.backends]),
    "track_system": (
        False,
        lambda v, t, c: system_samples(_settings_run(c, {"track_system": v, "metrics_interval": 0.05}, sleep(0.3))),
    ),
    "track_git": (False, lambda v, t, c: (_git_repo(t), "git" in metadata(_settings_run(c, {"track_git": v})))[1]),
    "track_env": (False, lambda v, t, c: "environment" in metadata(_settings_run(c, {"track_env": v}))),
    "metrics_interval": (
        0.05,
        lambda v, t, c: system_samples(_settings_run(c, {"track_system": True, "metrics_interval": v}, sleep(0.4))) > 3,
    ),
    "enable_automagic": (True, lambda v, t, c: _automagic_settings(v, c)),
    "automagic_frameworks": (
        {"no-such-framework"},
        lambda v, t, c: frameworks_instrumented(_settings_run(c, {"automagic_frameworks": v})),
    ),
    "enable_artifacts": (
        True,
        lambda v, t, c: artifact_names(
            _settings_run(
                c,
                {
                    **WATCH,
                    "automagic_artifacts": True,
                    "artifact_watch_dirs": [str(t / "watched")],
                    "enable_artifacts": v,
                },
                write_watched(t),
            )
        ),
    ),
    "automagic_artifacts": (
        True,
        lambda v, t, c: artifact_names(
            _settings_run(
                c,
                {
                    **WATCH,
                    "enable_artifacts": True,
                    "artifact_watch_dirs": [str(t / "watched")],
                    "automagic_artifacts": v,
                },
                write_watched(t),
            )
        ),
    ),
    "watch_filesystem": (
        True,
        lambda v, t, c: artifact_names(
            _settings_run(
                c,
                {**WATCH, "enable_artifacts": True, "artifact_watch_dirs": [str(t / "watched")], "watch_filesystem": v},
                write_watched(t),
            )
        ),
    ),
    "artifact_watch_dirs": (
        ["watched"],
        lambda v, t, c: artifact_names(
            _settings_run(
                c,
                {**WATCH, "enable_artifacts": True, "automagic_artifacts": True, "artifact_watch_dirs": v},
                write_watched(t),
            )
        ),
    ),
    "dir": ("elsewhere", lambda v, t, c: _settings_run(c, {"dir": v}).exp.run_dir.parts[0]),
    "local_store": (False, lambda v, t, c: _settings_run(c, {"local_store": v}, backend="recorder").exp.run_dir),
    "stop_timeout": (
        0.2,
        lambda v, t, c: (
            _settings_run(c, {"stop_timeout": v}, lambda e: e.log_metric("x", 1.0), backend=["local", "slow"])
            .report.backends["slow"]
            .undelivered
        ),
    ),
    "start_timeout": (
        0.05,
        lambda v, t, c: (
            "still starting" in _settings_run(c, {"start_timeout": v}, backend=["local", "walk_slow_start"]).log
        ),
    ),
    "max_buffered": (
        1000,
        lambda v, t, c: (
            _settings_run(
                c, {"max_buffered": v, "local_store": False, "stop_timeout": 1.5}, _log_in_chunks, backend="slow"
            )
            .report.backends["slow"]
            .dropped
            > 0
        ),
    ),
    "track_stdout": (
        True,
        lambda v, t, c: (
            "console" in artifact_names(_settings_run(c, {"track_stdout": v}, lambda e: print("to the console")))
        ),
    ),
    "env_allowlist": (
        ["WALK_VISIBLE"],
        lambda v, t, c: (
            "WALK_VISIBLE" in metadata(_settings_run(c, {"env_allowlist": v})).get("environment", {}).get("env", {})
        ),
    ),
    "env_packages": (False, lambda v, t, c: "environment" in artifact_names(_settings_run(c, {"env_packages": v}))),
    "distributed": ("off", lambda v, t, c: _distributed({"distributed": v}, c)),
    "distributed_local_store": (True, lambda v, t, c: _distributed({"distributed_local_store": v}, c)),
}


def _log_in_chunks(exp: Any) -> None:
    for chunk in range(4):  # separate dispatcher passes, so the window holds several chunks to drop from
        for i in range(2000):
            exp.log_metric("x", 1.0, chunk * 2000 + i)
        time.sleep(0.08)


def _automagic_settings(value: bool, caplog: pytest.LogCaptureFixture) -> bool:
    walk_learning_rate = 0.125  # a hyperparameter in the code that starts the run
    t0 = len(caplog.records)
    exp = tracelet.start_logging("walk", backend="local", config={"track_system": False, "enable_automagic": value})
    out = _finish(exp, caplog, t0)
    assert walk_learning_rate
    return out.run.params().get("walk_learning_rate")


def _distributed(config: dict[str, Any], caplog: pytest.LogCaptureFixture) -> bool:
    """As rank 1 of 2 under torchrun: does this rank keep a run folder?"""
    mp = pytest.MonkeyPatch()
    try:
        for key, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}.items():
            mp.setenv(key, value)
        return _settings_run(caplog, config).exp.run_dir is not None
    finally:
        mp.undo()


def _automagic_config(cfg: AutomagicConfig, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    walk_learning_rate = 0.125
    walk_optimizer = "adam-with-a-long-descriptive-name"
    t0 = len(caplog.records)
    exp = Experiment(
        "walk",
        config=ExperimentConfig(track_system_metrics=False, track_stdout=False, enable_automagic=True),
        backend=["local"],
        automagic_config=cfg,
    )
    exp.start()
    out = _finish(exp, caplog, t0)
    assert walk_learning_rate and walk_optimizer
    return {k: v for k, v in out.run.params().items() if k.startswith("walk_")}


def _config_watch(
    field: str, value: Any, tmp: Path, caplog: pytest.LogCaptureFixture, name: str = "new.txt"
) -> set[str]:
    on = {"enable_artifacts": True, "automagic_artifacts": True, "artifact_watch_dirs": [str(tmp / "watched")]}
    if field == "watch_filesystem":
        on["automagic_artifacts"] = False
    on[field] = value
    return artifact_names(_config_run(caplog, on, write_watched(tmp, name), options=WATCH))


CONFIG_PROBES: dict[str, tuple[Any, Probe]] = {
    "track_metrics": (
        False,
        lambda v, t, c: metric_names(_config_run(c, {"track_metrics": v}, lambda e: e.log_metric("x", 1.0))),
    ),
    "track_environment": (False, lambda v, t, c: "environment" in metadata(_config_run(c, {"track_environment": v}))),
    "track_args": (False, lambda v, t, c: "argv" in metadata(_config_run(c, {"track_args": v}))),
    "track_stdout": (
        False,
        lambda v, t, c: (
            "console" in artifact_names(_config_run(c, {"track_stdout": v}, lambda e: print("to the console")))
        ),
    ),
    "track_checkpoints": (False, lambda v, t, c: _config_watch("track_checkpoints", v, t, c, "model.ckpt")),
    "track_system_metrics": (
        False,
        lambda v, t, c: system_samples(_config_run(c, {"track_system_metrics": v}, sleep(0.2))),
    ),
    "track_git": (False, lambda v, t, c: (_git_repo(t), "git" in metadata(_config_run(c, {"track_git": v})))[1]),
    "enable_automagic": (
        True,
        lambda v, t, c: (
            bool(_automagic_config(AutomagicConfig(), c))
            if v
            else bool({k for k in _config_run(c, {}).run.params() if k.startswith("walk_")})
        ),
    ),
    "automagic_frameworks": (
        {"no-such-framework"},
        lambda v, t, c: frameworks_instrumented(_config_run(c, {"automagic_frameworks": v})),
    ),
    "enable_artifacts": (True, lambda v, t, c: _config_watch("enable_artifacts", v, t, c)),
    "automagic_artifacts": (True, lambda v, t, c: _config_watch("automagic_artifacts", v, t, c)),
    "artifact_watch_dirs": (["watched"], lambda v, t, c: _config_watch("artifact_watch_dirs", v, t, c)),
    "watch_filesystem": (True, lambda v, t, c: _config_watch("watch_filesystem", v, t, c)),
}

AUTOMAGIC_PROBES: dict[str, tuple[Any, Probe]] = {
    "detect_hyperparameters": (False, lambda v, t, c: _automagic_config(AutomagicConfig(detect_hyperparameters=v), c)),
    "max_value_length": (10, lambda v, t, c: _automagic_config(AutomagicConfig(max_value_length=v), c)),
    "ignore_names": ({"walk_learning_rate"}, lambda v, t, c: _automagic_config(AutomagicConfig(ignore_names=v), c)),
}

CLASSES = {
    "TraceletSettings": (TraceletSettings, SETTINGS_PROBES),
    "ExperimentConfig": (ExperimentConfig, CONFIG_PROBES),
    "AutomagicConfig": (AutomagicConfig, AUTOMAGIC_PROBES),
}


def _default(cls: type, field: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The documented default: for settings, what TraceletSettings() gives with no TRACELET_* variable set."""
    if cls is TraceletSettings:
        with monkeypatch.context() as m:
            m.delenv(f"TRACELET_{field.upper()}", raising=False)
            return getattr(TraceletSettings(), field)
    return getattr(cls(), field)


@pytest.mark.parametrize("cls_name", sorted(CLASSES))
def test_every_knob_has_a_probe(cls_name: str) -> None:
    cls, probes = CLASSES[cls_name]
    fields = {f.name for f in attrs.fields(cls)}
    assert fields - set(probes) == set(), f"{cls_name} fields without a probe in this test: show what they do"
    assert set(probes) - fields == set()


CASES = [(name, knob) for name, (_, probes) in CLASSES.items() for knob in probes]


@pytest.mark.parametrize(("cls_name", "knob"), CASES, ids=[f"{c}.{k}" for c, k in CASES])
def test_knob_acts_or_warns(
    cls_name: str, knob: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WALK_VISIBLE", "1")
    cls, probes = CLASSES[cls_name]
    other, probe = probes[knob]
    default = _default(cls, knob, monkeypatch)
    assert other != default
    at_default = probe(default, tmp_path, caplog)
    t0 = len(caplog.records)
    at_other = probe(other, tmp_path, caplog)
    if knob in config_mod.NOT_SUPPORTED_YET:
        said = "\n".join(r.getMessage() for r in caplog.records[t0:])
        assert f"{knob}=" in said and "not supported yet" in said
    else:
        assert at_default != at_other, f"{cls_name}.{knob} = {other!r} changed nothing: {at_default!r}"


def test_an_unsupported_knob_warns_once(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warning mechanism itself, on a knob put in the table for this test."""
    monkeypatch.setitem(config_mod.NOT_SUPPORTED_YET, "track_git", (True, "a test"))
    for _ in range(2):
        _config_run(caplog, {"track_git": False})
    said = [r.getMessage() for r in caplog.records if "not supported yet" in r.getMessage()]
    assert said == ["tracelet: track_git=False is not supported yet and has no effect (a test builds it)"]
