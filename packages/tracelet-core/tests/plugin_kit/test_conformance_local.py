"""The built-in local store passes the conformance kit.

The local store's record is the run journal, which is also the kit's ground truth, so the metric checks here
confirm only that the journal reads back intact; what this adds is statuses in run.json, params and tags
merging, artifacts stored and read back through the backend's own hooks, and several runs in one process.
"""

from __future__ import annotations

from tracelet.backends.local import LocalBackend
from tracelet.store import LocalRun
from tracelet.testing import BackendConformance, RunUnderTest, TrackedRun


class TestLocalStore(BackendConformance):
    backend = LocalBackend

    def read_run(self, run: RunUnderTest) -> TrackedRun:
        assert run.run_dir is not None
        stored = LocalRun(run.run_dir)
        return TrackedRun(
            metrics=stored.metrics(),
            params=stored.params(),
            tags=stored.tags(),
            status=stored.status,
            artifacts=[a.name for a in stored.artifacts()],
        )
