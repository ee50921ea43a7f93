"""The `tracelet` command: installed plugins, local runs, one run's summary."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from tracelet.core.contract import discovery
from tracelet.core.engine.backend import instantiate
from tracelet.core.plugins import PluginType, implemented_hooks, new_plugin_manager, register_checked
from tracelet.exceptions import ConfigurationError

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """One line of block characters; long series are bucketed (mean per bucket), non-finite values as ' '."""
    if len(values) > width:
        size = len(values) / width
        buckets = [values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)] for i in range(width)]
        values = [_mean(b) for b in buckets]
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return " " * len(values)
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join(_BARS[int((v - lo) / span * (len(_BARS) - 1))] if math.isfinite(v) else " " for v in values)


def _mean(bucket: Sequence[float]) -> float:
    finite = [v for v in bucket if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _plugin_rows() -> list[dict[str, Any]]:
    """One row per visible plugin: what it is, its hooks and metadata, and what is wrong with it, if anything.

    A plugin is "broken" when selecting it would fail: it cannot be imported, it has an unknown hook name,
    pluggy refuses a hook's signature, or two distributions publish its name.
    """
    rows = []
    for ptype in PluginType:
        clashing = discovery.clashes(ptype)
        for spec in discovery.installed(ptype):
            row: dict[str, Any] = {
                "name": spec.name,
                "type": ptype.value,
                "distribution": spec.distribution,
                "version": spec.version,
                "entry_point": spec.value,
                "hooks": [],
                "description": "",
                "capabilities": [],
                "problems": [],
                "warnings": [],
            }
            if spec.name in clashing:
                row["problems"].append(discovery.clash_message(ptype, spec.name, clashing[spec.name]))
            try:
                _inspect_plugin(spec, row)
            except ConfigurationError as exc:
                row["problems"].append(str(exc))
            row["status"] = "broken" if row["problems"] else "ok"
            if row["problems"]:
                row["error"] = "; ".join(row["problems"])
            rows.append(row)
    return rows


def _inspect_plugin(spec: discovery.PluginSpec, row: dict[str, Any]) -> None:
    """Load, instantiate and check the plugin as a run does (the core's `instantiate` and `register_checked`:
    a plugin is broken here exactly when selecting it fails), then read its metadata as the core completes it."""
    plugin = instantiate(spec.load())
    row["hooks"] = sorted(
        implemented_hooks(plugin)
    )  # listed for a broken plugin too: what its author meant to implement
    pm = new_plugin_manager()
    try:
        undecorated = register_checked(pm, plugin, spec.name)
    except ConfigurationError as exc:
        row["problems"].append(str(exc).removeprefix(f"plugin {spec.name!r}: "))  # the row names the plugin
        return
    row["warnings"].extend(f"`{name}` has a hook's name but no @hookimpl: never called" for name in undecorated)
    try:
        stated = pm.hook.plugin_metadata()
    except Exception as exc:
        row["warnings"].append(f"plugin_metadata raised {type(exc).__name__}: {exc}")
        stated = None
    meta, wrong = spec.metadata(stated)
    row["warnings"].extend(wrong)
    row["description"] = meta.description or ""
    row["capabilities"] = [str(c) for c in meta.capabilities or []]
    if meta.homepage:
        row["homepage"] = str(meta.homepage)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def cmd_plugins(args: argparse.Namespace) -> int:
    rows = _plugin_rows()
    broken = [r for r in rows if r["status"] != "ok"]
    code = 1 if args.check and broken else 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return code
    table = [[r["name"], r["type"], r["distribution"], r["version"], r["status"], r["description"]] for r in rows]
    print(_table(table, ["NAME", "TYPE", "DISTRIBUTION", "VERSION", "STATUS", "DESCRIPTION"]))
    print()
    for r in rows:
        caps = f"capabilities: {', '.join(r['capabilities'])}; " if r["capabilities"] else ""
        print(f"{r['name']} ({r['type']}): {caps}hooks: {', '.join(r['hooks']) or 'none'}")
        for problem in r["problems"]:
            print(f"  BROKEN: {problem}")
        for warning in r["warnings"]:
            print(f"  warning: {warning}")
    if args.check:
        verdict = f"{len(broken)} broken plugin(s): {', '.join(r['name'] for r in broken)}" if broken else "all ok"
        print(f"\ntracelet plugins --check: {verdict}", file=sys.stderr)
    return code


def cmd_runs(args: argparse.Namespace) -> int:
    from tracelet import store

    runs = store.list_runs(args.dir)
    if not runs:
        print(f"no runs under {args.dir or store.default_root()}")
        return 0
    table = [
        [
            r.id,
            r.project or "",
            r.name or "",
            _status(r),
            (r.created_at or "")[:19],
            _events(r),
            _behind(r),
        ]
        for r in runs
    ]
    print(_table(table, ["RUN", "PROJECT", "NAME", "STATUS", "CREATED", "EVENTS", "BEHIND"]))
    return 0


def _events(run: Any) -> str:
    """The run's event count: recorded at stop; counted from the journal for a run whose process died (its
    count will not change any more); blank while a run is live."""
    events = run.meta.get("events")
    if events is None and run.dead:
        from tracelet.transfer.state import count_events

        events = count_events(run.path)
    return "" if events is None else str(events)


def _status(run: Any) -> str:
    """The run's status; a run whose process died says so (`tracelet.core.engine.owner`)."""
    status = run.status or ""
    return f"{status} (process died)" if run.dead else status


