"""`tracelet ui` and `tracelet report` in a real headless Chromium: pages over runs written by real Tracelet runs.

One store and one browser for the module (the runs are written once); each test opens the page it checks.
Charts are read through the uPlot instances the page exposes (`window.traceletCharts`: title -> instance).
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import tracelet
from tracelet.cli import main
from tracelet_testsupport.ui import Served, serve

pytestmark = pytest.mark.slow  # starts a server and a browser

HOSTILE = "<script>alert(1)</script>"
LOSS_A = [math.exp(-i / 40) + (2.0 if i == 120 else 0.0) for i in range(200)]  # a spike at step 120
BIG, SPIKE = 20_000, 12_345
LOSS_B = [0.5 + 0.5 * math.cos(i / 30) for i in range(200)]


def _png(path: Path) -> bytes:
    """A real 2x2 PNG (red pixels), written by hand: no imaging library needed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + b"\xff\0\0" * 2 for _ in range(2))
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return data


class Store:
    def __init__(self, root: Path, ids: dict[str, str], png: bytes) -> None:
        self.root, self.ids, self.png = root, ids, png


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("ui") / "runs"
    png = _png(root.parent / "sample.png")
    ids = {}
    config: dict[str, Any] = {"dir": str(root), "track_stdout": True, "env_packages": False}
    with tracelet.start_logging("alpha", project="vision", backend="local", config=config) as exp:
        exp.log_params({"lr": 0.1, "layers": 3})
        exp.set_tags({"team": "vision"})
        for i, v in enumerate(LOSS_A):
            exp.log_metric("loss", v, i)
        for i in range(50):
            exp.log_metric("acc", i / 50, i * 4)
        artifact = tracelet.TraceletArtifact("samples", tracelet.ArtifactType.IMAGE, "a sample image")
        artifact.add_file(str(root.parent / "sample.png"), "sample.png")
        artifact.metadata["epoch"] = 7
        exp.log_artifact(artifact, wait=10)
        print("hello from alpha's console")
        ids["alpha"] = exp.id
    config = {"dir": str(root), "track_system": False}
    with tracelet.start_logging("beta", project="vision", backend="local", config=config) as exp:
        exp.log_params({"lr": 0.01, "layers": 3})
        for i, v in enumerate(LOSS_B):
            exp.log_metric("loss", v, i)
        ids["beta"] = exp.id
    with tracelet.start_logging(HOSTILE, project="nlp", backend="local", config=config) as exp:
        exp.log_params({"note": HOSTILE})
        exp.log_metric("loss", 1.0, 0)
        ids["hostile"] = exp.id
    # A backend that fails every batch: the run ends with it behind, and the page gives the sync line.
    failing = {**config, "stop_timeout": 1}
    with tracelet.start_logging("gamma", project="nlp", backend=["local", "failing"], config=failing) as exp:
        for i in range(20):
            exp.log_metric("loss", 1.0, i)
        ids["gamma"] = exp.id
    # A run whose process died mid-run.
    code = (
        "import os, sys, tracelet; exp = tracelet.start_logging('dead', project='nlp', backend='local', "
        "config={'dir': sys.argv[1], 'track_system': False}); exp.log_metric('loss', 1.0, 0); exp.flush(10); "
        "print(exp.id, flush=True); os._exit(1)"
    )
    died = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
    ids["dead"] = died.stdout.split()[0]
    with tracelet.start_logging("big", project="nlp", backend="local", config=config) as exp:
        for i in range(BIG):
            exp.log_metric("loss", 10.0 if i == SPIKE else 1.0 + (i % 7) * 0.01, i)
        ids["big"] = exp.id
    return Store(root, ids, png)


@pytest.fixture(scope="module")
def server(store: Store) -> Iterator[Served]:
    served = serve(store.root)
    yield served
    served.close()


def wait(driver: Any, script: str, timeout: float = 15.0) -> Any:
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {script}; page says: {driver.find_element('tag name', 'main').text[:500]}"
            )
        time.sleep(0.1)


def open_page(driver: Any, url: str) -> None:
    driver.get("about:blank")  # a hash-only change would not reload the app
    driver.get(url)
    wait(driver, "window.traceletState && window.traceletState.loaded")


