"""A real `tracelet ui` server on 127.0.0.1 (port chosen by the OS) in a thread, for the UI tests."""

from __future__ import annotations

import threading
from pathlib import Path


class Served:
    """A running UI server: `url` ends with '/'."""

    def __init__(self, root: Path) -> None:
        from tracelet.ui.server import UIServer

        self.server = UIServer(root, "127.0.0.1", 0)
        self.url = self.server.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(root: Path) -> Served:
    return Served(root)
