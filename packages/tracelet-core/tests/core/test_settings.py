"""TraceletSettings: every TRACELET_* variable, value parsing and precedence."""

from __future__ import annotations

import pytest

import tracelet
from tracelet import ConfigurationError, ExperimentConfig, TraceletSettings
from tracelet.settings import parse_bool

ENV_CASES = [
    ("TRACELET_PROJECT", "proj-x", "project", "proj-x"),
    ("TRACELET_BACKEND", "mlflow, wandb", "backend", ["mlflow", "wandb"]),
    ("TRACELET_TRACK_SYSTEM", "no", "track_system", False),
    ("TRACELET_TRACK_GIT", "0", "track_git", False),
    ("TRACELET_TRACK_ENV", "false", "track_env", False),
    ("TRACELET_ENABLE_AUTOMAGIC", "yes", "enable_automagic", True),
    ("TRACELET_AUTOMAGIC_FRAMEWORKS", "pytorch,lightning", "automagic_frameworks", {"pytorch", "lightning"}),
    ("TRACELET_ENABLE_ARTIFACTS", "1", "enable_artifacts", True),
    ("TRACELET_AUTOMAGIC_ARTIFACTS", "TRUE", "automagic_artifacts", True),
    ("TRACELET_WATCH_FILESYSTEM", "true", "watch_filesystem", True),
    ("TRACELET_ARTIFACT_WATCH_DIRS", "ckpt,out", "artifact_watch_dirs", ["ckpt", "out"]),
    ("TRACELET_METRICS_INTERVAL", "2.5", "metrics_interval", 2.5),
    ("TRACELET_DIR", "/tmp/elsewhere", "dir", "/tmp/elsewhere"),
    ("TRACELET_LOCAL_STORE", "no", "local_store", False),
    ("TRACELET_STOP_TIMEOUT", "3", "stop_timeout", 3.0),
    ("TRACELET_MAX_BUFFERED", "1000", "max_buffered", 1000),
]


@pytest.mark.parametrize(("var", "raw", "field", "expected"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_each_environment_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, raw: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(var, raw)
    assert getattr(TraceletSettings(), field) == expected


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACELET_TRACK_SYSTEM")
    s = TraceletSettings()
    assert s.project == "default" and s.backend == ["local"]
    assert s.track_system and s.track_git and s.track_env
    assert not s.enable_automagic and s.automagic_frameworks == set()
    assert s.artifact_watch_dirs == [] and s.dir == "./tracelet-runs" and s.local_store


@pytest.mark.parametrize(
    ("text", "value"), [("true", True), ("False", False), ("1", True), ("0", False), ("yes", True), ("NO", False)]
)
def test_boolean_words(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_invalid_environment_value_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_TRACK_GIT", "maybe")
    with pytest.raises(ConfigurationError, match="TRACELET_TRACK_GIT"):
        TraceletSettings()


def test_precedence_explicit_over_config_over_env_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_PROJECT", "from-env")
    monkeypatch.setenv("TRACELET_TRACK_GIT", "false")
    monkeypatch.setenv("TRACELET_METRICS_INTERVAL", "7")
    s = TraceletSettings.resolve({"project": "from-config", "track_git": True}, project="explicit")
    assert s.project == "explicit"  # explicit argument wins
    assert s.track_git is True  # config dict beats the environment
    assert s.metrics_interval == 7.0  # environment beats the default
    assert s.track_env is True  # default
    s = TraceletSettings.resolve({"project": "from-config"})
    assert s.project == "from-config"
    assert TraceletSettings.resolve({}).project == "from-env"


def test_start_logging_applies_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_PROJECT", "env-project")
    monkeypatch.setenv("TRACELET_BACKEND", "recorder")
    exp = tracelet.start_logging("p", config={"track_env": False})
    assert exp.project == "env-project"
    assert [b.name for b in exp.backends] == ["recorder"]
    assert "environment" not in exp.backends[0].run.metadata
    tracelet.stop_logging()
    exp = tracelet.start_logging("p", project="arg-project", backend="local")
    assert exp.project == "arg-project" and [b.name for b in exp.backends] == ["local"]


def test_spec_config_keys_are_accepted_and_backend_keys_are_routed() -> None:
    exp = tracelet.start_logging(
        "adv",
        project="research",
        backend=["recorder"],
        config={
            "track_system": True,
            "track_git": True,
            "track_env": True,
            "metrics_interval": 10.0,
            "recorder_endpoint": "http://127.0.0.1:1",
            "recorder": {"fail_times": 0, "endpoint": "overridden"},
            "mlflow_tracking_uri": "http://localhost:5000",
        },
    )
    run = exp.backends[0].run
    assert run.config == {"fail_times": 0, "endpoint": "http://127.0.0.1:1"}
    assert exp.settings.metrics_interval == 10.0
    tracelet.stop_logging()


def test_experiment_config_overrides_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_TRACK_GIT", "true")
    exp = tracelet.Experiment("cfg", config=ExperimentConfig(track_git=False, enable_artifacts=True), backend=["local"])
    assert exp.settings.track_git is False and exp.settings.enable_artifacts is True
    defaults = ExperimentConfig()
    assert defaults.track_metrics and defaults.automagic_frameworks is None and not defaults.watch_filesystem


def test_unknown_setting_in_explicit_arguments_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="unknown settings"):
        TraceletSettings.resolve(None, colour="blue")


def test_experiment_config_fields_in_a_config_dict_act() -> None:
    from tracelet.store import open_run

    exp = tracelet.start_logging("dict-config", backend="local", config={"track_metrics": False, "track_args": "no"})
    assert (exp.config.track_metrics, exp.config.track_args) == (False, False)
    exp.log_metric("loss", 1.0, 0)  # a documented no-op with track_metrics off
    tracelet.stop_logging()
    assert "loss" not in open_run(exp.id).metrics()
    with pytest.raises(ConfigurationError, match="track_metrics"):
        tracelet.start_logging("bad", backend="local", config={"track_metrics": "sometimes"})


def test_experiment_takes_a_config_dict_as_start_logging_does() -> None:
    exp = tracelet.Experiment(
        "dict", config={"project": "p-dict", "track_git": False, "acme_key": 1}, backend=["local"]
    )
    assert exp.project == "p-dict" and exp.config.track_git is False and exp.options["acme_key"] == 1