def chart(driver: Any, name: str) -> dict[str, Any]:
    return driver.execute_script(
        "const u = window.traceletCharts[arguments[0]]; if (!u) return null;"
        "return {series: u.series.map(s => s.label), data: u.data, x: [u.scales.x.min, u.scales.x.max],"
        " y: [u.scales.y.min, u.scales.y.max], canvas: !!u.root.querySelector('canvas')};",
        name,
    )


def test_runs_page_lists_the_runs_with_params_status_and_last_values(
    browser: Any, server: Served, store: Store
) -> None:
    open_page(browser, server.url)
    rows = browser.find_elements("css selector", "#runs-table tbody tr")
    assert sorted(r.get_attribute("data-run") for r in rows) == sorted(store.ids.values())
    alpha = browser.find_element("css selector", f"tr[data-run='{store.ids['alpha']}']").text
    assert "alpha" in alpha and "vision" in alpha and "FINISHED" in alpha and "team=vision" in alpha
    assert "0.1" in alpha and f"{LOSS_A[-1]:.6g}"[:6] in alpha  # param column lr, last loss
    box = browser.find_element("id", "filter-text")
    box.send_keys("beta")
    rows = browser.find_elements("css selector", "#runs-table tbody tr")
    assert [r.get_attribute("data-run") for r in rows] == [store.ids["beta"]]
    box.clear()
    box.send_keys("x")  # clear() fires no input event: type and delete instead
    box.send_keys("\b")
    browser.find_element("css selector", "th[data-key='name']").click()  # sort by name, ascending
    names = [
        r.find_element("css selector", "td.name a").text
        for r in browser.find_elements("css selector", "#runs-table tbody tr")
    ]
    assert names == sorted(names)


def test_delivery_state_and_dead_runs_are_shown(browser: Any, server: Served, store: Store) -> None:
    open_page(browser, server.url)
    dead = browser.find_element("css selector", f"tr[data-run='{store.ids['dead']}']").text
    assert "KILLED (process died)" in dead
    open_page(browser, f"{server.url}#/run/{store.ids['gamma']}")
    delivery = browser.find_element("id", "delivery").text
    assert "failing" in delivery and "events behind" in delivery
    assert browser.find_element("id", "sync-line").text == f"tracelet sync {store.ids['gamma']}"
    open_page(browser, f"{server.url}#/run/{store.ids['beta']}")  # delivered everything: no sync line
    assert not browser.find_elements("id", "sync-line")


def test_run_page_draws_each_metric_with_the_data_and_lists_params_artifacts_console(
    browser: Any, server: Served, store: Store
) -> None:
    open_page(browser, f"{server.url}#/run/{store.ids['alpha']}")
    wait(browser, "window.traceletCharts['loss'] && window.traceletCharts['acc']")
    loss = chart(browser, "loss")
    assert loss["canvas"] and loss["series"] == ["step", "loss"]  # x plus one line
    assert loss["data"][0] == list(range(200)) and loss["data"][1] == pytest.approx(LOSS_A)  # 200 points: all sent
    assert loss["x"] == [0, 199]
    assert loss["y"][0] <= min(LOSS_A) and loss["y"][1] >= max(LOSS_A)
    acc = chart(browser, "acc")
    assert acc["x"] == [0, 196] and len(acc["data"][1]) == 50
    system = browser.find_elements("css selector", "#system-charts .chart")  # grouped apart, on wall time
    assert system and all(c.get_attribute("data-metric").startswith("system/") for c in system)
    params = browser.find_element("id", "params").text
    assert "lr" in params and "0.1" in params and "layers" in params
    assert "vision" in browser.find_element("id", "tags").text
    row = browser.find_element("css selector", "tr[data-artifact='samples:v1']")
    assert "image" in row.text and "epoch" in row.text
    img = row.find_element("css selector", "img.preview")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 2
    link = row.find_element("link text", "sample.png").get_attribute("href")
    with urllib.request.urlopen(link) as resp:
        assert resp.read() == store.png
    assert "hello from alpha's console" in browser.find_element("id", "console").text
    assert "null" not in browser.find_element("tag name", "main").text  # an absent section leaves no trace


