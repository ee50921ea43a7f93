"""`tracelet report`: the run page (one run) or the compare page (several) as one self-contained HTML file.

The file holds the app's script, its styles and uPlot inline, and the data the pages ask the server for
(`tracelet.ui.model` views; every metric downsampled to `width` pixels, on step and on wall time), so it opens
from disk with no server and no network: a Content-Security-Policy meta tag forbids every fetch. Image
artifacts up to `IMAGE_LIMIT` bytes each are embedded as data: URLs for their previews (raster formats only);
downloads need the server. Embedded JSON has each `<` escaped (`\\u003c`), so no string from a run can close
the script element it sits in.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tracelet import store
from tracelet.ui.model import IMAGE_TYPES, RefusedPath, Store
from tracelet.ui.server import static_bytes

IMAGE_LIMIT = 512 * 1024  # image artifacts embedded for preview up to this size each
REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def report_data(runs: list[store.LocalRun], width: int = 1200) -> dict[str, Any]:
    """What the pages would fetch, keyed as the app's report mode looks it up (`reportKey` in app.js)."""
    views = Store(None)
    data: dict[str, Any] = {}
    rows = []
    for run in runs:
        views.add(run)
        view = views.run_view(run.id)
        _inline_images(views, view)
        data[f"run:{run.id}"] = view
        rows.append({k: v for k, v in view.items() if k not in ("metrics", "artifacts", "console", "delivery")})
        for metric in view["metrics"]:
            for x in ("step", "time"):
                data[f"series:{run.id}:{x}:{metric}"] = views.series_view(run.id, metric, x, width)
    data["runs"] = {"root": "this report", "runs": rows}
    return data


def _inline_images(views: Store, view: dict[str, Any]) -> None:
    """Give image files up to `IMAGE_LIMIT` bytes a data: URL, so the report previews them without a server."""
    for artifact in view["artifacts"]:
        for f in artifact["files"]:
            if not f["image"] or (f["size"] or 0) > IMAGE_LIMIT:
                continue
            try:
                path = views.artifact_file(view["id"], artifact["name"], artifact["version"], f["path"])
            except RefusedPath:
                continue
            mime = IMAGE_TYPES[path.suffix.lower()]
            if mime == "image/svg+xml":
                continue  # an SVG can carry script: previews are raster images only
            f["data_url"] = f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def render(runs: list[store.LocalRun], width: int = 1200) -> str:
    ids = [r.id for r in runs]
    start = (
        f"#/run/{quote(ids[0], safe='')}" if len(ids) == 1 else "#/compare/" + ",".join(quote(i, safe="") for i in ids)
    )
    payload = {"start": start, "data": report_data(runs, width)}
    blob = json.dumps(payload, allow_nan=False, default=str).replace("<", "\\u003c")
    page = static_bytes("index.html").decode()
    css = static_bytes("uPlot.min.css").decode() + "\n" + static_bytes("app.css").decode()
    scripts = (
        f"<script>window.TRACELET_REPORT = {blob};</script>\n"
        f"<script>{_script(static_bytes('uPlot.iife.min.js').decode())}</script>\n"
        f"<script>{_script(static_bytes('app.js').decode())}</script>"
    )
    page = page.replace('<link rel="stylesheet" href="/static/uPlot.min.css">\n', "")
    page = page.replace(
        '<link rel="stylesheet" href="/static/app.css">',
        f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">\n<style>{css}</style>',
    )
    page = page.replace(
        '<script src="/static/uPlot.iife.min.js"></script>\n<script src="/static/app.js"></script>', scripts
    )
    page = page.replace("<title>Tracelet</title>", "<title>Tracelet report</title>")
    if "/static/" in page:
        raise RuntimeError("report template out of date: it still links /static/ files")
    return page


def _script(code: str) -> str:
    """Inline a bundled script; they hold no `</script` (checked, since it would end the element early)."""
    if "</script" in code.lower():
        raise RuntimeError("a bundled script contains '</script': it cannot be inlined")
    return code


def write_report(runs: list[store.LocalRun], output: str | os.PathLike[str], width: int = 1200) -> int:
    """Write the report; returns its size in bytes."""
    text = render(runs, width).encode()
    Path(output).write_bytes(text)
    return len(text)
