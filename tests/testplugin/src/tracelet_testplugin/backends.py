"""Backends that record what they receive in memory (keyed by run id), fail, sleep, or fail for a while.

Artifacts: `recorder` (and its subclasses) record each artifact they are given, the thread it arrived on and
the bytes of its files at delivery; `failing` raises in backend_log_artifact too; `typed` takes only
image artifacts (through backend_accepts_artifact).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tracelet.plugin import ConfigurationError, Metric, PluginMetadata, PluginType, RunContext, RunStatus, hookimpl

RECORDS: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def record_for(run_id: str, backend: str) -> dict[str, Any]:
    return RECORDS[f"{backend}:{run_id}"]


class RecorderBackend:
    """Keeps every hook call for the test to read back."""

    label = "recorder"

    def __init__(self) -> None:
        self.rec: dict[str, Any] = {}

    @hookimpl
    def plugin_setup(self, config: dict[str, Any]) -> None:
        self.rec["config"] = dict(config)

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        with _lock:
            self.rec.update(
                run=run, metrics=[], params={}, tags={}, batches=0, status=None, threads=set(), artifacts=[]
            )
            RECORDS[f"{self.label}:{run.run_id}"] = self.rec
        return {"recorded_as": self.label}

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        self.rec["metrics"].extend(metrics)
        self.rec["batches"] += 1
        self.rec["threads"].add(threading.current_thread().name)

    @hookimpl
    def backend_log_params(self, params: dict[str, Any]) -> None:
        self.rec["params"].update(params)

    @hookimpl
    def backend_log_tags(self, tags: dict[str, str]) -> None:
        self.rec["tags"].update(tags)

    @hookimpl
    def backend_end_run(self, status: RunStatus) -> None:
        self.rec["status"] = status

    @hookimpl
    def backend_snapshot_artifact(self, artifact: Any, staging_dir: str) -> dict[str, Any] | None:
        """Saves its own form of live objects (their repr), as a framework-format saver would."""
        if not artifact.objects:
            return None
        out = Path(staging_dir) / "reprs.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(repr(o.obj) for o in artifact.objects))
        return {"reprs": str(out), "thread": threading.current_thread().name}

    @hookimpl
    def backend_log_artifact(self, artifact: Any, snapshot: dict[str, Any] | None) -> dict[str, Any]:
        contents = {f.artifact_path: Path(f.local_path).read_bytes() for f in artifact.files}
        with _lock:
            self.rec.setdefault("snapshots", []).append(
                None if snapshot is None else {**snapshot, "text": Path(snapshot["reprs"]).read_text()}
            )
            self.rec["artifacts"].append(artifact)
            self.rec.setdefault("artifact_contents", []).append(contents)
            self.rec.setdefault("artifact_threads", set()).add(threading.current_thread().name)
        n = len(self.rec["artifacts"])
        return {"uri": f"{self.label}://{artifact.name}/{n}", "version": str(n), "metadata": {"count": n}}


class SlowBackend(RecorderBackend):
    """Sleeps a second per batch."""

    label = "slow"

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        time.sleep(1.0)
        super().backend_log_metrics(metrics)


class FailingBackend(RecorderBackend):
    """Every batch raises."""

    label = "failing"

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        self.rec["attempts"] = self.rec.get("attempts", 0) + 1
        raise ConnectionError("tracker unreachable")

    @hookimpl
    def backend_log_artifact(self, artifact: Any) -> None:
        self.rec["artifact_attempts"] = self.rec.get("artifact_attempts", 0) + 1
        raise ConnectionError("artifact store unreachable")


class FlakyBackend(RecorderBackend):
    """Fails its first `fail_times` batches (config key `fail_times`, default 3), then delivers."""

    label = "flaky"

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric]) -> None:
        self.rec["attempts"] = self.rec.get("attempts", 0) + 1
        if self.rec["attempts"] <= int(self.rec["config"].get("fail_times", 3)):
            raise ConnectionError("flaky tracker")
        super().backend_log_metrics(metrics)


class TypedBackend(RecorderBackend):
    """Accepts image artifacts only."""

    label = "typed"

    @hookimpl
    def backend_accepts_artifact(self, artifact: Any) -> bool:
        return artifact.type.value == "image"


class MisconfiguredBackend(RecorderBackend):
    """Refuses to start, as a backend with a wrong setting would."""

    label = "misconfigured"

    @hookimpl
    def backend_start_run(self, run: RunContext) -> dict[str, Any]:
        raise ConfigurationError("bad-config: this backend needs a setting it was not given")


class TypoBackend(RecorderBackend):
    """Misspells a hook (`backend_log_metric`): selecting it must fail start(), naming the real hook."""

    label = "typo"

    @hookimpl
    def backend_log_metric(self, metrics: list[Metric]) -> None:
        self.rec["metrics"].extend(metrics)


class UndecoratedBackend(RecorderBackend):
    """Has a hook-named method without @hookimpl: it is never called, and Tracelet warns about it once."""

    label = "undecorated"

    def backend_flush(self) -> None:
        self.rec["flushed"] = True


class TypoCollector:
    """A collector with a misspelled hook (`collector_samples`): reported when a run loads it, never run."""

    config_switch = None  # on in every run

    @hookimpl
    def collector_samples(self) -> dict[str, float]:
        return {"never": 1.0}


class StatedMetadataBackend(RecorderBackend):
    """States in `plugin_metadata` the fields the core fills from its entry point, with stale values (a renamed
    entry point, an old version): the entry point's values are used and `tracelet plugins` warns."""

    label = "stated"

    @hookimpl
    def plugin_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            name="old-name",
            version="0.0.1",
            type=PluginType.FRAMEWORK,
            distribution="tracelet-old",
            description="States everything",
            capabilities=["metrics"],
        )


class BadArgumentBackend(RecorderBackend):
    """A hook taking an argument its hookspec does not have (`step`): refused wherever it is loaded."""

    label = "badargument"

    @hookimpl
    def backend_log_metrics(self, metrics: list[Metric], step: int) -> None:
        self.rec["metrics"].extend(metrics)
