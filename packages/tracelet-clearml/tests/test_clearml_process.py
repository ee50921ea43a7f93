"""The process is left as it was found, Tracelet's own exit handling keeps working, and offline means offline.

Each check runs in a fresh interpreter, so `import clearml` (which patches argparse) happens inside the run
under test and nothing from other tests is already patched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tracelet_testsupport.clearml import PRELUDE, OfflineSession, last_json, python


def test_process_is_left_as_found_after_stop(tmp_path: Path) -> None:
    code = """
        def my_sigterm(signum, frame):
            pass
        def my_excepthook(*args):
            sys.__excepthook__(*args)
        signal.signal(signal.SIGTERM, my_sigterm)
        sys.excepthook = my_excepthook
        # A run without ClearML first, so what follows measures what the ClearML backend leaves behind.
        Experiment("warm-up", backend=["local"], settings=TraceletSettings(track_system=False)).start().stop()

        def snapshot():
            P = argparse.ArgumentParser
            import builtins
            return {
                "parse_args": P.parse_args, "parse_known_args": P.parse_known_args,
                "add_subparsers": P.add_subparsers, "_get_value": P.__dict__.get("_get_value"),
                "patched_marker": P.__dict__.get("_parse_args_patched"),
                "stdout": sys.stdout, "stderr": sys.stderr, "excepthook": sys.excepthook, "exit": sys.exit,
                "threading_excepthook": threading.excepthook, "import": builtins.__import__,
                "sigterm": signal.getsignal(signal.SIGTERM), "sigint": signal.getsignal(signal.SIGINT),
                "process_run": __import__("multiprocessing.process").process.BaseProcess.run,
            }

        before = snapshot()
        assert "clearml" not in sys.modules
        exp = run("left-as-found")
        exp.log_metric("loss", 1.0, 0)
        assert exp.flush(60)  # the backend took the point: its task is open
        assert "clearml" in sys.modules
        during = snapshot()
        report = exp.stop()
        after = snapshot()
        def clearml_objects(state):
            return sorted(k for k, v in state.items() if (getattr(v, "__module__", None) or "").startswith("clearml")
                          or (getattr(getattr(v, "__func__", None), "__module__", None) or "").startswith("clearml"))
        print(json.dumps({
            "changed_after": sorted(k for k in before if before[k] is not after[k]),
            "changed_during": sorted(k for k in before if before[k] is not during[k]),
            "clearml_during": clearml_objects(during),
            "excepthook_is_mine": sys.excepthook is my_excepthook,
            "task_id": report.backends["clearml"].details["task_id"],
        }))
    """
    result = last_json(python(code, tmp_path))
    assert result["changed_after"] == []
    # ClearML's replacements (argparse, sys.exit, excepthook, its atexit hooks) are undone while the run is
    # live too, so Tracelet's own exit handling is in charge from the start. (During a run Tracelet's own argv
    # collector wraps parse_known_args and Tracelet's SIGTERM handler, chaining to mine, is installed; nothing
    # else differs.)
    assert result["clearml_during"] == []
    assert set(result["changed_during"]) <= {"parse_known_args", "sigterm"}
    assert result["excepthook_is_mine"] is True


def test_sigterm_ends_the_run_through_tracelet_with_everything_delivered(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        exp = run("terminated")
        for i in range(200):
            exp.log_metric("train/loss", 1.0 / (i + 1), i)
        print(json.dumps({"ready": True}), flush=True)
        time.sleep(60)
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if '"ready"' in line:
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGTERM  # died of the signal, as without Tracelet or ClearML
    (folder,) = [p for p in (cache_dir / "offline").iterdir() if p.is_dir()]
    session = OfflineSession(cache_dir, folder.name)
    assert session.task["status"] == "stopped"
    assert session.scalars()[("train", "loss")] == [(i, 1.0 / (i + 1)) for i in range(200)]
    assert session.zip.exists()


def test_uncaught_exception_marks_the_task_failed(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        exp = run("crashing")
        exp.log_metric("loss", 0.5, 1)
        raise SystemError("boom in training")
    """
    out = python(code, tmp_path)
    assert out.returncode == 1 and "boom in training" in out.stderr
    (folder,) = [p for p in (cache_dir / "offline").iterdir() if p.is_dir()]
    session = OfflineSession(cache_dir, folder.name)
    assert session.task["status"] == "failed"
    assert session.scalars() == {("loss", "loss"): [(1, 0.5)]}


