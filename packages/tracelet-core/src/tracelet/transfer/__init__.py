"""Sending local runs elsewhere later: `sync` (journal → any backend) and `import_tb` (TensorBoard → runs).

Both deliver through the same backend hooks and `BackendWorker` as a live run. Nothing here is imported by
`import tracelet`; `tracelet.sync` and the `tracelet sync` / `tracelet import-tb` commands load it on use.
"""

from tracelet.transfer.sync import SyncReport, sync, sync_runs

__all__ = ["SyncReport", "sync", "sync_runs"]
