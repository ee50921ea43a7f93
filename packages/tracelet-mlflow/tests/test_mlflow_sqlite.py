"""The MLflow backend against a real sqlite store, everything read back through MlflowClient."""

from __future__ import annotations

import getpass
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

import tracelet
from tracelet.exceptions import ConfigurationError
from tracelet_mlflow.params import MAX_PARAM_VALUE_LENGTH
from tracelet_testsupport.mlflow import journal_metrics, mlflow_run_id


def start(uri: str, name: str = "run", project: str = "proj", **extra: object) -> tracelet.Experiment:
    return tracelet.start_logging(name, project=project, backend="mlflow", config={"mlflow_tracking_uri": uri, **extra})


def test_every_point_lands_with_value_step_and_millisecond_timestamp(sqlite_uri: str) -> None:
    exp = start(sqlite_uri)
    for i in range(2500):  # more than one log_batch request (1000 metrics each)
        exp.log_metric("train/loss", 1.0 / (i + 1), i)
        if i % 10 == 0:
            exp.log_metric("val acc", i / 2500, i)
    exp.set_iteration(7)
    exp.log_metric("implicit", 3.5)
    report = exp.stop()
    assert report is not None and report.complete and report.backends["mlflow"].errors == {}

    client = MlflowClient(sqlite_uri)
    run_id = mlflow_run_id(exp)
    logged = journal_metrics(exp.run_dir)
    assert len(logged) == 2500 + 250 + 1
    by_name: dict[str, list[tuple[float, int, int]]] = {}
    for _, name, value, step, ts in logged:
        by_name.setdefault(name, []).append((value, step, int(ts * 1000)))
    for name, expected in by_name.items():
        got = [(m.value, m.step, m.timestamp) for m in client.get_metric_history(run_id, name)]
        assert sorted(got, key=lambda t: t[1]) == expected, name
    assert client.get_metric_history(run_id, "implicit")[0].step == 7


def test_nan_and_infinities_are_stored_as_mlflow_stores_them(sqlite_uri: str) -> None:
    exp = start(sqlite_uri)
    for step, value in enumerate([math.nan, math.inf, -math.inf, 1.5]):
        exp.log_metric("weird", value, step)
    exp.stop()
    history = MlflowClient(sqlite_uri).get_metric_history(mlflow_run_id(exp), "weird")
    values = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert math.isnan(values[0])
    assert values[1:] == [sys.float_info.max, -sys.float_info.max, 1.5]  # SQL stores ±inf as ±max double


def test_refused_names_are_mapped_and_the_original_recorded(sqlite_uri: str) -> None:
    exp = start(sqlite_uri)
    exp.log_metric("acc@top(1)", 0.9, 0)
    exp.log_metric("../escape", 1.0, 0)
    exp.log_params({"opt:lr": 0.1})
    exp.set_tags({"team!": "ml"})
    report = exp.stop()
    assert report is not None and report.backends["mlflow"].errors == {}

    run = MlflowClient(sqlite_uri).get_run(mlflow_run_id(exp))
    assert set(run.data.metrics) == {"acc_top_1_", "__/escape"}
    assert run.data.params["opt_lr"] == "0.1"
    assert run.data.tags["team_"] == "ml"
    tags = run.data.tags
    assert tags["tracelet.renamed.metric.acc_top_1_"] == "acc@top(1)"
    assert tags["tracelet.renamed.metric.__/escape"] == "../escape"
    assert tags["tracelet.renamed.param.opt_lr"] == "opt:lr"
    assert tags["tracelet.renamed.tag.team_"] == "team!"


