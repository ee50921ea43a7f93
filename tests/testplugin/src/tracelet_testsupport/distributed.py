"""A real PostgreSQL 15 server and a real `mlflow server` in front of it, both on 127.0.0.1, started by tests.

PostgreSQL refuses to run as root. When the tests run as root (CI containers), the server runs as an
unprivileged user: `postgres` when the machine has it, else `tracelet-pg`, created here with `useradd`.
Its data folder is a fresh temporary folder that user owns. Test-only speed-ups (`fsync=off`) are set on
the command line; the README shows the plain commands for a real deployment.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tracelet_testsupport.mlflow import MlflowServer, free_port

PG_USER = "tracelet"  # the database role (superuser, trust auth on loopback only)
PG_DATABASE = "mlflow"
OS_USER = "tracelet-pg"  # created when running as root and the machine has no `postgres` user
START_TIMEOUT = 120.0


def pg_bindir() -> Path:
    """PostgreSQL's binaries: `TRACELET_PG_BINDIR`, else the machine's PostgreSQL 15, else any on PATH."""
    explicit = os.environ.get("TRACELET_PG_BINDIR")
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/15/bin")) + sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise RuntimeError(
        "PostgreSQL binaries (initdb, pg_ctl) not found: install PostgreSQL 15 (e.g. the postgresql-15 package) "
        "or set TRACELET_PG_BINDIR to the folder that holds them"
    )


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when not root (the server runs as us); else the user the server runs as, created if needed."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", OS_USER):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    made = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER],
        capture_output=True, text=True,
    )  # fmt: skip
    try:
        return pwd.getpwnam(OS_USER)  # also when another test process (an xdist worker) created it meanwhile
    except KeyError:
        raise RuntimeError(f"useradd {OS_USER} failed: {made.stderr.strip()}") from None


class Postgres:
    """`initdb` into a temporary folder, `pg_ctl start` on a loopback port, a database for MLflow."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.user = _unprivileged_user()
        self.root = Path(tempfile.mkdtemp(prefix="tracelet-pg-"))  # under /tmp: reachable by that user
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()

    @property
    def uri(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def _run(self, *cmd: str, check: bool = True, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
            env["HOME"] = str(self.root)
        out = subprocess.run(
            cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
        if check and out.returncode != 0:
            log = self.log.read_text()[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}\n{log}")
        return out

    def start(self) -> None:
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.root, 0o700)
        if not self.data.exists():
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust",
                      "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.root}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", str(int(START_TIMEOUT)), "start")  # fmt: skip
        exists = self._run(
            str(self.bindir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            PG_USER,
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname='{PG_DATABASE}'",
        )
        if exists.stdout.strip() != "1":
            self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER,
                      PG_DATABASE)  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowPgServer(MlflowServer):
    """`mlflow server --backend-store-uri postgresql://...` on 127.0.0.1; killed and restarted on one port."""

    def __init__(self, pg: Postgres, root: Path, workers: int = 2) -> None:
        super().__init__(root, store_uri=pg.uri, workers=workers)
        self.pg = pg
