"""A forked or spawned child never touches its parent's run (the rule lives in `tracelet.core.engine.lifecycle`).

In a child made by os.fork or multiprocessing "fork": 100,000 log_metric calls are dropped without growing
memory, stop_logging() and the child's normal exit neither rewrite run.json nor uninstrument the parent's
frameworks, and nothing is printed (no traceback from a collector thread). A "spawn" child has no experiment
and leaves the run alone too. The parent then goes on logging and ends the run with its own points only.
Each case runs as its own script, so that the child's exit is a real process exit (atexit included).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracelet.store import open_run

SCRIPT = textwrap.dedent(
    """
    import json, multiprocessing, os, sys, tracemalloc
    import tracelet

    def child_work(out_path):
        exp = tracelet.get_active_experiment()
        result = {"has_experiment": exp is not None}
        if exp is not None:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for i in range(100_000):
                exp.log_metric("child", 1.0, i)
            result["grown_bytes"] = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            tracelet.stop_logging()  # a DataLoader worker's cleanup: must not end the parent's run
            from tracelet_testplugin.framework import EVENTS
            result["uninstrumented"] = ("uninstrument", exp.id) in EVENTS
            result["report"] = repr(exp.report)
        with open(out_path, "w") as f:
            json.dump(result, f)

    if __name__ == "__main__":
        mode, out_path = sys.argv[1], sys.argv[2]
        # System tracking on (the default), sampled often: the collector thread exists when the child forks.
        exp = tracelet.start_logging(
            "forked", backend=["local", "recorder"], config={"track_system": True, "metrics_interval": 0.05}
        )
        for i in range(1000):
            exp.log_metric("x", i, i)
        exp.flush()
        run_json = exp.run_dir / "run.json"
        before = run_json.read_bytes()
        if mode == "os.fork":
            pid = os.fork()
            if pid == 0:
                child_work(out_path)
                sys.exit(0)  # a normal exit: atexit handlers run in the child
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
        else:
            proc = multiprocessing.get_context(mode).Process(target=child_work, args=(out_path,))
            proc.start()
            proc.join(120)
            code = proc.exitcode
        untouched = run_json.read_bytes() == before  # the parent is still running
        for i in range(1000, 2000):
            exp.log_metric("x", i, i)
        tracelet.stop_logging()
        print(json.dumps({"code": code, "untouched": untouched, "run_id": exp.id}))
    """
)


@pytest.mark.parametrize("mode", ["os.fork", "fork", "spawn"])
def test_a_child_process_leaves_the_parents_run_alone(mode: str, tmp_path: Path, python_env: dict[str, str]) -> None:
    script = tmp_path / "parent.py"
    script.write_text(SCRIPT)
    out = tmp_path / "child.json"
    proc = subprocess.run(
        [sys.executable, str(script), mode, str(out)],
        cwd=tmp_path,
        env=python_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    parent = json.loads(proc.stdout.strip().splitlines()[-1])
    child = json.loads(out.read_text())
    assert parent["code"] == 0
    assert parent["untouched"], "the child rewrote run.json while the parent was running"
    if mode == "spawn":
        assert child == {"has_experiment": False}
    else:
        assert child["has_experiment"]
        assert child["grown_bytes"] < 64 * 1024, f"100k dropped calls grew memory by {child['grown_bytes']} bytes"
        assert not child["uninstrumented"], "the child uninstrumented the parent's frameworks"
        assert child["report"] == "None"
    run = open_run(parent["run_id"], tmp_path / "tracelet-runs")
    assert run.status == "FINISHED"
    metrics = run.metrics()
    assert [p.value for p in metrics["x"]] == [float(i) for i in range(2000)]
    assert "child" not in metrics
    assert run.meta["events"] == sum(1 for _ in run.events())  # written once, by the parent, at its end


OWN_RUN = textwrap.dedent(
    """
    import json, multiprocessing, sys
    import tracelet

    def child_work(queue):
        # A worker that tracks its own run: it takes the active slot without "stopping" the parent's run.
        with tracelet.start_logging("child-own", config={"track_system": False}) as exp:
            for i in range(10):
                exp.log_metric("c", i, i)
        queue.put(exp.id)

    if __name__ == "__main__":
        exp = tracelet.start_logging("parent", config={"track_system": False})
        exp.log_metric("p", 0, 0)
        exp.flush()
        # The parent's own checkpoint thread may still record its backends' `progress` while the child runs (a
        # loaded machine); that thread is not in the forked child. Everything else must stay as it was.
        def record():
            meta = json.loads((exp.run_dir / "run.json").read_text())
            meta.pop("progress", None)
            return meta
        before = record()
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        proc = ctx.Process(target=child_work, args=(queue,))
        proc.start()
        child_id = queue.get(timeout=120)
        proc.join(120)
        untouched = record() == before
        active = tracelet.get_active_experiment() is exp
        exp.log_metric("p", 1, 1)
        tracelet.stop_logging()
        print(json.dumps({"code": proc.exitcode, "untouched": untouched, "active": active,
                          "parent": exp.id, "child": child_id}))
    """
)


def test_a_forked_child_may_start_its_own_run_without_touching_the_parents(
    tmp_path: Path, python_env: dict[str, str]
) -> None:
    script = tmp_path / "own.py"
    script.write_text(OWN_RUN)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=python_env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert "stops the active experiment" not in proc.stderr, "the child claimed to stop its parent's run"
    assert "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["code"] == 0 and out["untouched"] and out["active"]
    store = tmp_path / "tracelet-runs"
    parent, child = open_run(out["parent"], store), open_run(out["child"], store)
    assert parent.status == "FINISHED" and child.status == "FINISHED"
    assert [p.value for p in parent.metrics()["p"]] == [0.0, 1.0] and "c" not in parent.metrics()
    assert [p.value for p in child.metrics()["c"]] == [float(i) for i in range(10)] and "p" not in child.metrics()