def test_params_stringified_long_one_truncated_and_saved_relogged_one_kept_as_tag(sqlite_uri: str) -> None:
    long_value = "".join(str(i % 10) for i in range(7000))
    many = {f"p{i:03d}": i for i in range(250)}  # more than one request (100 params each)
    exp = start(sqlite_uri)
    exp.log_params({"lr": 0.1, "layers": [64, 32], "cfg": {"a": 1}, "flag": True, "none": None, "long": long_value})
    exp.log_params(many)
    assert exp.flush(timeout=30)
    exp.log_params({"lr": 0.2, "flag": True})  # lr changes (MLflow forbids it), flag is the same value
    exp.log_metric("after", 1.0, 0)
    report = exp.stop()
    assert report is not None and report.complete and report.backends["mlflow"].errors == {}

    client = MlflowClient(sqlite_uri)
    run_id = mlflow_run_id(exp)
    run = client.get_run(run_id)
    params = run.data.params
    assert params["lr"] == "0.1" and run.data.tags["tracelet.param.lr"] == "0.2"
    assert "tracelet.param.flag" not in run.data.tags
    assert params["layers"] == "[64, 32]" and params["cfg"] == '{"a": 1}'
    assert params["flag"] == "True" and params["none"] == "None"
    assert all(params[k] == str(v) for k, v in many.items())
    assert len(params["long"]) == MAX_PARAM_VALUE_LENGTH
    assert params["long"].startswith(long_value[:5000]) and params["long"].endswith(
        "full value: artifact long-params/v1/files/long.txt]"
    )
    assert "...[truncated 7000 chars; " in params["long"]  # N is the full value's length, as the README says
    saved = client.download_artifacts(run_id, "long-params/v1/files/long.txt", str(Path.cwd() / "dl"))
    assert Path(saved).read_text() == long_value


def test_native_and_experiment_tags(sqlite_uri: str, tmp_path: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "train.py").write_text("print()\n")
    subprocess.run([*git, "add", "train.py"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()

    exp = tracelet.Experiment(
        "tagged",
        backend=["mlflow"],
        tags=["baseline", "team=ml"],
        project="tag-project",
        options={"mlflow": {"tracking_uri": sqlite_uri}},
    )
    exp.start()
    exp.set_tags({"stage": "dev"})
    exp.stop()

    client = MlflowClient(sqlite_uri)
    run = client.get_run(mlflow_run_id(exp))
    tags = run.data.tags
    assert tags["mlflow.source.git.commit"] == commit
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.user"] == getpass.getuser()
    assert tags["mlflow.source.name"] == sys.argv[0]
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.runName"] == run.info.run_name == "tagged"
    assert tags["tracelet.run_id"] == exp.id
    assert Path(tags["tracelet.run_dir"]).is_absolute() and (Path(tags["tracelet.run_dir"]) / "run.json").is_file()
    assert tags["baseline"] == "" and tags["team"] == "ml" and tags["stage"] == "dev"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "tag-project"
    store_dir = Path(sqlite_uri.removeprefix("sqlite:///")).parent
    assert experiment.artifact_location == (store_dir / "mlartifacts" / "tag-project").as_uri()


def test_finished_and_failed_statuses(sqlite_uri: str) -> None:
    exp = start(sqlite_uri, name="ok")
    exp.stop()
    with pytest.raises(RuntimeError):
        with start(sqlite_uri, name="boom") as failing:
            failing.log_metric("x", 1.0, 0)
            raise RuntimeError("training crashed")
    client = MlflowClient(sqlite_uri)
    assert client.get_run(mlflow_run_id(exp)).info.status == "FINISHED"
    failed = client.get_run(mlflow_run_id(failing))
    assert failed.info.status == "FAILED" and failed.data.metrics == {"x": 1.0}


def test_sigterm_ends_the_run_killed(sqlite_uri: str, python_env: dict[str, str]) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time, tracelet
        exp = tracelet.start_logging("sigterm", project="proj", backend="mlflow",
                                     config={{"mlflow_tracking_uri": {sqlite_uri!r}, "track_system": False}})
        exp.log_metric("loss", 0.5, 0)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=python_env, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.terminate()
    assert proc.wait(timeout=60) == -15  # died of SIGTERM, after ending the run
    runs = MlflowClient(sqlite_uri).search_runs([MlflowClient(sqlite_uri).get_experiment_by_name("proj").experiment_id])
    assert [(r.info.run_name, r.info.status, r.data.metrics) for r in runs] == [("sigterm", "KILLED", {"loss": 0.5})]


def test_tracking_uri_sources_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uris = {k: f"sqlite:///{tmp_path / 'store' / f'{k}.db'}" for k in ("key", "block", "env")}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uris["env"])
    exp = tracelet.start_logging(
        "a", backend="mlflow", config={"mlflow": {"tracking_uri": uris["block"]}, "mlflow_tracking_uri": uris["key"]}
    )
    exp.stop()
    assert exp.report.backends["mlflow"].details["tracking_uri"] == uris["key"]
    exp = tracelet.start_logging("b", backend="mlflow", config={"mlflow": {"tracking_uri": uris["block"]}})
    exp.stop()
    assert exp.report.backends["mlflow"].details["tracking_uri"] == uris["block"]
    exp = tracelet.start_logging("c", backend="mlflow")
    exp.stop()
    assert exp.report.backends["mlflow"].details["tracking_uri"] == uris["env"]
    for key, name in (("key", "a"), ("block", "b"), ("env", "c")):
        runs = MlflowClient(uris[key]).search_runs(
            [MlflowClient(uris[key]).get_experiment_by_name("default").experiment_id]
        )
        assert [r.info.run_name for r in runs] == [name]


def test_mlflow_default_store_is_sqlite_in_the_working_directory(tmp_path: Path) -> None:
    exp = tracelet.start_logging("defaults", backend="mlflow")
    exp.log_metric("m", 2.0, 0)
    exp.stop()
    db = tmp_path / "mlflow.db"
    assert db.exists()
    assert exp.report.backends["mlflow"].details["tracking_uri"] == f"sqlite:///{db}"
    run = MlflowClient(f"sqlite:///{db}").get_run(mlflow_run_id(exp))
    assert run.data.metrics == {"m": 2.0}


def test_mlruns_folder_quirk_is_a_clear_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "mlruns" / "1").mkdir(parents=True)
    (tmp_path / "mlruns" / "1" / "meta.yaml").write_text("name: old\n")
    with pytest.raises(ConfigurationError) as err:
        tracelet.start_logging("quirk", backend="mlflow")
    message = str(err.value)
    assert "mlruns" in message and "file store" in message and "MLFLOW_ALLOW_FILE_STORE" in message
    assert "sqlite:///" in message


