"""The run's command line: `sys.argv` (masked) and what `argparse` parses while the run is active.

Switch: `ExperimentConfig.track_args` (no global setting: on unless an `ExperimentConfig` turns it off).

- Run metadata `source` (the script, as `sys.argv[0]`) and `argv` (the whole command line), with values of
  secret-named options (`--api-key X`, `--token=X`, `PASSWORD=X`) and secret shapes masked.
- While the run is active, `argparse.ArgumentParser.parse_known_args` (and so `parse_args`) is wrapped: each
  namespace a top-level call returns is logged as params `args/<dest>` (sub-parsers' nested calls are part of
  their parent's result, not logged twice; secret-named destinations are masked by `log_params`). The wrapper is
  removed at stop; if something else wrapped the method after us, ours stays in the chain as a pass-through.
  Parsers that ran before `start()` are not seen: start the run first, or log `vars(args)` yourself.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Any

from tracelet.core.contract.redact import redact_argv
from tracelet.plugin import hookimpl

logger = logging.getLogger("tracelet")

PREFIX = "args/"
_depth = threading.local()


class ArgsCollector:
    """argv metadata at start; argparse results as params while the run is active."""

    config_switch = "track_args"

    def __init__(self) -> None:
        self._experiment: Any = None
        self._original: Any = None
        self._wrapper: Any = None

    @hookimpl
    def collector_metadata(self) -> dict[str, Any]:
        argv = list(sys.argv)
        masked = redact_argv(argv)
        return {"source": masked[0] if masked and masked[0] else None, "argv": masked}

    @hookimpl
    def collector_start(self, experiment: Any) -> None:
        self._experiment = experiment
        original = argparse.ArgumentParser.parse_known_args
        collector = self

        def parse_known_args(parser: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
            depth = getattr(_depth, "value", 0)
            _depth.value = depth + 1
            try:
                result = original(parser, args, namespace)
            finally:
                _depth.value = depth
            if depth == 0 and collector._experiment is not None:
                collector._record(result)
            return result

        parse_known_args.__wrapped__ = original  # type: ignore[attr-defined]
        parse_known_args.__doc__ = original.__doc__
        self._original, self._wrapper = original, parse_known_args
        # Deliberate monkeypatch of argparse; the wrapper's plain signature stands in for the overloaded one.
        argparse.ArgumentParser.parse_known_args = parse_known_args  # type: ignore[method-assign,assignment]

    def _record(self, result: Any) -> None:
        try:
            namespace = result[0] if isinstance(result, tuple) else result
            params = {f"{PREFIX}{k}": v for k, v in vars(namespace).items()}
            if params:
                self._experiment.log_params(params)
        except Exception as exc:  # the script's own parse must never fail because of us
            logger.debug("tracelet: could not record parsed arguments: %s", exc)

    @hookimpl
    def collector_stop(self) -> None:
        self._experiment = None  # a wrapper left in someone else's chain becomes a pass-through
        if self._wrapper is not None and argparse.ArgumentParser.__dict__.get("parse_known_args") is self._wrapper:
            argparse.ArgumentParser.parse_known_args = self._original  # type: ignore[method-assign]
        self._wrapper = None