def _behind(run: Any) -> str:
    """Backends that did not receive everything ("mlflow: 12,000 behind"); `tracelet sync RUN` finishes them."""
    return ", ".join(f"{name}: {count:,} behind" for name, count in run.behind().items())


def cmd_show(args: argparse.Namespace) -> int:
    from tracelet import store

    try:
        run = store.open_run(args.run, args.dir)
    except LookupError as exc:
        print(f"tracelet: {exc}", file=sys.stderr)
        return 1
    print(f"run      {run.id}")
    print(f"name     {run.name}")
    print(f"project  {run.project}")
    print(f"status   {_status(run)}")
    behind = _behind(run)
    if behind:
        print(f"behind   {behind}  (`tracelet sync {run.id}` delivers the rest)")
    print(f"path     {run.path}")
    params, tags = run.params(), run.tags()
    if params:
        print("\nparams")
        for k, v in sorted(params.items()):
            print(f"  {k} = {v}")
    if tags or run.meta.get("tags"):
        print("\ntags")
        for t in run.meta.get("tags") or []:
            print(f"  {t}")
        for k, v in sorted(tags.items()):
            print(f"  {k} = {v}")
    summary = run.summary()
    if summary:
        print("\nsummary")
        for k, v in sorted(summary.items()):
            print(f"  {k} = {v:.6g}")
    metrics = run.metrics()
    if metrics:
        print("\nmetrics")
        rows = []
        for name, points in sorted(metrics.items()):
            values = [p.value for p in points]
            finite = [v for v in values if math.isfinite(v)] or [math.nan]
            rows.append(
                [
                    name,
                    f"{values[-1]:.6g}",
                    f"{min(finite):.6g}",
                    f"{max(finite):.6g}",
                    str(len(values)),
                    sparkline(values),
                ]
            )
        print(textwrap.indent(_table(rows, ["NAME", "LAST", "MIN", "MAX", "POINTS", ""]), "  "))
    _print_damage(run)
    return 0


def _print_damage(run: Any) -> None:
    """What reading the run skipped, on stderr: the output above is what could be read."""
    notes = ([run.meta_error] if run.meta_error else []) + [
        f"{os.path.basename(run.reader.path)} damaged at {d.describe()}" for d in run.reader.damage
    ]
    for note in notes:
        print(f"tracelet: {run.id}: {note}", file=sys.stderr)
    if notes:
        print(f"tracelet: `tracelet verify {run.id}` checks the run; `--repair` writes a clean copy", file=sys.stderr)


def cmd_verify(args: argparse.Namespace) -> int:
    from tracelet import store, verify

    try:
        runs = (
            [store.open_run(r, args.dir) for r in args.runs]
            if args.runs
            else (store.list_runs(args.dir) if args.all else None)
        )
    except LookupError as exc:
        print(f"tracelet: {exc}", file=sys.stderr)
        return 1
    if runs is None:
        print("tracelet: name runs to verify, or --all", file=sys.stderr)
        return 2
    bad = 0
    for run in runs:
        verdict = verify.check(run)
        if verdict.ok:
            print(f"{verdict.run_id}  ok  ({verdict.events:,} events)")
            continue
        print(f"{verdict.run_id}  DAMAGED  ({verdict.events:,} events readable)  {verdict.path}")
        for problem in verdict.problems:
            print(f"  {problem}")
        if not args.repair:
            bad += 1
            continue
        try:
            done = verify.repair(run, verdict)
        except OSError as exc:
            print(f"  repair failed: {exc}")
            bad += 1
            continue
        for line in done:
            print(f"  repaired: {line}")
        again = verify.check(store.LocalRun(run.path))
        bad += 0 if again.ok else 1
    if bad and not args.repair:
        print(
            f"tracelet verify: {bad} damaged run(s); `tracelet verify --repair RUN` writes clean copies "
            "(the damaged files are kept)",
            file=sys.stderr,
        )
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracelet", description="Tracelet: plugins and local runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list installed plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--check", action="store_true", help="exit with status 1 when any plugin is broken")
    p.set_defaults(func=cmd_plugins)
    p = sub.add_parser("runs", help="list runs in the local store")
    p.add_argument("--dir", default=None, help="local store (default: TRACELET_DIR or ./tracelet-runs)")
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("show", help="summarise one run")
    p.add_argument("run", help="run id, unique prefix, or folder")
    p.add_argument("--dir", default=None, help="local store (default: TRACELET_DIR or ./tracelet-runs)")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser(
        "verify",
        help="check runs' journals and run records; --repair writes clean copies",
        description="Exit status 0 when every run checked is sound (or, with --repair, was "
        "repaired), 1 when one is damaged.",
    )
    p.add_argument("runs", nargs="*", help="run ids, unique prefixes, or folders")
    p.add_argument("--all", action="store_true", help="every run in the local store")
    p.add_argument(
        "--repair",
        action="store_true",
        help="write a clean copy of each damaged file; the damaged one is kept beside it",
    )
    p.add_argument("--dir", default=None, help="local store (default: TRACELET_DIR or ./tracelet-runs)")
    p.set_defaults(func=cmd_verify)
    from tracelet.transfer.cli import add_commands  # sync, import-tb

    add_commands(sub)
    from tracelet.ui.cli import add_commands as add_ui_commands  # ui, report

    add_ui_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # `tracelet runs | head`: the reader left; end quietly as other Unix tools do, not with a traceback
        # (and not again at exit, when Python flushes stdout into the closed pipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut off by its pipe


if __name__ == "__main__":
    sys.exit(main())
