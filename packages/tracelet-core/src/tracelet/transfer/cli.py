"""The `tracelet sync`, `tracelet import` and `tracelet import-tb` commands (registered by `tracelet.cli`).

Exit status: 0 when every selected run was delivered completely (or was up to date) or imported, 1 when a run
could not be synced or imported or some backend did not receive everything (run the same command again to
resume), 2 for usage errors (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_DIR_HELP = "local store (default: TRACELET_DIR or ./tracelet-runs)"


def parse_config(items: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` pairs; VALUE is read as JSON when it parses (numbers, true/false), else as a string."""
    from tracelet.exceptions import ConfigurationError

    config: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"--config {item!r}: expected KEY=VALUE (or BACKEND.KEY=VALUE)")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        config[key.strip()] = value
    return config


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "sync",
        help="deliver local runs to backends (resumable, idempotent)",
        description="Deliver local runs to any installed backend through the same hooks as a live "
        "run. Without --to, finish the backends a run did not fully reach (an outage, a crash).",
    )
    p.add_argument("runs", nargs="*", help="run ids, unique prefixes, or folders")
    p.add_argument("--to", action="append", default=[], metavar="BACKEND", help="target backend (repeatable)")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend config (BACKEND.KEY=VALUE for one target); repeatable",
    )
    p.add_argument("--all", action="store_true", help="every run in the local store")
    p.add_argument("--project", default=None, help="only runs of this project")
    p.add_argument("--since", default=None, help="only runs created since (2026-11-28, 2026-11-28T04:00, 6h, 2d)")
    p.add_argument("--dry-run", action="store_true", help="say what would go where; deliver nothing")
    p.add_argument("--timeout", type=float, default=None, help="give up after SECONDS (a later sync resumes)")
    p.add_argument("--dir", default=None, help=_DIR_HELP)
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser(
        "import",
        help="import runs of another tracker (MLflow, W&B, ClearML, TensorBoard)",
        description="Bring runs of a tracker into the local store with their original steps and "
        "timestamps; then `tracelet sync --to X` moves them to any tracker. Importing again adds "
        "nothing, or what the source gained since.",
    )
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="mlflow: tracking URI; wandb: offline run folder or .wandb file; clearml: offline session "
        "folder or zip; tensorboard: log directory",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="TRACKER",
        help="mlflow, wandb, clearml, tensorboard, or any backend that can import",
    )
    p.add_argument("--project", default=None, help="project of the imported runs (default: the source's)")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="for the source (mlflow: experiment=NAME, run_ids=ID,ID; tensorboard: with_media=true); "
        "BACKEND.KEY=VALUE for a --to target; repeatable",
    )
    p.add_argument("--dry-run", action="store_true", help="list the runs that would be imported; write nothing")
    p.add_argument("--to", action="append", default=[], metavar="BACKEND", help="then sync them there (repeatable)")
    p.add_argument("--dir", default=None, help=_DIR_HELP)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "import-tb",
        help="import TensorBoard event files as local runs (import --from tensorboard)",
        description="One local run per TensorBoard run directory (nested folders become name "
        "prefixes); a second import of the same files is recognised.",
    )
    p.add_argument("logdir", help="TensorBoard log directory")
    p.add_argument("--project", default=None, help="project of the imported runs (default: the logdir's name)")
    p.add_argument("--to", action="append", default=[], metavar="BACKEND", help="then sync them there (repeatable)")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="backend config for --to")
    p.add_argument("--with-media", action="store_true", help="histograms and images as artifacts too")
    p.add_argument("--dir", default=None, help=_DIR_HELP)
    p.set_defaults(func=cmd_import_tb)


def _fail(message: object) -> int:
    print(f"tracelet: {message}", file=sys.stderr)
    return 1


