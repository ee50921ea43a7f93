"""Moving runs: `sync` (journal → any backend), `import_runs` (any tracker → runs, `tracelet.transfer.importer`)
and `import_tb` (TensorBoard → runs).

`sync` delivers through the same backend hooks and `BackendWorker` as a live run; the imports write through
the journal writer a live run uses. Nothing here is imported by
`import tracelet`; `tracelet.sync` and the `tracelet sync` / `import` / `import-tb` commands load it on use.
"""

from tracelet.transfer.sync import SyncReport, sync, sync_runs

__all__ = ["SyncReport", "sync", "sync_runs"]