def test_smoothing_and_log_scale_change_the_drawn_series(browser: Any, server: Served, store: Store) -> None:
    open_page(browser, f"{server.url}#/run/{store.ids['alpha']}")
    wait(browser, "window.traceletCharts['loss']")
    browser.find_element("id", "log-scale").click()
    wait(browser, "window.traceletCharts['loss'] && window.traceletCharts['loss'].scales.y.distr === 3")
    browser.execute_script(
        "const s = document.getElementById('smoothing'); s.value = '0.9';"
        "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));"
    )
    wait(browser, "window.traceletCharts['loss'] && window.traceletCharts['loss'].data[1][120] < 2.0")
    smoothed = chart(browser, "loss")["data"][1]
    assert max(smoothed) < max(LOSS_A)  # the spike is smoothed away
    browser.find_element("id", "log-scale").click()  # leave the defaults for the next tests
    browser.execute_script(
        "const s = document.getElementById('smoothing'); s.value = '0';s.dispatchEvent(new Event('change'));"
    )


def test_compare_overlays_the_runs_and_highlights_differing_params(browser: Any, server: Served, store: Store) -> None:
    open_page(browser, server.url)
    for key in ("alpha", "beta"):
        browser.find_element("css selector", f"tr[data-run='{store.ids[key]}'] input.pick").click()
    browser.find_element("id", "compare").click()
    wait(
        browser,
        "window.traceletState.page === 'compare' && window.traceletState.loaded && window.traceletCharts['loss']",
    )
    loss = chart(browser, "loss")
    assert len(loss["series"]) == 3 and "alpha" in loss["series"][1] and "beta" in loss["series"][2]
    assert loss["data"][1] == pytest.approx(LOSS_A) and loss["data"][2] == pytest.approx(LOSS_B)
    assert browser.find_element("css selector", "tr[data-param='lr']").get_attribute("class") == "diff"
    assert browser.find_element("css selector", "tr[data-param='layers']").get_attribute("class") in ("", None)


def test_a_run_still_logging_updates_without_reload(browser: Any, store: Store) -> None:
    config = {"dir": str(store.root), "track_system": False}
    exp = tracelet.start_logging("live", project="vision", backend="local", config=config)
    served = serve(store.root)
    try:
        for i in range(10):
            exp.log_metric("loss", 1.0 / (i + 1), i)
        assert exp.flush(10)
        open_page(browser, f"{served.url}?poll=500#/run/{exp.id}")
        assert chart(browser, "loss")["x"] == [0, 9]
        browser.execute_script("window.notReloaded = true;")
        for i in range(10, 30):
            exp.log_metric("loss", 1.0 / (i + 1), i)
        assert exp.flush(10)
        wait(browser, "window.traceletCharts['loss'] && window.traceletCharts['loss'].scales.x.max === 29")
        assert browser.execute_script("return window.notReloaded") is True
        assert len(chart(browser, "loss")["data"][1]) == 30
        assert "RUNNING" in browser.find_element("css selector", ".meta").text
        exp.stop()
        wait(browser, "document.querySelector('.meta').textContent.includes('FINISHED')")
    finally:
        exp.stop()
        served.close()


def test_a_big_run_is_downsampled_keeping_its_spike_and_a_drag_zooms_in_at_full_resolution(
    browser: Any, server: Served, store: Store
) -> None:
    open_page(browser, f"{server.url}#/run/{store.ids['big']}")
    wait(browser, "window.traceletCharts['loss']")
    loss = chart(browser, "loss")
    width = browser.execute_script("return window.traceletCharts['loss'].width")
    assert len(loss["data"][0]) <= 2 * width + 2 < BIG  # downsampled on the server to the chart's pixels
    assert max(loss["data"][1]) == 10.0 and loss["data"][0][loss["data"][1].index(10.0)] == SPIKE
    assert loss["x"] == [0, BIG - 1]
    # Drag over steps ~12,000..12,600: the chart asks for that range and gets every point of it.
    browser.execute_script(
        "const u = window.traceletCharts['loss']; const l = u.valToPos(12000, 'x'), r = u.valToPos(12600, 'x');"
        "u.setSelect({left: l, width: r - l, top: 0, height: u.over.clientHeight});"
    )
    wait(
        browser,
        "window.traceletCharts['loss'].data[0].length < 700 && window.traceletCharts['loss'].data[0][0] >= 11950",
    )
    zoomed = chart(browser, "loss")
    steps = zoomed["data"][0]
    assert steps == list(range(int(steps[0]), int(steps[-1]) + 1)) and SPIKE in steps  # every point, spike too
    browser.execute_script(
        "window.traceletCharts['loss'].over.dispatchEvent(new MouseEvent('dblclick', {bubbles: true}))"
    )
    wait(browser, f"window.traceletCharts['loss'].scales.x.max === {BIG - 1}")


