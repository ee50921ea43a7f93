"""The `tracelet ui` and `tracelet report` commands (registered by `tracelet.cli`).

Only argparse here: the server and the report builder are imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_DIR_HELP = "local store (default: TRACELET_DIR or ./tracelet-runs)"
DEFAULT_PORT = 6099


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "ui",
        help="look at runs in a local web app (charts, compare, live updates)",
        description="Serve a read-only web app over the local store: runs list, one page per run "
        "(charts, params, artifacts, console, delivery), compare, live updates of running runs.",
    )
    p.add_argument("--dir", default=None, help=_DIR_HELP)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; another one is reachable by others: warned)",
    )
    p.add_argument("--open", action="store_true", help="open the app in the default browser")
    p.set_defaults(func=cmd_ui)
    p = sub.add_parser(
        "report",
        help="write runs' charts and tables to one self-contained HTML file",
        description="Write the run page (one run) or the compare page (several runs) as one HTML "
        "file that opens from disk: no server, no network.",
    )
    p.add_argument("runs", nargs="+", help="run ids, unique prefixes, or folders")
    p.add_argument("-o", "--output", default="report.html", help="file to write (default report.html)")
    p.add_argument("--dir", default=None, help=_DIR_HELP)
    p.add_argument("--width", type=int, default=1200, help="points per chart series kept (default 1200 pixels' worth)")
    p.set_defaults(func=cmd_report)


def cmd_ui(args: argparse.Namespace) -> int:
    from tracelet.ui.server import serve

    return serve(args.dir, args.host, args.port, args.open)


def cmd_report(args: argparse.Namespace) -> int:
    from tracelet import store
    from tracelet.ui.report import write_report

    try:
        runs = [store.open_run(ref, args.dir) for ref in args.runs]
    except LookupError as exc:
        print(f"tracelet report: {exc}", file=sys.stderr)
        return 1
    size = write_report(runs, args.output, width=args.width)
    print(f"tracelet report: wrote {args.output} ({size:,} bytes; opens from disk, no server needed)")
    return 0
