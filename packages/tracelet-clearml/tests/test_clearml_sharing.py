"""ClearML's one-task-per-process rule, a task the user opened, in-process reporting and opt-in switches.

Each check runs in a fresh interpreter: ClearML's main task and patches are process-wide.
"""

from __future__ import annotations

from pathlib import Path

from tracelet_testsupport.clearml import OfflineSession, last_json, python


def test_logs_into_a_task_the_user_opened_and_leaves_it_open(
    tmp_path: Path, cache_dir: Path, clearml_home: Path
) -> None:
    # The user's own clearml.conf (in the test's HOME): in-process reporting, else closing the user's task
    # meets ClearML's forked-reporter stall this test is not about.
    (clearml_home / "clearml.conf").write_text("sdk { development { report_use_subprocess: false } }\n")
    code = """
        from pathlib import Path
        from clearml import Task
        Task.set_offline(True)
        mine = Task.init(project_name="user-proj", task_name="user-task", auto_connect_frameworks=False,
                         auto_connect_arg_parser=False, auto_connect_streams=False, auto_resource_monitoring=False)
        exp = run("inside-user-task")
        for i in range(10):
            exp.log_metric("acc", i / 10, i)
        report = exp.stop()
        details = report.backends["clearml"].details
        still_open = Task.current_task() is mine and not Path(details["offline_session"]).exists()
        mine.get_logger().report_scalar("own", "own", 1.0, 0)
        mine.close()
        print(json.dumps({"details": details, "mine": mine.id, "still_open": still_open}))
    """
    result = last_json(python(code, tmp_path))
    assert result["details"]["attached"] is True and result["details"]["task_id"] == result["mine"]
    assert result["still_open"] is True  # Tracelet did not close the user's task
    session = OfflineSession(cache_dir, result["mine"])
    assert session.scalars() == {("acc", "acc"): [(i, i / 10) for i in range(10)], ("own", "own"): [(0, 1.0)]}
    assert session.task["name"] == "user-task"


def test_a_second_live_run_in_the_process_is_refused_clearly(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        first = run("first")
        first.log_metric("m", 1.0, 0)
        try:
            run("second")
            outcome = "started"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        first.log_metric("m", 2.0, 1)
        report = first.stop()
        print(json.dumps({"outcome": outcome, "task": report.backends["clearml"].details["task_id"]}))
    """
    result = last_json(python(code, tmp_path))
    assert result["outcome"].startswith("ConfigurationError") and "one task per process" in result["outcome"]
    assert OfflineSession(cache_dir, result["task"]).scalars() == {("m", "m"): [(0, 1.0), (1, 2.0)]}


def test_reporting_runs_in_process(tmp_path: Path) -> None:
    code = """
        import psutil
        exp = run("in-process")
        exp.log_metric("m", 1.0, 0)
        assert exp.flush(60)
        from clearml import Task
        children = psutil.Process().children(recursive=True)
        exp.stop()
        print(json.dumps({"children": len(children), "subprocess": bool(Task._report_subprocess_enabled)}))
    """
    result = last_json(python(code, tmp_path))
    assert result == {"children": 0, "subprocess": False}


def test_opt_in_argparse_capture_acts_during_the_run_and_is_undone_at_stop(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        before = argparse.ArgumentParser.parse_args
        exp = run("argv", auto_connect_arg_parser=True)
        exp.log_metric("m", 1.0, 0)
        assert exp.flush(60)
        during = argparse.ArgumentParser.parse_args.__module__
        parser = argparse.ArgumentParser()
        parser.add_argument("--depth", type=int, default=3)
        parser.parse_args(["--depth", "5"])
        report = exp.stop()
        print(json.dumps({"during": during, "restored": argparse.ArgumentParser.parse_args is before,
                          "task": report.backends["clearml"].details["task_id"]}))
    """
    result = last_json(python(code, tmp_path))
    assert result["during"].startswith("clearml") and result["restored"] is True
    # ClearML's own argparse capture recorded the parsed arguments (in its "Args" section).
    assert OfflineSession(cache_dir, result["task"]).hyperparams()["Args"]["depth"] == "5"


def test_opt_in_console_capture_acts_during_the_run_and_is_undone_at_stop(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        before = sys.stdout
        exp = run("console", auto_connect_streams=True)
        exp.log_metric("m", 1.0, 0)
        assert exp.flush(60)
        during = type(sys.stdout).__module__
        print("hello from the training loop", flush=True)
        report = exp.stop()
        print(json.dumps({"during": during, "restored": sys.stdout is before,
                          "task": report.backends["clearml"].details["task_id"]}))
    """
    result = last_json(python(code, tmp_path))
    assert result["during"].startswith("clearml") and result["restored"] is True
    log = (OfflineSession(cache_dir, result["task"]).folder / "log.jsonl").read_text()
    assert "hello from the training loop" in log
