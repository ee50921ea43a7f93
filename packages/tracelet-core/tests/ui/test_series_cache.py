"""The UI's series cache (`tracelet.ui.series`): incremental reads, rebuilds when stale, extremes kept when
downsampling. Journals are written by the journal's own writer (`JournalWriter`), as a run writes them."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import pytest

from tracelet.core.engine import journal
from tracelet.ui.series import CACHE_DIR, INDEX, SeriesCache


def write(run_dir: Path, values: list[float], first_step: int = 0, name: str = "loss") -> None:
    w = journal.JournalWriter(run_dir)
    first_seq = sum(1 for _ in journal.read_events(run_dir / journal.EVENTS_FILE))
    events = [("m", name, v, first_step + i, 1000.0 + first_step + i) for i, v in enumerate(values)]
    w.append(first_seq, events)
    w.close()


def test_refresh_reads_only_what_was_appended(tmp_path: Path) -> None:
    write(tmp_path, [1.0, 2.0, 3.0])
    cache = SeriesCache(tmp_path)
    assert cache.refresh() == 3
    size = (tmp_path / journal.EVENTS_FILE).stat().st_size
    assert cache.read_bytes == size
    write(tmp_path, [4.0, 5.0], first_step=3)
    assert cache.refresh() == 2
    assert cache.read_bytes == (tmp_path / journal.EVENTS_FILE).stat().st_size - size  # the new frames only
    assert cache.refresh() == 0 and cache.read_bytes == 0
    s = cache.series("loss")
    assert s["x"] == [0, 1, 2, 3, 4] and s["y"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    # A new server (another process) starts from the saved index, not from the journal's start.
    again = SeriesCache(tmp_path)
    assert again.refresh() == 0 and again.series("loss")["y"] == s["y"]


def test_params_tags_and_summary(tmp_path: Path) -> None:
    w = journal.JournalWriter(tmp_path)
    w.append(
        0,
        [
            ("p", {"lr": 0.1}, 1.0),
            ("t", {"team": "a"}, 1.0),
            ("m", "acc", 0.5, 0, 2.0),
            ("p", {"lr": 0.2, "bs": 8}, 3.0),
            ("m", "acc", 0.75, 1, 4.0),
        ],
    )
    w.close()
    cache = SeriesCache(tmp_path)
    cache.refresh()
    assert cache.index["params"] == {"lr": 0.2, "bs": 8} and cache.index["tags"] == {"team": "a"}
    assert cache.summary()["acc"] == {"n": 2, "last": 0.75, "min": 0.5, "max": 0.75, "last_step": 1.0, "last_time": 4.0}


def test_a_replaced_or_shortened_journal_rebuilds_the_cache(tmp_path: Path) -> None:
    write(tmp_path, [1.0] * 100)
    cache = SeriesCache(tmp_path)
    cache.refresh()
    (tmp_path / journal.EVENTS_FILE).unlink()
    write(tmp_path, [9.0] * 10)  # a different journal: shorter, other bytes
    assert cache.refresh() == 10
    assert cache.series("loss")["y"] == [9.0] * 10
    fresh = SeriesCache(tmp_path)
    fresh.refresh()
    assert fresh.series("loss")["points"] == 10


def test_cache_files_shorter_than_their_index_rebuild(tmp_path: Path) -> None:
    write(tmp_path, [float(i) for i in range(50)])
    SeriesCache(tmp_path).refresh()
    pts = next((tmp_path / CACHE_DIR).glob("*.pts"))
    os.truncate(pts, 24 * 10)  # lost a tail (a disk full, a crash)
    cache = SeriesCache(tmp_path)
    cache.refresh()
    assert cache.series("loss")["y"] == [float(i) for i in range(50)]


def test_two_caches_on_one_folder_continue_each_other(tmp_path: Path) -> None:
    write(tmp_path, [1.0, 2.0])
    a, b = SeriesCache(tmp_path), SeriesCache(tmp_path)
    a.refresh()
    write(tmp_path, [3.0], first_step=2)
    b.refresh()  # picks up a's index, reads the one new frame
    a.refresh()
    assert a.series("loss")["y"] == b.series("loss")["y"] == [1.0, 2.0, 3.0]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[SeriesCache, list[float]]:
    """300,000 points of noise with one spike up and one down: enough for both block levels."""
    rng = random.Random(7)
    values = [math.sin(i / 5000) + rng.uniform(-0.1, 0.1) for i in range(300_000)]
    values[123_457] = 50.0
    values[200_001] = -50.0
    folder = tmp_path_factory.mktemp("big")
    write(folder, values)
    cache = SeriesCache(folder)
    cache.refresh()
    return cache, values


@pytest.mark.parametrize("width", [20, 300, 5000])  # blocks of 4096 points, of 64, and single points
def test_downsampling_keeps_extremes_at_their_own_x(big: tuple[SeriesCache, list[float]], width: int) -> None:
    cache, values = big
    s = cache.series("loss", width=width)
    assert s["points"] == 300_000 and s["sent"] <= 2 * width + 2
    assert s["x"] == sorted(s["x"]) and s["x"][0] == 0 and s["x"][-1] == 299_999  # the whole range
    assert all(values[int(x)] == y for x, y in zip(s["x"], s["y"]))  # real points, at their own step
    assert (123_457, 50.0) in zip(s["x"], s["y"]) and (200_001, -50.0) in zip(s["x"], s["y"])
    zoom = cache.series("loss", width=width, xmin=100_000, xmax=150_000)
    assert min(zoom["x"]) >= 100_000 and max(zoom["x"]) <= 150_000 and max(zoom["y"]) == 50.0


def test_non_finite_values_are_gaps(tmp_path: Path) -> None:
    write(tmp_path, [1.0, math.nan, math.inf, 2.0])
    cache = SeriesCache(tmp_path)
    cache.refresh()
    assert cache.series("loss")["y"] == [1.0, None, None, 2.0]
    assert cache.summary()["loss"]["min"] == 1.0 and cache.summary()["loss"]["max"] == 2.0
    write(tmp_path, [math.nan] * 100_000 + [3.0], first_step=4)
    cache.refresh()
    s = cache.series("loss", width=50)
    assert max(y for y in s["y"] if y is not None) == 3.0 and None in s["y"]


def test_a_run_folder_without_room_for_the_cache_uses_the_user_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    write(run, [1.0, 2.0])
    (run / CACHE_DIR).write_text("")  # the cache folder cannot be made there (as with a read-only store)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = SeriesCache(run)
    cache.refresh()
    assert cache.series("loss")["y"] == [1.0, 2.0]
    assert cache.folder.is_relative_to(tmp_path / "xdg") and (cache.folder / INDEX).exists()
    assert sorted(p.name for p in run.iterdir()) == sorted([CACHE_DIR, journal.EVENTS_FILE])


def test_points_without_a_step_are_left_out_of_step_charts(tmp_path: Path) -> None:
    w = journal.JournalWriter(tmp_path)
    w.append(
        0,
        [
            ("m", "loss", 1.0, 0, 1.0),
            ("m", "loss", 2, 1, 2.0),
            ("m", "loss", 3.0, None, 3.0),
            ("m", "loss", 4.0, 3, 4.0),
        ],
    )
    w.close()
    cache = SeriesCache(tmp_path)
    cache.refresh()
    s = cache.series("loss")
    assert s["points"] == 4 and s["y"] == [1.0, 2.0, 4.0] and s["x"] == [0, 1, 3]  # no step: not placeable


def test_frames_mixing_metrics_are_read_point_by_point(tmp_path: Path) -> None:
    w = journal.JournalWriter(tmp_path)
    w.append(0, [("m", "loss", 1.0, 0, 1.0), ("m", "acc", 0.5, 0, 1.0), ("m", "loss", 0.8, 1, 2.0)])
    w.append(3, [("m", "acc", 0.6, 1, 2.0), ("m", "acc", 0.7, 2, 3.0)])  # one metric: the fast path
    w.close()
    cache = SeriesCache(tmp_path)
    assert cache.refresh() == 5
    assert cache.series("loss")["y"] == [1.0, 0.8] and cache.series("acc")["y"] == [0.5, 0.6, 0.7]
    assert cache.series("acc", x="time")["x"] == [1.0, 2.0, 3.0]
