"""A real `mlflow server` on 127.0.0.1 (MlflowServer: killed and restarted on one port), and reading runs back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tracelet.core.engine import journal
from tracelet_testsupport.shared import made_once


def journal_metrics(run_dir: str | os.PathLike[str]) -> list[tuple[Any, ...]]:
    """The metric events the core journaled for a run: (kind, name, value, step, timestamp)."""
    return [e for _, e in journal.read_events(Path(run_dir) / journal.EVENTS_FILE) if e[0] == "m"]


def mlflow_run_id(exp: Any) -> str:
    assert exp.report is not None, "the experiment must be stopped first"
    return exp.report.backends["mlflow"].details["run_id"]


def empty_sqlite_store(folder: Path) -> Path:
    """`folder/mlflow.db`: an empty MLflow sqlite store, created and migrated by MLflow itself, in a child process
    (this one neither imports mlflow nor has its telemetry decided by it). Creating a store runs MLflow's
    schema migrations, seconds of CPU each time: tests get copies of this one (`copy_sqlite_store`)."""
    db = folder / "mlflow.db"
    code = (
        "import sys\n"
        "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
        "SqlAlchemyStore(sys.argv[1], sys.argv[2])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    out = subprocess.run([sys.executable, "-c", code, f"sqlite:///{db}", str(folder / "mlruns")], cwd=folder,
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0 and db.exists(), out.stderr[-3000:]
    return db


def shared_empty_sqlite_store(root: Path) -> Path:
    """`empty_sqlite_store` made once under `root` by whichever process asks first (pytest-xdist workers share the
    folder above their own temporary folders); the others wait on a lock and take the same file."""
    return made_once(root / "mlflow-sqlite-template", empty_sqlite_store) / "mlflow.db"


def copy_sqlite_store(template: Path, db: Path, cwd: Path | None = None, artifacts: str | None = None) -> str:
    """A fresh, empty MLflow sqlite store at `db` (a copy of `template`, from `empty_sqlite_store`), as MLflow
    would have created it from `cwd` (default: the current folder): its Default experiment's artifacts under
    `cwd/mlruns/0`, or under `artifacts` (`<artifacts>/0`) where given. Returns its tracking URI. Tests that are
    about MLflow creating a store use their own URI."""
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, db)
    location = f"{artifacts}/0" if artifacts is not None else str((cwd or Path.cwd()).resolve() / "mlruns" / "0")
    con = sqlite3.connect(db)
    try:
        with con:
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (location,))
    finally:
        con.close()
    return f"sqlite:///{db}"


MLFLOW_CLI = [sys.executable, "-m", "mlflow"]
SERVER_START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The Default experiment's artifact root in a store `mlflow server` created (it serves the artifacts itself).
SERVED_ARTIFACTS = "mlflow-artifacts:"


class MlflowServer:
    """`mlflow server` on 127.0.0.1, by default on a sqlite store in `root`, else on `store_uri`; it can be killed
    (as a crash) and restarted on the same port and store.

    With `template` (`empty_sqlite_store`), the sqlite store starts as a copy of it, as the server would have
    created it: a fresh store costs the server its schema migrations, seconds of CPU at every first start."""

    def __init__(
        self, root: Path, store_uri: str | None = None, workers: int = 1, template: Path | None = None
    ) -> None:
        self.root = root
        self.template = template if store_uri is None else None
        self.port = free_port()
        self.db = root / "server.db"
        self.store_uri = store_uri or f"sqlite:///{self.db}"
        self.workers = workers
        self.artifacts = root / "artifacts"
        self.log = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            *MLFLOW_CLI, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            "--backend-store-uri", self.store_uri, "--artifacts-destination", str(self.artifacts),
        ]  # fmt: skip

    def start(self) -> None:
        if self.template is not None and not self.db.exists():
            copy_sqlite_store(self.template, self.db, artifacts=SERVED_ARTIFACTS)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "MLFLOW_TRACKING", "RANK"))}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        with open(self.log, "ab") as log:
            # Its own session, so stopping it takes the uvicorn workers down too.
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited early:\n{self.log.read_text()[-3000:]}")
            if self.healthy():
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"mlflow server did not become healthy:\n{self.log.read_text()[-3000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """Kill the whole server (SIGKILL to its process group), as a crash would."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.proc = None
        deadline = time.monotonic() + 10
        while self.healthy() and time.monotonic() < deadline:
            time.sleep(0.05)