def test_import_does_not_import_mlflow_and_telemetry_is_off_for_runs(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    # Outside pytest and CI, where MLflow would switch its usage telemetry on by itself.
    env = {
        k: v for k, v in python_env.items() if k not in ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "DO_NOT_TRACK")
    }
    env.pop("MLFLOW_DISABLE_TELEMETRY", None)
    script = textwrap.dedent(
        f"""
        import os, sys
        import tracelet, tracelet_mlflow
        assert "mlflow" not in sys.modules, "importing tracelet_mlflow imported mlflow"
        exp = tracelet.start_logging("t", backend="mlflow",
                                     config={{"mlflow_tracking_uri": "sqlite:///{tmp_path}/t.db"}})
        from mlflow.telemetry import get_telemetry_client
        print(os.environ.get("MLFLOW_DISABLE_TELEMETRY"), get_telemetry_client())
        exp.stop()
        """
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["true", "None"]


def test_telemetry_choice_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_mlflow import telemetry

    assert telemetry.wanted({}) is False
    assert telemetry.wanted({"telemetry": "true"}) is True
    monkeypatch.setenv("DO_NOT_TRACK", "false")
    assert telemetry.wanted({}) is None  # the user's own setting rules


def test_spec_context_manager_example(tmp_path: Path) -> None:
    losses = iter([0.9 - 0.05 * i for i in range(10)])

    def train_epoch() -> float:
        return next(losses)

    # The spec's "Context Manager Usage", as written (MLflow's default store: ./mlflow.db).
    with tracelet.start_logging("context_experiment", backend="mlflow") as exp:
        # Training code here
        for epoch in range(10):
            loss = train_epoch()
            exp.log_metric("loss", loss, epoch)

        # Experiment automatically closed when exiting context

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(mlflow_run_id(exp))
    assert run.info.status == "FINISHED" and run.info.run_name == "context_experiment"
    history = sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(i, 0.9 - 0.05 * i) for i in range(10)]


