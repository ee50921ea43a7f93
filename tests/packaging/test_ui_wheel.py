"""The `tracelet` wheel carries the UI's static files: the app, its styles and the bundled uPlot with its licence
(nothing is fetched at run time, so a wheel without them would leave `tracelet ui` with blank pages)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tracelet_testsupport.packaging import VERSION

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_core_wheel_holds_the_ui_static_files(wheelhouse: Path) -> None:
    with zipfile.ZipFile(wheelhouse / "tracelet-core" / f"tracelet-{VERSION}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        static = REPO / "packages" / "tracelet-core" / "src" / "tracelet" / "ui" / "static"
        for path in static.iterdir():
            assert f"tracelet/ui/static/{path.name}" in names
            assert wheel.read(f"tracelet/ui/static/{path.name}") == path.read_bytes()
    assert {"index.html", "app.js", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"} <= {
        p.name for p in static.iterdir()
    }
