"""`tracelet import --from mlflow`: runs written by MLflow's own client (a sqlite store and a real `mlflow server`)
come back point for point, with params, tags, system tags as metadata, status, times, artifacts and nesting;
a second import writes nothing; MLflow -> journal -> W&B offline lands every point."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

import tracelet
from tracelet import cli, store
from tracelet.core.engine import journal
from tracelet_testsupport.imports import (
    METRICS,
    STEPS,
    T0,
    imported_points,
    mlflow_points,
    timestamp,
    write_mlflow_runs,
)


def _by_source(results: list[Any]) -> dict[str, Any]:
    assert not [r.error for r in results if r.error]
    return {store.LocalRun(r.path).meta["import"]["run_id"]: r for r in results}


def _check_imported(uri: str, ids: dict[str, str], results: list[Any]) -> None:
    runs = _by_source(results)
    assert set(runs) == set(ids.values())
    parent = store.LocalRun(runs[ids["parent"]].path)
    child = store.LocalRun(runs[ids["child"]].path)
    # Point for point: step, value (NaN included) and MLflow's millisecond timestamp.
    got = imported_points(parent)
    assert set(got) == set(METRICS)
    assert got == mlflow_points(uri, ids["parent"])
    assert sum(len(v) for v in got.values()) == 3 * STEPS
    assert imported_points(child) == mlflow_points(uri, ids["child"])
    # Params, user tags, system tags as metadata, status and times.
    assert parent.params() == {"lr": "0.01", "optimizer": "adam"}
    assert parent.tags() == {"team": "vision", "stage": "pretrain"}
    meta = parent.meta
    assert meta["name"] == "parent" and meta["project"] == "imported-exp" and meta["status"] == "FAILED"
    assert meta["metadata"]["environment"]["user"] == "ada" and meta["metadata"]["source"] == "train.py"
    assert meta["metadata"]["git"]["commit"] == "abc123" and meta["metadata"]["description"] == "first try"
    assert meta["created_at"].startswith("2023-11-14T22:13:15")  # T0 - 5 s
    assert meta["import"]["source"] == "mlflow" and meta["import"]["uri"].rstrip("/") == uri.rstrip("/")
    # The nested run stays in its group: its record names the parent's local run.
    assert child.meta["import"]["parent"] == parent.id and child.meta["import"]["parent_run_id"] == ids["parent"]
    assert child.meta["status"] == "FINISHED" and child.params() == {"fold": "1"}
    # Artifacts: the file and the folder, byte for byte, with their paths.
    notes = parent.artifact("notes.txt")
    assert Path(notes.files[0].local_path).read_text() == "hello from mlflow\n"
    model = parent.artifact("model")
    files = {f.artifact_path: Path(f.local_path).read_bytes() for f in model.files}
    assert files == {"weights.bin": bytes(range(256)) * 4, "sub/cfg.json": b'{"depth": 4}'}


def test_import_from_an_mlflow_sqlite_store(tmp_path: Path, runs_dir: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'source.db'}"
    ids = write_mlflow_runs(uri, "imported-exp", tmp_path)
    results = tracelet.import_runs(uri, source="mlflow", config={"experiment": "imported-exp"}, dir=runs_dir)
    _check_imported(uri, ids, results)

    # A second import adds nothing: the runs are recognised, their journals untouched.
    journals = {r.run_id: (r.path / journal.EVENTS_FILE).stat().st_mtime_ns for r in results}
    again = tracelet.import_runs(uri, source="mlflow", config={"experiment": "imported-exp"}, dir=runs_dir)
    assert [(r.run_id, r.existing, r.events) for r in again] == [(r.run_id, True, 0) for r in results]
    assert {r.run_id: (r.path / journal.EVENTS_FILE).stat().st_mtime_ns for r in again} == journals
    assert len(store.list_runs(runs_dir)) == 2 and not (runs_dir / ".importing").exists()

    # The child gains a point: only it is imported again, with the new point.
    MlflowClient(uri).log_batch(ids["child"], metrics=[Metric("fold/score", 9.0, T0 + 300, 5)])
    grown = _by_source(tracelet.import_runs(uri, source="mlflow", config={"experiment": "imported-exp"}, dir=runs_dir))
    assert grown[ids["parent"]].existing and not grown[ids["child"]].existing and grown[ids["child"]].updated
    child = store.LocalRun(grown[ids["child"]].path)
    assert imported_points(child) == mlflow_points(uri, ids["child"]) and len(child.metrics()["fold/score"]) == 6


def test_import_cli_by_run_id_dry_run_and_errors(
    tmp_path: Path, runs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path / 'source.db'}"
    ids = write_mlflow_runs(uri, "imported-exp", tmp_path, steps=20)
    base = ["import", "--from", "mlflow", uri, "--dir", str(runs_dir), "--config", f"run_ids={ids['child']}"]
    assert cli.main([*base, "--dry-run"]) == 0
    assert "would be imported" in capsys.readouterr().out and not runs_dir.exists()
    assert cli.main(base) == 0
    assert "5 events" not in capsys.readouterr().out  # params + 5 points: 6 events
    (run,) = store.list_runs(runs_dir)
    assert run.meta["import"]["run_id"] == ids["child"]
    assert cli.main([*base, "--dry-run"]) == 0 and "already imported" in capsys.readouterr().out
    # A run id that does not exist is an error naming it; a bad config key says what is accepted.
    assert cli.main(["import", "--from", "mlflow", uri, "--dir", str(runs_dir), "--config", "run_ids=nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert cli.main(["import", "--from", "mlflow", uri, "--dir", str(runs_dir), "--config", "experimnt=x"]) == 1
    assert "unknown config experimnt" in capsys.readouterr().err
    # A tracker whose plugin cannot import says so.
    assert cli.main(["import", "--from", "local", uri, "--dir", str(runs_dir)]) == 1
    assert "cannot import runs" in capsys.readouterr().err


@pytest.mark.slow
def test_import_from_a_real_mlflow_server(tmp_path: Path, runs_dir: Path, mlflow_server: Any) -> None:
    uri = mlflow_server.uri
    ids = write_mlflow_runs(uri, "imported-exp", tmp_path)
    results = tracelet.import_runs(
        uri, source="mlflow", config={"experiment": "imported-exp", "page_size": 400}, dir=runs_dir
    )  # several pages per metric
    _check_imported(uri, ids, results)
    again = tracelet.import_runs(uri, source="mlflow", config={"experiment": "imported-exp"}, dir=runs_dir)
    assert all(r.existing and r.events == 0 for r in again) and len(again) == 2


def test_mlflow_to_journal_to_wandb_offline(tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tracelet_wandb")
    from tracelet_testsupport.wandb import read_run

    for key in list(os.environ):
        if key.startswith("WANDB_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for key in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        (tmp_path / key.lower()).mkdir()
        monkeypatch.setenv(key, str(tmp_path / key.lower()))
    uri = f"sqlite:///{tmp_path / 'source.db'}"
    ids = write_mlflow_runs(uri, "imported-exp", tmp_path, steps=200)
    results = _by_source(tracelet.import_runs(uri, source="mlflow", config={"run_ids": [ids["parent"]]}, dir=runs_dir))
    run = store.LocalRun(results[ids["parent"]].path)
    report = tracelet.sync(run, to="wandb", config={"mode": "offline"})
    res = report.backends["wandb"]
    assert res.complete and res.status == "FAILED" and res.delivered == res.events, res
    wb = read_run(store.LocalRun(run.path).meta["sync"]["wandb"]["details"]["transaction_log"])
    source = mlflow_points(uri, ids["parent"])
    for key in METRICS:
        rows = [r for r in wb.history if key in r]
        landed = sorted(((r["tracelet/step"], "nan" if r[key] != r[key] else float(r[key])) for r in rows), key=repr)
        assert landed == [(step, v) for step, v, _ in source[key]], key  # every point, its step and value
        # W&B keeps one time per history row: the original time of the step's first point (train/loss).
        assert all(round(r["_timestamp"] * 1000) == timestamp(0, r["tracelet/step"]) for r in rows), key
    assert wb.user_config()["lr"] == "0.01" and wb.exit is not None and wb.exit_code != 0