def test_a_retried_batch_does_not_resend_what_already_went_out(sqlite_uri: str) -> None:
    exp = start(sqlite_uri)
    plugin = exp.backends[0].plugin
    real = plugin._log_batch
    sent: list[int] = []
    calls = {"n": 0}

    def flaky(run_id: str, metrics: list = (), params: list = (), tags: list = ()) -> None:
        calls["n"] += 1
        if metrics and calls["n"] == 2:
            raise ConnectionError("dropped mid-batch")  # the second request of the batch fails once
        real(run_id, metrics=metrics, params=params, tags=tags)
        sent.extend(m.step for m in metrics)

    plugin._log_batch = flaky
    for i in range(2500):
        exp.log_metric("loss", float(i), i)
    report = exp.stop()
    assert report is not None and report.complete
    assert report.backends["mlflow"].errors == {"log_metrics: ConnectionError": 1}
    assert sorted(sent) == list(range(2500)), "every point sent exactly once"
    history = MlflowClient(sqlite_uri).get_metric_history(mlflow_run_id(exp), "loss")
    assert sorted(m.step for m in history) == list(range(2500))


def test_param_relogged_in_the_next_call_keeps_the_first_value_and_tags_the_latest(sqlite_uri: str) -> None:
    # No flush between the calls: both usually reach the worker in one batch, where they must not be merged
    # into the latest value (MLflow keeps a param's first value; the latest goes to a tag).
    exp = start(sqlite_uri)
    exp.log_params({"lr": 0.1, "bs": 32})
    exp.log_params({"lr": 0.2, "bs": 32})
    report = exp.stop()
    assert report is not None and report.complete and report.backends["mlflow"].errors == {}
    run = MlflowClient(sqlite_uri).get_run(mlflow_run_id(exp))
    assert run.data.params["lr"] == "0.1" and run.data.params["bs"] == "32"
    assert run.data.tags["tracelet.param.lr"] == "0.2"
    assert "tracelet.param.bs" not in run.data.tags


def test_the_block_takes_experiment_name_and_warns_about_unknown_keys(
    sqlite_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Upstream's docs name the MLflow experiment in the block; a key the backend does not know is warned about
    (it used to be ignored silently)."""
    exp = tracelet.start_logging(
        "named",
        project="tracelet-proj",
        backend="mlflow",
        config={"mlflow": {"tracking_uri": sqlite_uri, "experiment_name": "from-the-block", "tracking_urri": "x"}},
    )
    exp.log_metric("m", 1.0, 0)
    exp.stop()
    client = MlflowClient(sqlite_uri)
    experiment = client.get_experiment_by_name("from-the-block")
    assert experiment is not None
    assert client.get_run(mlflow_run_id(exp)).info.experiment_id == experiment.experiment_id
    assert "'tracking_urri' is not supported" in caplog.text and "did you mean 'tracking_uri'?" in caplog.text


def test_summary_values_become_metrics_at_the_last_step(sqlite_uri: str) -> None:
    exp = start(sqlite_uri)
    for step in range(5):
        exp.log_metric("loss", 1.0 / (step + 1), step * 10)
    exp.log_summary({"train_runtime": 12.5, "total_flos": 3e9})
    exp.log_summary({"best": 0.9}, iteration=3)
    report = exp.stop()
    assert report is not None and report.complete and report.backends["mlflow"].errors == {}

    client = MlflowClient(sqlite_uri)
    run_id = mlflow_run_id(exp)
    assert [(m.value, m.step) for m in client.get_metric_history(run_id, "train_runtime")] == [(12.5, 40)]
    assert [(m.value, m.step) for m in client.get_metric_history(run_id, "total_flos")] == [(3e9, 40)]
    assert [(m.value, m.step) for m in client.get_metric_history(run_id, "best")] == [(0.9, 3)]
