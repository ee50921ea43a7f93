"""The W&B backend against real W&B in offline mode, read back from the run's `.wandb` transaction log."""

from __future__ import annotations

import json
import math
import shlex
import sys
import textwrap
from pathlib import Path

import pytest

import tracelet
from tracelet.plugin import RunStatus
from tracelet_testsupport.wandb import read_run, run_of


def start(name: str = "wb-run", **config: object) -> tracelet.Experiment:
    return tracelet.start_logging(name, project="wb-proj", backend="wandb", config=dict(config))


def test_import_does_not_import_wandb(python_env: dict[str, str]) -> None:
    import subprocess

    code = "import sys, tracelet_wandb, tracelet_wandb.backend; print('wandb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env, check=True)
    assert out.stdout.strip() == "False"


def test_every_point_kept_with_its_step_out_of_order_and_two_scales() -> None:
    exp = start()
    for step in range(5):  # batch scale
        exp.log_metric("loss", 1.0 / (step + 1), step)
        exp.log_metric("acc", step / 10, step)
    exp.log_metric("loss", 9.0, 2)  # out of order: W&B would drop step=2 after step=4
    exp.log_metric("val_loss", 0.5, 0)  # epoch scale
    exp.log_metric("val_loss", 0.25, 1)
    exp.log_metric("odd", math.nan, 7)
    exp.log_metric("odd", math.inf, 8)
    report = exp.stop()
    assert report.backends["wandb"].undelivered == 0 and not report.backends["wandb"].errors
    run = run_of(report)
    assert run.points("loss") == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.25), (4, 0.2), (2, 9.0)]
    assert run.points("acc") == [(s, s / 10) for s in range(5)]
    assert run.points("val_loss") == [(0, 0.5), (1, 0.25)]
    assert math.isnan(run.points("odd")[0][1]) and run.points("odd")[1] == (8, math.inf)
    # the points of one step went out in one log call: one history row holds loss and acc of step s
    assert [sorted(k for k in row if not k.startswith("_")) for row in run.history[:5]] == [
        ["acc", "loss", "tracelet/step"]
    ] * 5
    # tracelet/step is the x-axis of every metric; W&B's own _step just counts rows
    globs = {m.glob_name: m.step_metric for m in run.metrics if m.glob_name}
    assert globs == {"*": "tracelet/step"}
    assert [row["_step"] for row in run.history] == list(range(len(run.history)))
    # each row carries the time its first point was logged
    journal = {(e[1], e[3]): e[4] for e in _journal_points(exp)}
    assert run.history[0]["_timestamp"] == pytest.approx(journal[("loss", 0)])
    # the summary holds each metric's last value, in logging order
    assert run.summary["loss"] == 9.0 and run.summary["acc"] == 0.4 and run.summary["val_loss"] == 0.25


def _journal_points(exp: tracelet.Experiment) -> list[tuple]:
    from tracelet.core.engine import journal

    return [e for _, e in journal.read_events(Path(exp.run_dir) / journal.EVENTS_FILE) if e[0] == "m"]


def test_reserved_names_are_mapped_and_recorded() -> None:
    exp = start()
    exp.log_metric("_step", 1.0, 0)
    exp.log_metric("tracelet/step", 2.0, 0)
    run = run_of(exp.stop())
    assert run.points("metric/_step") == [(0, 1.0)] and run.points("metric/tracelet/step") == [(0, 2.0)]
    assert run.config["tracelet"]["renamed"] == {"metric/_step": "_step", "metric/tracelet/step": "tracelet/step"}


def test_mapping_config_tree_tags_name_project() -> None:
    exp = tracelet.start_logging(
        "mapped-run",
        project="tracelet-proj",
        backend="wandb",
        config={"wandb": {"group": "grp", "job_type": "train", "notes": "a note"}, "wandb_project": "wb-project"},
    )
    exp.log_params({"optimizer": {"name": "adam", "betas": {"b1": 0.9, "b2": 0.99}}, "batch_size": 32})
    exp.log_params({"batch_size": 64})  # a later value wins
    exp.set_tags({"team": "vision"})
    exp.set_tags({"owner": "ana"})
    report = exp.stop()
    run = run_of(report)
    assert run.run.display_name == "mapped-run" and run.run.project == "wb-project"
    assert run.run.run_group == "grp" and run.run.job_type == "train" and run.run.notes == "a note"
    config = run.user_config()
    assert config["optimizer"] == {"name": "adam", "betas": {"b1": 0.9, "b2": 0.99}}  # nested, as a tree
    assert config["batch_size"] == 64
    assert config["tags"] == {"team": "vision", "owner": "ana"}
    assert config["tracelet"]["run_id"] == exp.id
    details = report.backends["wandb"].details
    assert details["project"] == "wb-project" and details["mode"] == "offline"


def test_experiment_tags_become_wandb_tags() -> None:
    exp = tracelet.Experiment("tagged", backend=["wandb"], tags=["baseline", "k=v", "x" * 80], project="p")
    exp.start()
    run = run_of(exp.stop())
    assert run.tags == ["baseline", "k=v", "x" * 64]  # W&B's limit is 64 characters