def cmd_sync(args: argparse.Namespace) -> int:
    from tracelet.exceptions import TraceletException
    from tracelet.transfer.sync import select_runs, sync

    try:
        config = parse_config(args.config)
        runs = select_runs(args.runs, all_runs=args.all, project=args.project, since=args.since, dir=args.dir)
    except (TraceletException, LookupError) as exc:
        return _fail(exc)
    if not runs:
        print("no runs selected")
        return 0
    failed = 0
    for run in runs:
        try:
            report = sync(
                run,
                args.to or None,
                config=config,
                timeout=args.timeout,
                dry_run=args.dry_run,
                progress=True,
                out=sys.stderr,
            )
        except KeyboardInterrupt:
            print("tracelet: sync interrupted; run it again to resume", file=sys.stderr)
            return 130
        except (TraceletException, LookupError) as exc:
            failed += 1
            _fail(exc)
            continue
        for damage in report.damage:
            print(f"tracelet: {run.id}: journal damaged at {damage} (`tracelet verify {run.id}`)", file=sys.stderr)
        if not report.backends:
            print(f"{run.id}: nothing to deliver (no --to, and its backends received everything)")
            continue
        if args.dry_run or all(b.skipped for b in report.backends.values()):
            for name, b in report.backends.items():
                if b.skipped == "up to date":
                    print(f"{run.id}: {name}: up to date (run {b.run_id or '-'})")
                else:
                    where = f"into run {b.run_id}" if b.run_id else "into a new run"
                    print(
                        f"{run.id} ({run.name}, {report.status}): {name} <- {b.events - b.cursor:,} events "
                        f"from #{b.cursor:,} {where}, then end it {report.status}"
                    )
            continue
        if not report.complete:
            failed += 1
    return 1 if failed else 0


def cmd_import(args: argparse.Namespace) -> int:
    from tracelet.exceptions import TraceletException
    from tracelet.transfer.importer import import_runs

    try:
        config = parse_config(args.config)
        sync_config = {k: v for k, v in config.items() if "." in k}  # BACKEND.KEY=VALUE: for --to targets
        source_config = {k: v for k, v in config.items() if "." not in k}
        runs = import_runs(
            args.sources,
            source=args.source,
            project=args.project,
            config=source_config,
            dir=args.dir,
            dry_run=args.dry_run,
            progress=True,
            out=sys.stderr,
        )
    except KeyboardInterrupt:  # the run being written is removed; the ones before it are complete
        print("tracelet: import interrupted; run it again to import the rest", file=sys.stderr)
        return 130
    except (TraceletException, OSError) as exc:
        return _fail(exc)
    failed = 0
    for r in runs:
        if r.error:
            failed += 1
            _fail(r.error)
            continue
        if args.dry_run:
            note = "already imported" if r.existing else "would be imported"
        else:
            note = (
                "unchanged, already imported"
                if r.existing
                else f"{r.events:,} events{', replacing the earlier import' if r.updated else ''}"
            )
        print(f"{r.run_id}  {r.name}  ({note})  <- {r.source}")
    if args.to and not args.dry_run:
        failed += _sync_each([r.path for r in runs if not r.error], args.to, sync_config)
    return 1 if failed else 0


def cmd_import_tb(args: argparse.Namespace) -> int:
    from tracelet.exceptions import TraceletException
    from tracelet.transfer.tbimport import import_tb

    try:
        config = parse_config(args.config)
        runs = import_tb(
            args.logdir, project=args.project, dir=args.dir, with_media=args.with_media, progress=True, out=sys.stderr
        )
    except (TraceletException, OSError) as exc:
        return _fail(exc)
    for r in runs:
        note = "already imported" if r.existing else f"{r.events:,} events"
        print(f"{r.run_id}  {r.name}  ({note})")
    failed = _sync_each([r.path for r in runs], args.to, config) if args.to else 0
    return 1 if failed else 0


def _sync_each(paths: list[Any], targets: list[str], config: dict[str, Any]) -> int:
    """Sync each imported run on to `targets`; how many did not arrive whole (errors reported as they come)."""
    from tracelet.exceptions import TraceletException
    from tracelet.transfer.sync import sync

    failed = 0
    for path in paths:
        try:
            report = sync(path, targets, config=config, progress=True, out=sys.stderr)
        except (TraceletException, LookupError) as exc:
            failed += 1
            _fail(exc)
            continue
        failed += 0 if report.complete else 1
    return failed