def test_offline_mode_opens_no_socket(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        events = []
        NETWORK = {"socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
                   "socket.sendmsg", "socket.gethostbyname", "socket.gethostbyaddr"}
        def audit(event, args):
            if event in NETWORK:
                import traceback
                where = [f"{f.filename}:{f.name}" for f in traceback.extract_stack()[-6:-1]]
                events.append((event, repr(args)[:200], where))
        sys.addaudithook(audit)
        exp = run("no-network", detect_repository=True)  # even with ClearML's repository detection on
        art = exp.create_artifact("cfg", __import__("tracelet").ArtifactType.CONFIG)
        open("c.json", "w").write("{}")
        art.add_file("c.json")
        exp.log_artifact(art)
        for i in range(50):
            exp.log_metric("loss", float(i), i)
        exp.log_params({"lr": 0.1})
        report = exp.stop()
        time.sleep(1.0)  # threads ClearML started in the background get their chance to misbehave
        print(json.dumps({"events": events, "task": report.backends["clearml"].details["task_id"]}))
    """
    result = last_json(python(code, tmp_path))
    # The one socket allowed: urllib3 (imported by ClearML) probes IPv6 support at import by binding a socket
    # to ('::1', 0) and closing it: loopback, port 0, no connection, no packet.
    probe = [e for e in result["events"] if any(w.endswith("urllib3/util/connection.py:_has_ipv6") for w in e[2])]
    assert len(probe) <= 2 and all(e[0] in ("socket.__new__", "socket.bind") for e in probe)
    assert all("('::1', 0)" in e[1] for e in probe if e[0] == "socket.bind")
    assert [e for e in result["events"] if e not in probe] == []
    assert OfflineSession(cache_dir, result["task"]).scalars()[("loss", "loss")][-1] == (49, 49.0)


def test_stop_returns_quickly_in_twenty_runs_in_one_process(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        times = []
        ids = []
        for n in range(20):
            exp = run(f"quick-{n}")
            for i in range(100):
                exp.log_metric("loss", float(i), i)
            t0 = time.monotonic()
            report = exp.stop()
            times.append(time.monotonic() - t0)
            ids.append(report.backends["clearml"].details["task_id"])
        print(json.dumps({"times": times, "ids": ids}))
    """
    result = last_json(python(code, tmp_path, timeout=400))
    assert len(result["times"]) == 20 and max(result["times"]) < 5.0, result["times"]
    assert len(set(result["ids"])) == 20
    for task_id in result["ids"]:
        session = OfflineSession(cache_dir, task_id)
        assert session.zip.exists() and len(session.scalars()[("loss", "loss")]) == 100


def test_stop_returns_quickly_in_five_processes(tmp_path: Path, cache_dir: Path) -> None:
    code = """
        exp = run("one-per-process")
        for i in range(100):
            exp.log_metric("loss", float(i), i)
        t0 = time.monotonic()
        report = exp.stop()
        print(json.dumps({"time": time.monotonic() - t0, "id": report.backends["clearml"].details["task_id"]}))
    """
    results = []
    for _ in range(5):
        started = time.monotonic()
        results.append(last_json(python(code, tmp_path)))
        assert time.monotonic() - started < 120  # the whole process, imports included, exits too
    assert all(r["time"] < 5.0 for r in results), results
    for r in results:
        assert len(OfflineSession(cache_dir, r["id"]).scalars()[("loss", "loss")]) == 100


def test_close_is_bounded_by_the_close_timeout(tmp_path: Path) -> None:
    # A real stall: the session's metrics.jsonl is replaced by a FIFO nobody reads, so ClearML's writer blocks
    # in open() and Task.close() cannot finish. stop() returns after close_timeout, says why, and the process
    # is restored all the same.
    code = """
        import os
        from clearml import Task
        exp = run("stalled", close_timeout=2)
        exp.log_metric("m", 0.0, 0)
        assert exp.flush(60)
        fifo = Task.current_task().get_offline_mode_folder() / "metrics.jsonl"
        if fifo.exists():
            fifo.unlink()
        os.mkfifo(fifo)
        for i in range(1, 50):
            exp.log_metric("m", float(i), i)
        t0 = time.monotonic()
        report = exp.stop()
        elapsed = time.monotonic() - t0
        backend = report.backends["clearml"]
        print(json.dumps({"elapsed": elapsed, "errors": backend.errors, "finished": backend.finished,
                          "exit_restored": sys.exit.__module__ == "sys"}))
        os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let ClearML's blocked writer go, so the process can exit
    """
    result = last_json(python(code, tmp_path))
    assert 1.5 <= result["elapsed"] < 10, result
    assert result["errors"] == {"end_run: TimeoutError": 1} and result["finished"] is True
    assert result["exit_restored"] is True


def test_forked_children_leave_the_session_to_the_parent(tmp_path: Path, cache_dir: Path) -> None:
    # DataLoader workers and process pools fork; ClearML's fork callbacks would start reporting threads in
    # the child and close the task from it at os._exit. The run belongs to the parent. (A plain os.fork: it
    # runs the same at-fork callbacks a fork-context pool does.)
    code = """
        import faulthandler, os
        faulthandler.dump_traceback_later(120, exit=True)  # a hang shows where, instead of a bare timeout
        from clearml import Task
        exp = run("forking")
        for i in range(20):
            exp.log_metric("m", float(i), i)
        assert exp.flush(60)
        folder = Task.current_task().get_offline_mode_folder()
        pid = os.fork()
        if pid == 0:
            print("child says hello", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        zipped_by_child = os.path.exists(str(folder) + ".zip")
        for i in range(20, 40):
            exp.log_metric("m", float(i), i)
        report = exp.stop()
        print(json.dumps({"zipped_by_child": zipped_by_child, "task": report.backends["clearml"].details["task_id"]}))
    """
    result = last_json(python(code, tmp_path))
    assert result["zipped_by_child"] is False
    session = OfflineSession(cache_dir, result["task"])
    assert session.scalars() == {("m", "m"): [(i, float(i)) for i in range(40)]}
    assert session.task["status"] == "completed"
    assert "child says hello" not in (session.folder / "log.jsonl").read_text()


def test_a_process_started_during_a_run_opens_its_own_task(tmp_path: Path, cache_dir: Path) -> None:
    # ClearML marks the process that owns a task in an environment variable every child inherits; a Tracelet
    # run in a process launched from a running one (a second script, a spawned rank) is a run of its own.
    code = """
        import os, subprocess
        exp = run("launcher")
        exp.log_metric("outer", 1.0, 0)
        assert exp.flush(60)
        mark_during = os.environ.get("CLEARML_PROC_MASTER_ID", "")
        child = subprocess.run([sys.executable, "-c", PRELUDE + (
            "exp = run('launched')\\n"
            "exp.log_metric('inner', 2.0, 3)\\n"
            "print(json.dumps(exp.stop().backends['clearml'].details['task_id']))\\n")],
            capture_output=True, text=True, timeout=150)
        assert child.returncode == 0, child.stderr[-3000:]
        report = exp.stop()
        print(json.dumps({"outer": report.backends["clearml"].details["task_id"], "mark_during": mark_during,
                          "inner": json.loads(child.stdout.strip().splitlines()[-1]),
                          "mark_after": os.environ.get("CLEARML_PROC_MASTER_ID")}))
    """
    result = last_json(python(f"PRELUDE = {PRELUDE!r}\n" + textwrap.dedent(code), tmp_path, timeout=300))
    assert result["mark_during"].endswith(f":{result['outer']}")  # the child inherited the owner's mark
    assert result["inner"] != result["outer"]
    assert OfflineSession(cache_dir, result["inner"]).scalars() == {("inner", "inner"): [(3, 2.0)]}
    assert OfflineSession(cache_dir, result["outer"]).scalars() == {("outer", "outer"): [(0, 1.0)]}
    assert OfflineSession(cache_dir, result["inner"]).task["name"] == "launched"
    assert result["mark_after"] is None  # processes started after the run inherit no task of it


def test_offline_writes_only_into_the_cache_the_run_folder_and_clearmls_session_file(
    tmp_path: Path, cache_dir: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code = """
        exp = run("where-it-writes")
        art = exp.create_artifact("cfg", __import__("tracelet").ArtifactType.CONFIG)
        art.add_object({"a": 1}, "cfg")
        exp.log_artifact(art)
        exp.log_metric("m", 1.0, 0)
        exp.log_params({"p": 1})
        report = exp.stop()
        exp.get_artifact("cfg", backend="clearml")
        print(json.dumps({"run_dir": str(exp.run_dir)}))
    """
    result = last_json(python(code, work))
    runs = Path(os.environ["TRACELET_DIR"])
    assert Path(result["run_dir"]).is_relative_to(runs)
    written = sorted(
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.is_relative_to(cache_dir) and not p.is_relative_to(runs)
    )
    assert written == ["home/.clearml/.session.json"]  # ClearML's own bookkeeping, documented


def test_capture_switches_work_in_every_run_of_a_process_and_are_undone_at_each_stop(
    tmp_path: Path, cache_dir: Path
) -> None:
    # ClearML patches argparse (at import) and the console streams (at its first task) once per process, and
    # Tracelet takes both out at each stop: a later run that switches the capture on must get it again.
    # ClearML also swaps sys.__stdout__ / sys.__stderr__ and sets TRAINS_OFFLINE_MODE next to
    # CLEARML_OFFLINE_MODE; after each stop all of them are as they were.
    code = """
        import os
        def streams():
            return [sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__]
        def offline_env():
            return {k: os.environ.get(k) for k in ("CLEARML_OFFLINE_MODE", "TRAINS_OFFLINE_MODE")}
        before, env_before = streams(), offline_env()
        out = []
        for i, on in enumerate([False, True, True, False, True]):
            exp = run(f"capture-{i}", auto_connect_arg_parser=on, auto_connect_streams=on)
            parser = argparse.ArgumentParser()
            parser.add_argument("--run", type=int, default=-1)
            parser.parse_args(["--run", str(i)])
            print(f"console line of run {i}", flush=True)
            report = exp.stop()
            out.append({"task": report.backends["clearml"].details["task_id"], "on": on,
                        "restored": [a is b for a, b in zip(streams(), before)], "env": offline_env() == env_before})
        print(json.dumps(out))
    """
    runs = last_json(python(code, tmp_path, timeout=300))
    assert len(runs) == 5
    for i, got in enumerate(runs):
        session = OfflineSession(cache_dir, got["task"])
        log = session.folder / "log.jsonl"
        captured = log.exists() and f"console line of run {i}" in log.read_text()
        args = session.hyperparams().get("Args", {})
        assert (captured, args.get("run")) == ((True, str(i)) if got["on"] else (False, None)), (i, got)
        assert got["restored"] == [True] * 4 and got["env"] is True, (i, got)


def test_process_objects_are_the_same_after_stop_as_before_the_first_start(tmp_path: Path, cache_dir: Path) -> None:
    # As the issue states it, with no warm-up run: Tracelet's own SIGTERM handler is there only while a run
    # is running, so the handler (here the default one) is back after stop(), as is everything ClearML touched.
    # A second run installs it again: SIGTERM still ends that run through Tracelet, with its points delivered.
    code = """
        import os
        def snapshot():
            P = argparse.ArgumentParser
            return {"parse_args": P.parse_args, "parse_known_args": P.parse_known_args, "stdout": sys.stdout,
                    "excepthook": sys.excepthook, "exit": sys.exit, "sigterm": signal.getsignal(signal.SIGTERM)}
        before = snapshot()
        exp = run("first")
        exp.log_metric("m", 1.0, 0)
        handler_during = signal.getsignal(signal.SIGTERM)
        first = exp.stop().backends["clearml"].details["task_id"]
        after = snapshot()
        exp = run("second")
        for i in range(100):
            exp.log_metric("m", float(i), i)
        print(json.dumps({"changed": sorted(k for k in before if before[k] is not after[k]),
                          "tracelet_handler_during": handler_during is not before["sigterm"],
                          "first": first}), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    """
    out = python(code, tmp_path)
    assert out.returncode == -signal.SIGTERM, out.stderr[-3000:]
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("{")]  # ClearML prints its own lines at close
    result = json.loads(line)
    assert result["changed"] == [] and result["tracelet_handler_during"] is True
    (second,) = [p.name for p in (cache_dir / "offline").iterdir() if p.is_dir() and p.name != result["first"]]
    session = OfflineSession(cache_dir, second)
    assert session.scalars() == {("m", "m"): [(i, float(i)) for i in range(100)]}
    assert session.task["status"] == "stopped"