def test_a_hostile_run_name_stays_text(browser: Any, server: Served, store: Store) -> None:
    browser.get_log("browser")  # drained: what follows is this page's
    open_page(browser, server.url)
    link = browser.find_element("css selector", f"tr[data-run='{store.ids['hostile']}'] td.name a")
    assert link.text == HOSTILE
    link.click()
    wait(browser, "window.traceletState.page === 'run' && window.traceletState.loaded")
    assert browser.find_element("id", "run-name").text == HOSTILE
    assert HOSTILE in browser.find_element("id", "params").text
    scripts = browser.execute_script("return [...document.scripts].map(s => s.src)")
    assert len(scripts) == 2 and all("/static/" in s for s in scripts)  # no script element from the data
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize(
    "name, path",
    [
        ("samples", "../../../run.json"),  # out of the version folder, into the run
        ("samples", "/etc/passwd"),
        ("samples", "../../../../../../../../etc/passwd"),
        ("../../..", "run.json"),  # through the artifact name
        ("samples", "files/../../../../events.bin"),
    ],
)
def test_a_download_outside_the_store_is_refused(server: Served, store: Store, name: str, path: str) -> None:
    query = urlencode({"id": store.ids["alpha"], "name": name, "version": "v1", "path": path})
    status, body = _get(f"{server.url}api/artifact?{query}")
    assert status == 403, body
    assert b"root:" not in body and b"run_id" not in body
    ok = urlencode({"id": store.ids["alpha"], "name": "samples", "version": "v1", "path": "sample.png"})
    assert _get(f"{server.url}api/artifact?{ok}") == (200, store.png)


def test_the_server_refuses_writes(server: Served) -> None:
    req = urllib.request.Request(f"{server.url}api/runs", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 405


def test_report_opens_from_disk_and_draws_the_same_charts(browser: Any, store: Store, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    ids = [store.ids["alpha"], store.ids["beta"], store.ids["hostile"]]
    assert main(["report", *ids, "-o", str(out), "--dir", str(store.root)]) == 0
    text = out.read_text()
    assert HOSTILE not in text  # embedded escaped, never as markup
    open_page(browser, out.as_uri())
    wait(browser, "window.traceletState.page === 'compare' && window.traceletCharts['loss']")
    loss = chart(browser, "loss")
    assert len(loss["series"]) == 4 and loss["canvas"]
    assert loss["data"][1][: len(LOSS_A)] == pytest.approx(LOSS_A)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # fetches nothing
    assert browser.find_element("css selector", "tr[data-param='lr']").get_attribute("class") == "diff"
    browser.find_element("link text", HOSTILE).click()  # the run pages are in the report too
    wait(browser, "window.traceletState.page === 'run' && window.traceletState.loaded")
    assert browser.find_element("id", "run-name").text == HOSTILE
    browser.get(out.as_uri() + f"#/run/{store.ids['alpha']}")
    browser.refresh()
    wait(browser, "window.traceletState.loaded && window.traceletCharts['loss']")
    assert chart(browser, "loss")["data"][1] == pytest.approx(LOSS_A)
    assert "sample.png" in browser.find_element("id", "artifacts").text
    img = browser.find_element("css selector", "tr[data-artifact='samples:v1'] img.preview")  # embedded
    assert img.get_attribute("src").startswith("data:image/png;base64,")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 2


def test_api_series_json_is_downsampled_to_the_width(server: Served, store: Store) -> None:
    query = urlencode({"id": store.ids["alpha"], "metric": "loss", "x": "step", "width": 20})
    status, body = _get(f"{server.url}api/series?{query}")
    series = json.loads(body)
    assert status == 200 and series["points"] == 200 and series["sent"] <= 42
    assert max(series["y"]) == max(LOSS_A) and min(series["y"]) == min(LOSS_A)  # extremes kept
