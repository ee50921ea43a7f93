"""`tracelet sync` of a damaged journal delivers exactly the good events and says what was lost; after
`tracelet verify --repair` the run syncs as any other."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tracelet import cli
from tracelet.core.engine import journal
from tracelet.transfer.sync import sync
from tracelet_testsupport.sync import history, local_run, mlflow_runs, to_mlflow


def _frames(path: Path) -> list[tuple[int, int, int, int]]:
    """(offset, size, first_seq, events) of each frame of a sound version-2 journal."""
    import pickle

    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        _magic, _crc, length = struct.unpack_from("<4sII", data, pos)
        first, events = pickle.loads(data[pos + 12 : pos + 12 + length])
        out.append((pos, 12 + length, first, len(events)))
        pos += 12 + length
    return out


def test_a_damaged_journal_syncs_its_good_events_then_repairs_and_stays_in_step(
    runs_dir: Path, sqlite_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = local_run(runs_dir, "damaged", 4500, project="dmg-proj")
    path = run.path / journal.EVENTS_FILE
    layout = _frames(path)
    clean = [e for _, e in journal.read_events(path)]
    hit = layout[len(layout) // 2]
    data = bytearray(path.read_bytes())
    for i in range(hit[0] + 20, hit[0] + 84):  # 64 bytes inside one frame's payload
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    lost = set(range(hit[2], hit[2] + hit[3]))
    good = [(seq, e) for seq, e in enumerate(clean) if seq not in lost]

    report = sync(run, "mlflow", config={"tracking_uri": sqlite_uri})
    assert report.damage and f"byte {hit[0]:,}" in report.damage[0] and f"{hit[3]:,} events lost" in report.damage[0]
    mlrun = mlflow_runs(sqlite_uri, "dmg-proj", run.id)[0]
    want = sorted((e[2], e[3]) for _, e in good if e[0] == "m" and e[1] == "loss")
    assert sorted((v, s) for v, s, _ in history(sqlite_uri, mlrun.info.run_id, "loss")) == want
    assert report.backends["mlflow"].complete and report.backends["mlflow"].lost == hit[3]

    assert cli.main(["verify", "--dir", str(runs_dir), run.id]) == 1
    assert cli.main(["verify", "--repair", "--dir", str(runs_dir), run.id]) == 0
    assert cli.main(["sync", run.id, *to_mlflow(runs_dir, sqlite_uri)]) == 0
    out = capsys.readouterr().out
    assert "mlflow: up to date" in out  # the repaired journal keeps the sequence numbers the cursor counts
    assert list(journal.read_events(path)) == good