def test_project_defaults_to_tracelets_project() -> None:
    run = run_of(start().stop())
    assert run.run.project == "wb-proj"


@pytest.mark.parametrize(("status", "code"), [(RunStatus.FINISHED, 0), (RunStatus.FAILED, 1), (RunStatus.KILLED, 255)])
def test_exit_code_mirrors_how_the_run_ended(status: RunStatus, code: int) -> None:
    exp = start()
    exp.log_metric("loss", 1.0, 0)
    run = run_of(exp.stop(status=status))
    assert run.exit is not None and run.exit_code == code


def test_exception_in_context_manager_fails_the_run() -> None:
    with pytest.raises(RuntimeError):
        with start() as exp:
            exp.log_metric("loss", 1.0, 0)
            raise RuntimeError("boom")
    assert run_of(exp.report).exit_code == 1


def test_details_give_offline_folder_and_exact_sync_command() -> None:
    report = start().stop()
    details = report.backends["wandb"].details
    folder = Path(details["run_folder"])
    assert folder.is_dir() and Path(details["transaction_log"]).parent == folder
    assert folder.name.startswith("offline-run-") and folder.name.endswith(details["run_id"])
    assert details["sync_command"] == f"wandb sync {shlex.quote(str(folder))}"
    assert shlex.split(details["sync_command"]) == ["wandb", "sync", str(folder)]


def test_console_capture_and_system_metrics_off_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    exp = start()
    exp.log_metric("loss", 1.0, 0)
    print("from the training script")
    report = exp.stop()
    run = run_of(report)
    folder = Path(report.backends["wandb"].details["run_folder"])
    assert not (folder / "files" / "output.log").exists()  # no console capture
    assert "stats" not in run.kinds  # no wandb-symon samples
    assert "from the training script" in capsys.readouterr().out


