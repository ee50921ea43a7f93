"""The import machinery with a third-party importing backend (registered in-process, through the plugin manager):
events written through the journal writer a batch at a time, source identity, errors naming the run while the
others go on, and `import --from tensorboard` as one more source."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from torch.utils.tensorboard import SummaryWriter

import tracelet
from tracelet import cli, store
from tracelet.core.engine import journal
from tracelet.plugin import ConfigurationError, SourceRun, TraceletArtifact, hookimpl
from tracelet.transfer.importer import CHUNK, local_run_id

T0 = 1_600_000_000.0


class AcmeTracker:
    """A tracker whose runs are made up in the test; `observed` records what the journal held mid-import."""

    observed: list[int] = []

    @hookimpl
    def backend_import_runs(self, source: str, config: dict[str, Any]) -> Iterator[SourceRun]:
        if source == "unreachable":
            raise ConnectionError("acme server down")
        points = int(config.get("points", 10))
        art = Path(source) / "model.txt"
        art.parent.mkdir(parents=True, exist_ok=True)
        art.write_text("weights")

        def events(bad: bool = False) -> Iterator[tuple[Any, ...]]:
            yield ("p", {"lr": 0.1, "net": {"depth": 2}}, T0)
            yield ("t", {"team": "acme"}, T0)
            for i in range(points):
                if i == 3 * CHUNK:  # the journal already holds what came a batch ago: nothing is accumulated
                    AcmeTracker.observed.append(sum(1 for _ in journal.read_events(_journal_of(source))))
                if bad and i == 5:
                    raise RuntimeError("page 2 unreadable")
                yield ("m", "loss", math.nan if i == 1 else 1.0 / (i + 1), i * 2, T0 + i / 10)
            yield ("a", TraceletArtifact("model", "model").add_file(str(art), "model.txt"), T0 + 99)

        yield SourceRun(
            "acme",
            "r1",
            source,
            "first",
            "acme-proj",
            events,
            status="FAILED",
            created_at=T0 - 1,
            metadata={"user": "ada"},
        )
        yield SourceRun("acme", "r2", source, "broken", "acme-proj", lambda: events(bad=True))
        yield SourceRun(
            "acme",
            "r3",
            source,
            "child",
            "acme-proj",
            lambda: iter([("m", "x", 1.0, 0, T0)]),
            parent="r1",
            fingerprint={"size": 1},
        )


_RUNS: dict[str, Path] = {}


def _journal_of(source: str) -> Path:
    return _RUNS["dir"] / "acme-proj" / local_run_id("acme", source, "r1") / journal.EVENTS_FILE


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[Path]:
    tracelet.register_plugin(AcmeTracker, name="acme")
    _RUNS["dir"] = tmp_path / "runs"
    AcmeTracker.observed = []
    yield tmp_path / "runs"
    tracelet.unregister_plugin("acme")


def test_a_third_party_importer_streams_runs_into_the_store(acme: Path, tmp_path: Path) -> None:
    source = str(tmp_path / "acme-src")
    points = 4 * CHUNK
    results = tracelet.import_runs(source, source="acme", config={"points": points}, dir=acme)
    first, broken, child = results
    # Streamed: when the source was at point 3*CHUNK, at least 2*CHUNK events were already in the journal.
    assert AcmeTracker.observed and AcmeTracker.observed[0] >= 2 * CHUNK
    run = store.LocalRun(first.path)
    assert first.error is None and first.events == points + 3 and first.run_id == local_run_id("acme", source, "r1")
    loss = run.metrics()["loss"]
    assert [(p.step, p.timestamp) for p in loss] == [(i * 2, T0 + i / 10) for i in range(points)]
    assert math.isnan(loss[1].value) and loss[0].value == 1.0
    assert run.params() == {"lr": 0.1, "net": {"depth": 2}} and run.tags() == {"team": "acme"}
    assert Path(run.artifact("model").files[0].local_path).read_text() == "weights"
    meta = run.meta
    assert meta["status"] == "FAILED" and meta["metadata"]["user"] == "ada" and meta["project"] == "acme-proj"
    assert meta["import"] == {"source": "acme", "uri": source, "run_id": "r1", "fingerprint": None}
    assert meta["created_at"].startswith("2020-09-13T12:26:39") and meta["events"] == points + 3
    # A run that fails mid-way is an error naming it, nothing of it is kept, the next run is imported.
    assert broken.error and "run r2" in broken.error and "page 2 unreadable" in broken.error
    assert not broken.path.exists()
    assert child.error is None and store.LocalRun(child.path).meta["import"]["parent"] == first.run_id
    assert len(store.list_runs(acme)) == 2
    # Again: the fingerprinted run is recognised without reading; the others read again and compared.
    again = tracelet.import_runs(source, source="acme", config={"points": points}, dir=acme)
    assert [(r.existing, r.events) for r in again if not r.error] == [(True, 0), (True, 0)]
    # The source changed: that run is replaced in place, its sync state reset to replay from event 0.
    meta["sync"] = {"mlflow": {"run_id": "m1", "cursor": points + 3, "ended": True, "status": "FAILED"}}
    journal.write_meta(first.path, meta)
    grown = tracelet.import_runs(source, source="acme", config={"points": points + 5}, dir=acme)[0]
    assert grown.updated and grown.events == points + 8
    synced = store.LocalRun(first.path).meta["sync"]["mlflow"]
    assert synced["run_id"] == "m1" and synced["cursor"] == 0 and synced["ended"] is False
    assert not (acme / ".importing").exists()


def test_sources_that_cannot_be_read_and_trackers_that_cannot_import(
    acme: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = str(tmp_path / "acme-src")
    code = cli.main(["import", "--from", "acme", "unreachable", good, "--dir", str(acme), "--config", "points=8"])
    captured = capsys.readouterr()
    assert code == 1 and "acme unreachable: ConnectionError: acme server down" in captured.err
    assert "page 2 unreadable" in captured.err and "first" in captured.out and "child" in captured.out
    with pytest.raises(ConfigurationError, match="cannot import runs"):
        tracelet.import_runs(good, source="local", dir=acme)
    with pytest.raises(ConfigurationError, match="no backend plugin named|unknown|not installed|No backend"):
        tracelet.import_runs(good, source="nosuchtracker", dir=acme)


def test_import_from_tensorboard_is_import_tb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logdir = tmp_path / "tb"
    writer = SummaryWriter(str(logdir / "exp"))
    for step in range(30):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
    writer.close()
    runs = tmp_path / "runs"
    assert cli.main(["import", "--from", "tensorboard", str(logdir), "--dir", str(runs)]) == 0
    assert "30 events" in capsys.readouterr().out
    (run,) = store.list_runs(runs)
    assert [p.step for p in run.metrics()["loss"]] == list(range(30))
    assert cli.main(["import-tb", str(logdir), "--dir", str(runs)]) == 0  # the alias: the same run, recognised
    assert "already imported" in capsys.readouterr().out and len(store.list_runs(runs)) == 1
    assert cli.main(["import", "--from", "tensorboard", str(logdir), "--dir", str(runs), "--config", "x=1"]) == 1
    assert "unknown config x" in capsys.readouterr().err
