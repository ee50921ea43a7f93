"""Environment (allowlist only, packages as an artifact) and arguments (masked argv, argparse results)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from tracelet.core.contract.redact import MASK
from tracelet_testsupport.collectors import run_json, stored


def test_only_allowlisted_variables_reach_backends_and_the_store(
    monkeypatch: pytest.MonkeyPatch, experiment_factory
) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "secret-named-value")
    monkeypatch.setenv("FAVOURITE_COLOUR", "innocent-value")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("SLURM_AUTH_TOKEN", "allowlisted-but-secret")
    exp = experiment_factory(track_environment=True, backend=["local", "recorder"]).start()
    exp.stop()
    from tracelet_testplugin.backends import record_for

    run_text = (Path(exp.run_dir) / "run.json").read_text()
    for env in (
        run_json(exp)["metadata"]["environment"]["env"],
        record_for(exp.id, "recorder")["run"].metadata["environment"]["env"],
    ):
        assert "MY_SERVICE_TOKEN" not in env and "FAVOURITE_COLOUR" not in env
        assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["SLURM_JOB_ID"] == "4242" and env["OMP_NUM_THREADS"] == "2"
        assert env["SLURM_AUTH_TOKEN"] == MASK
    for value in ("secret-named-value", "innocent-value", "allowlisted-but-secret"):
        assert value not in run_text
    assert "PATH" not in run_json(exp)["metadata"]["environment"]["env"]


def test_the_allowlist_is_extended_by_a_setting(monkeypatch: pytest.MonkeyPatch, experiment_factory) -> None:
    monkeypatch.setenv("MYPROJ_DATASET", "imagenet")
    monkeypatch.setenv("MYPROJ_API_KEY", "k")
    monkeypatch.setenv("EXPERIMENT_SEED", "7")
    monkeypatch.setenv("TRACELET_ENV_ALLOWLIST", "MYPROJ_*,EXPERIMENT_SEED")
    exp = experiment_factory(track_environment=True).start()
    exp.stop()
    env = run_json(exp)["metadata"]["environment"]["env"]
    assert env["MYPROJ_DATASET"] == "imagenet" and env["EXPERIMENT_SEED"] == "7" and env["MYPROJ_API_KEY"] == MASK


def test_environment_facts_and_the_requirements_artifact(experiment_factory) -> None:
    exp = experiment_factory(track_environment=True).start()
    exp.stop()
    info = run_json(exp)["metadata"]["environment"]
    assert info["python"] == sys.version.split()[0]
    assert info["hostname"] and info["platform"] and info["cpu_count"] >= 1
    assert info["gpu_models"] == []  # this machine has no NVIDIA driver
    (artifact,) = stored(exp).artifacts()
    assert artifact.name == "environment" and artifact.type.value == "config"
    files = {f.artifact_path: Path(f.local_path) for f in artifact.files}
    assert set(files) == {"requirements.txt", "environment.json"}
    facts = json.loads(files["environment.json"].read_text())
    assert facts["python"] == info["python"] and facts["hostname"] == info["hostname"]
    assert facts["env"] == info["env"]  # the same allowlisted, masked variables as the metadata
    lines = files["requirements.txt"].read_text().splitlines()
    import psutil

    assert f"psutil=={psutil.__version__}" in lines
    assert any(line.startswith("tracelet==") for line in lines)
    assert lines == sorted(lines, key=lambda line: line.split("==")[0].lower()) and all("==" in line for line in lines)


def test_argv_is_recorded_masked(monkeypatch: pytest.MonkeyPatch, experiment_factory) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", "--api-key", "s3cr3t", "--max-tokens", "512"])
    exp = experiment_factory(track_args=True).start()
    exp.stop()
    meta = run_json(exp)["metadata"]
    assert meta["argv"] == ["train.py", "--api-key", MASK, "--max-tokens", "512"]
    assert meta["source"] == "train.py"


def test_argparse_results_become_params_while_the_run_is_active(experiment_factory) -> None:
    original = argparse.ArgumentParser.parse_known_args
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--hf-token")
    parser.add_argument("--max-tokens", type=int)
    sub = parser.add_subparsers(dest="command")
    fit = sub.add_parser("fit")
    fit.add_argument("--epochs", type=int, default=3)

    parser.parse_args(["--lr", "0.5"])  # before the run: not seen
    exp = experiment_factory(track_args=True).start()
    assert argparse.ArgumentParser.parse_known_args is not original
    args = parser.parse_args(["--lr", "0.01", "--hf-token", "abc", "--max-tokens", "64", "fit", "--epochs", "5"])
    assert args.lr == 0.01 and args.epochs == 5  # the script gets its namespace as always
    known, rest = argparse.ArgumentParser(add_help=False).parse_known_args(["--unknown", "1"])
    exp.stop()
    assert argparse.ArgumentParser.parse_known_args is original  # the patch is gone at stop
    parser.parse_args(["--lr", "9"])  # after the run: not seen either
    params = stored(exp).params()
    assert params == {
        "args/lr": 0.01,
        "args/hf_token": MASK,
        "args/max_tokens": 64,
        "args/command": "fit",
        "args/epochs": 5,
    }
    assert rest == ["--unknown", "1"]


def test_a_parse_error_still_exits_as_before(experiment_factory, capsys) -> None:
    parser = argparse.ArgumentParser(prog="train")
    parser.add_argument("--lr", type=float)
    exp = experiment_factory(track_args=True).start()
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--lr", "fast"])
    exp.stop()
    assert info.value.code == 2 and "invalid float value" in capsys.readouterr().err
    assert stored(exp).params() == {}


class MetricsOnly:
    """A backend that stores no artifacts."""

    from tracelet.plugin import hookimpl

    @hookimpl
    def backend_log_metrics(self, metrics: list) -> None:
        pass


def test_no_warning_about_the_environment_artifact_when_no_backend_takes_artifacts(
    experiment_factory, caplog: pytest.LogCaptureFixture
) -> None:
    import tracelet

    tracelet.register_plugin(MetricsOnly, name="metrics-only")
    try:
        with caplog.at_level("WARNING", logger="tracelet"):
            exp = experiment_factory(backend=["metrics-only"], track_environment=True).start()
            exp.stop()
    finally:
        tracelet.unregister_plugin("metrics-only")
    assert "environment" in run_json(exp)["metadata"]  # the facts are still in the run's metadata
    assert not [r for r in caplog.records if "no active backend takes artifact" in r.getMessage()]