def test_config_block_turns_console_and_system_metrics_on(python_env: dict[str, str], tmp_path: Path) -> None:
    # Its own interpreter: W&B patches the `write` of whatever `sys.stdout` is when wandb is first imported, once
    # per process, and earlier tests here import it under pytest's capture (see the README's options).
    import subprocess

    code = textwrap.dedent(
        """
        import json, time, tracelet
        exp = tracelet.start_logging("noisy", project="wb-proj", backend="wandb", config={"wandb": {
            "console": "wrap", "system_metrics": True, "settings": {"x_stats_sampling_interval": 0.1}}})
        print("captured line", flush=True)
        time.sleep(2.5)  # many sampling intervals, with margin for a busy machine
        details = exp.stop().backends["wandb"].details
        print(json.dumps([details["transaction_log"], details["run_folder"]]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env, cwd=tmp_path,
                         timeout=240)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    log, folder = json.loads(out.stdout.strip().splitlines()[-1])
    assert "captured line" in out.stdout  # the console still shows it
    assert "stats" in read_run(log).kinds
    assert "captured line" in (Path(folder) / "files" / "output.log").read_text()


def test_false_as_a_string_means_off_and_block_tags_join_the_run_tags(
    python_env: dict[str, str], tmp_path: Path
) -> None:
    """`{"wandb": {"console": "false"}}` means off (it used to be read as truthy), as do the other switches;
    `tags` in the block join the run's tags. Its own interpreter, as above: W&B patches stdout once per process."""
    import subprocess

    code = textwrap.dedent(
        """
        import json, time, tracelet
        exp = tracelet.Experiment("quiet", project="wb-proj", backend=["wandb"], tags=["baseline"], options={
            "wandb": {"console": "false", "system_metrics": "false", "metadata": "0", "tags": ["from-block"],
                      "settings": {"x_stats_sampling_interval": 0.1}}}).start()
        print("not captured", flush=True)
        time.sleep(1.0)
        details = exp.stop().backends["wandb"].details
        print(json.dumps([details["transaction_log"], details["run_folder"]]))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=python_env, cwd=tmp_path,
                         timeout=240)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    log, folder = json.loads(out.stdout.strip().splitlines()[-1])
    run = read_run(log)
    assert not (Path(folder) / "files" / "output.log").exists() and "stats" not in run.kinds
    assert sorted(run.run.tags) == ["baseline", "from-block"]


def test_several_runs_one_after_another_and_side_by_side() -> None:
    first = start("first")
    first.log_metric("loss", 1.0, 0)
    one = run_of(first.stop())
    a = tracelet.Experiment("side-a", backend=["wandb"], project="p")
    b = tracelet.Experiment("side-b", backend=["wandb"], project="p")
    a.start()
    b.start()
    for i in range(3):
        a.log_metric("loss", float(i), i)
        b.log_metric("loss", float(-i), i)
    ra, rb = run_of(a.stop()), run_of(b.stop())
    assert one.run.display_name == "first" and one.points("loss") == [(0, 1.0)]
    assert ra.run.display_name == "side-a" and ra.points("loss") == [(0, 0.0), (1, 1.0), (2, 2.0)]
    assert rb.run.display_name == "side-b" and rb.points("loss") == [(0, 0.0), (1, -1.0), (2, -2.0)]
    assert len({one.run.run_id, ra.run.run_id, rb.run.run_id}) == 3
    assert all(r.exit_code == 0 for r in (one, ra, rb))


def test_unknown_option_warns(caplog: pytest.LogCaptureFixture) -> None:
    start(wandb_colour="blue").stop()
    assert "'colour' is not supported" in caplog.text


def test_read_run_accepts_the_run_folder() -> None:
    report = start().stop()
    assert read_run(report.backends["wandb"].details["run_folder"]).exit_code == 0


def test_disabled_mode_runs_without_writing_anything(tmp_path: Path) -> None:
    exp = start(wandb_mode="disabled")
    exp.log_metric("loss", 1.0, 0)
    report = exp.stop()
    assert report.backends["wandb"].details["mode"] == "disabled" and report.complete
    assert not list(Path(tmp_path).rglob("*.wandb"))


def test_unknown_mode_is_a_configuration_error() -> None:
    from tracelet.plugin import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown W&B mode 'bogus'"):
        start(wandb_mode="bogus")


SECRET_RUN = """
import sys, tracelet
exp = tracelet.start_logging("argv", project="p", backend="wandb", config={"track_system": False, "wandb": {"metadata": sys.argv[1] == "on"}})
exp.log_metric("x", 1.0, 0)
print(exp.stop().backends["wandb"].details["transaction_log"])
"""


@pytest.mark.parametrize("metadata", ["off", "on"])
def test_command_line_secrets_never_reach_wandb_unless_its_metadata_is_on(
    metadata: str, tmp_path: Path, python_env: dict[str, str]
) -> None:
    import subprocess

    script = tmp_path / "train.py"
    script.write_text(SECRET_RUN)
    out = subprocess.run(
        [sys.executable, str(script), metadata, "--api-key=SEKRIT-42"],
        capture_output=True, text=True, env=python_env, cwd=tmp_path, timeout=120, check=True,
    )  # fmt: skip
    run = read_run(out.stdout.strip().splitlines()[-1])
    assert run.config["tracelet"]["argv"] == [str(script), metadata, "--api-key=***"]  # Tracelet's, redacted
    wandb_meta = [r for r in _environment_records(run.path) if r.os]
    found = [p for p in tmp_path.rglob("*") if p.is_file() and b"SEKRIT-42" in p.read_bytes() and p != script]
    if metadata == "off":
        assert not wandb_meta and not found  # W&B's own (unredacted) metadata is not collected
    else:
        assert wandb_meta and found  # the option acts: W&B records the command line as it is


def _environment_records(path: Path) -> list:
    from tracelet_wandb import txlog

    return [r.environment for r in txlog.records(path) if r.WhichOneof("record_type") == "environment"]


NO_STOP_RUN = """
import json, sys, tracelet
exp = tracelet.start_logging("no-stop", project="p", backend="wandb", config={"track_system": False})
for step in range(300):
    exp.log_metric("loss", float(step), step)
print(json.dumps(str(exp.run_dir)), flush=True)
if sys.argv[1] == "crash":
    raise RuntimeError("training crashed")
"""


@pytest.mark.parametrize(("ending", "code"), [("return", 0), ("crash", 1)])
def test_a_script_that_never_calls_stop_delivers_everything_at_exit(
    ending: str, code: int, tmp_path: Path, python_env: dict[str, str]
) -> None:
    # W&B registers an atexit hook that tears its service down when its first run starts, after Tracelet's
    # own exit hook; atexit runs the later one first, so without Tracelet moving its hook behind it the run's
    # last points would find the service gone: lost in W&B, and the exit stuck for the stop timeout.
    import subprocess
    import time

    script = tmp_path / "train.py"
    script.write_text(NO_STOP_RUN)
    env = {**python_env, "TRACELET_STOP_TIMEOUT": "60"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, str(script), ending], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=240)  # fmt: skip
    elapsed = time.monotonic() - started
    assert out.returncode == code, out.stderr[-3000:]
    assert "undelivered" not in out.stderr and "Connection lost" not in out.stderr, out.stderr[-3000:]
    logs = list(tmp_path.rglob("run-*.wandb"))
    assert len(logs) == 1
    run = read_run(logs[0])
    assert run.points("loss") == [(s, float(s)) for s in range(300)]
    assert run.exit_code == code
    assert elapsed < 50  # nowhere near the 60 s stop timeout it used to wait out


def test_summary_values_go_to_run_summary_not_history() -> None:
    exp = start()
    exp.log_metric("loss", 0.5, 3)
    exp.log_summary({"train_runtime": 12.5, "_private": 1})
    exp.log_summary({"train_runtime": 13.0})  # a later value replaces it
    report = exp.stop()
    assert report is not None and report.complete
    run = run_of(report)
    assert run.summary["train_runtime"] == 13.0
    assert run.summary["metric/_private"] == 1  # W&B reserves leading underscores: named as metrics are
    assert not [row for row in run.history if "train_runtime" in row]  # a single value, not a point
