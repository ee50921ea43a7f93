"""`tracelet ui`: a local, read-only web app over the store, served by the standard library.

Why `http.server.ThreadingHTTPServer`: the app is one user on one machine asking for a page, a few JSON
documents and an occasional artifact file, so a framework (and a dependency every `pip install tracelet`
would carry) buys nothing; a thread per request keeps a slow artifact download from holding up the charts.

Routes (GET only; every other method is refused with 405):

- `/`: the app (`static/index.html`); pages are hash routes (`#/`, `#/run/ID`, `#/compare/ID,ID`).
- `/static/<file>`: the app's script and styles and the bundled uPlot (no other file of the package).
- `/api/runs`: the runs list; `/api/run?id=ID`: one run; `/api/series?id=ID&metric=M&x=step|time&width=PX
  [&xmin=&xmax=]`: one metric downsampled to the chart's width (`tracelet.ui.series`).
- `/api/artifact?id=ID&name=N&version=V&path=P`: one stored artifact file; anything that is not a file the
  artifact version lists, inside the run's artifact folder, is refused (403), so no path reaches outside.

Safety: binds 127.0.0.1 unless told otherwise (the CLI warns for another host: anyone who can reach the port
reads every run); answers only GET; sends `X-Content-Type-Options: nosniff` and a Content-Security-Policy that
allows scripts from this server only (the page builds its DOM with text nodes, never HTML from data).
"""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tracelet.ui.model import IMAGE_TYPES, RefusedPath, Store

STATIC_FILES = ("index.html", "app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def static_bytes(name: str) -> bytes:
    return resources.files("tracelet.ui").joinpath("static", name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    server: UIServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall between them

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, static_bytes("index.html"), "text/html; charset=utf-8")
            elif url.path.startswith("/static/"):
                name = url.path[len("/static/") :]
                if name not in STATIC_FILES:
                    self._error(HTTPStatus.NOT_FOUND, "no such file")
                    return
                ctype = mimetypes.guess_type(name)[0] or "text/plain"
                self._send(HTTPStatus.OK, static_bytes(name), f"{ctype}; charset=utf-8")
            elif url.path == "/api/runs":
                self._json(self.server.store.runs_view())
            elif url.path == "/api/run":
                self._json(self.server.store.run_view(query["id"]))
            elif url.path == "/api/series":
                self._json(
                    self.server.store.series_view(
                        query["id"],
                        query["metric"],
                        query.get("x", "step"),
                        int(query.get("width", 1000)),
                        _number(query.get("xmin")),
                        _number(query.get("xmax")),
                    )
                )
            elif url.path == "/api/artifact":
                self._artifact(query)
            else:
                self._error(HTTPStatus.NOT_FOUND, "no such page")
        except KeyError as exc:
            self._error(HTTPStatus.NOT_FOUND, f"not found: {exc}")
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a page change): nothing to answer

    def _refuse(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "tracelet ui is read-only")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def _artifact(self, query: dict[str, str]) -> None:
        try:
            path = self.server.store.artifact_file(
                query["id"], query["name"], query.get("version", "latest"), query["path"]
            )
        except RefusedPath as exc:
            self._error(HTTPStatus.FORBIDDEN, str(exc))
            return
        ctype = IMAGE_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        inline = path.suffix.lower() in IMAGE_TYPES and path.suffix.lower() != ".svg"
        size = path.stat().st_size
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        disposition = "inline" if inline else "attachment"
        self.send_header("Content-Disposition", f"{disposition}; filename*=UTF-8''{_quote(path.name)}")
        self._common_headers()
        self.end_headers()
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile)

    def _json(self, payload: Any) -> None:
        body = json.dumps(payload, allow_nan=False, default=str).encode()
        self._send(HTTPStatus.OK, body, "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self._common_headers()
        self.end_headers()
        self.wfile.write(body)

    def _common_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")


def _number(raw: str | None) -> float | None:
    return None if raw in (None, "") else float(raw)  # type: ignore[arg-type]


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


class UIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, root: str | os.PathLike[str] | None, host: str = "127.0.0.1", port: int = 0, verbose: bool = False
    ) -> None:
        self.store = Store(root)
        self.verbose = verbose
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def serve(root: str | os.PathLike[str] | None, host: str, port: int, open_browser: bool) -> int:
    """Run the server until interrupted (the `tracelet ui` command)."""
    if host not in LOCAL_HOSTS:
        print(
            f"tracelet ui: warning: serving on {host}, not 127.0.0.1: anyone who can reach port {port} can read "
            "every run of this store (params, console, artifacts). Use --host 127.0.0.1 unless you mean it.",
            file=sys.stderr,
        )
    root_path = Path(root) if root is not None else None
    try:
        server = UIServer(root_path, host, port)
    except OSError as exc:
        print(f"tracelet ui: cannot listen on {host}:{port}: {exc} (choose another with --port)", file=sys.stderr)
        return 1
    print(f"tracelet ui: serving {server.store.root} at {server.url}  (Ctrl-C stops)", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
