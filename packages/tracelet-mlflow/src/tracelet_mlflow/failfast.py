"""Fail fast on HTTP for Tracelet's worker threads only.

MLflow's REST client retries a failed request itself (7 times by default, exponential backoff from 2 s): during
an outage one `log_batch` would block for minutes, past `stop()`'s deadline. Tracelet already retries whole
batches with capped backoff, so on its worker threads each request is tried once (or `http_retries` times) with
a bounded timeout. Other threads — the user's own mlflow calls — keep MLflow's defaults.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

_local = threading.local()
_installed = False
_lock = threading.Lock()


def install() -> None:
    """Wrap `mlflow.utils.rest_utils.http_request` once per process (a no-op outside a fail-fast block)."""
    global _installed
    with _lock:
        if _installed:
            return
        import importlib

        from mlflow.utils import rest_utils

        original = rest_utils.http_request

        @functools.wraps(original)
        def http_request(*args: Any, **kwargs: Any) -> Any:
            policy = getattr(_local, "policy", None)
            if policy is not None:
                kwargs["max_retries"] = policy[0]
                kwargs["timeout"] = policy[1]
                kwargs.setdefault("backoff_factor", 0)
            return original(*args, **kwargs)

        rest_utils.http_request = http_request
        # Modules that imported the function by name get the wrapper too (artifact uploads over HTTP).
        for module in ("mlflow.store.artifact.http_artifact_repo",):
            try:
                mod = importlib.import_module(module)
            except ImportError:
                continue
            if getattr(mod, "http_request", None) is original:
                mod.http_request = http_request  # type: ignore[attr-defined]  # deliberate monkeypatch
        _installed = True


@contextlib.contextmanager
def fail_fast(retries: int, timeout: float) -> Iterator[None]:
    previous = getattr(_local, "policy", None)
    _local.policy = (retries, timeout)
    try:
        yield
    finally:
        _local.policy = previous
