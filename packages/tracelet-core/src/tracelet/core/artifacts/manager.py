"""Logging artifacts: validate, route, snapshot, hand to the backends' workers, collect their results.

    log_artifact(a) ─ route (accepts hook + config `artifact_routing`) ─ snapshot files ─ append ("a", payload)
         │                                                                                   │
         └─ returns {backend: ArtifactResult(pending)}          worker "local" ─► deliver ─► backend_log_artifact
                            ▲                                   worker "mlflow" ─► deliver ─► ...
                            └──────────── filled (uri, version | error) ◄────────┘

The calling thread copies the files (so later writes by the training script cannot change what was logged)
and serializes objects; it never uploads. Each backend's worker delivers the artifact in logging order, so
the local store numbers versions in the order of the `log_artifact` calls. The event's payload is plain JSON
(the artifact's dict with snapshot paths, the target backends and a token), since it is journalled.

Each artifact is kept once per run folder. Where the local store took it (`artifacts/<name>/v<N>/`) and every
other target took it too, the snapshot under `artifacts/.staging/<token>/` is removed and a marker
`artifacts/.staging/<token>.stored` (JSON: name, version) says where the run's copy is; `tracelet sync` reads
that copy. Where the local store does not hold it (not a target, or it failed), or a target failed (a later
sync sends it from the snapshot), or a backend took its own snapshot of it, the snapshot is the run's copy
and stays.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from tracelet.core.artifacts.checkpoints import captured_file_type  # the `track_checkpoints` rule
from tracelet.core.artifacts.kinds import ArtifactType, guess_type, to_artifact_type
from tracelet.core.artifacts.model import (
    FAILED,
    OK,
    ArtifactFile,
    ArtifactObject,
    ArtifactResult,
    TraceletArtifact,
)
from tracelet.core.artifacts.paths import check_artifact_path, copy_hashing, sha256_file
from tracelet.core.contract.records import ARTIFACT, Append
from tracelet.core.contract.values import plain
from tracelet.core.engine import backoff, journal
from tracelet.exceptions import BackendError, ConfigurationError

if TYPE_CHECKING:
    from tracelet.core.contract.protocols import RunConfig
    from tracelet.core.engine.backend import Backend

logger = logging.getLogger("tracelet")

DELIVERY_ATTEMPTS = 3  # a lasting failure becomes a result with its error, not a backend blocked forever
DELIVERY_BACKOFF = 0.1  # seconds before the 2nd attempt; doubled for each further one (tracelet.core.engine.backoff)
READ_WAIT = 10.0  # get/list wait at most this long for the backend to store what was logged before


class ArtifactManager:
    """The artifact system of one experiment (created at start, used from any thread).

    Everything it needs is handed in: `append` queues an event on the experiment's hot path, `backends`
    returns the active backends, `record_error(backend, where, exc)` counts a delivery error in that
    backend's report; the rest is configuration.
    """

    def __init__(
        self,
        *,
        append: Append,
        backends: Callable[[], list[Backend]],
        record_error: Callable[[str, str, BaseException], None],
        backend_names: list[str],
        config: RunConfig,
        options: dict[str, Any],
        store_dir: str,
        run_dir: Path | None,
        wait_timeout: float,
    ) -> None:
        self._append = append
        self._backends = backends
        self._record_error = record_error
        self._backend_names = list(backend_names)
        self._config = config
        self._options = options
        self._store_dir = store_dir
        self._run_dir = run_dir
        self._wait_timeout = wait_timeout
        self._lock = threading.Lock()
        # Folders whose files an integration logs itself (Trainer checkpoints): automatic capture skips them.
        self._skipped: tuple[Path, ...] = ()
        self._results: dict[str, dict[str, ArtifactResult]] = {}  # token -> backend -> undelivered result
        self._logged: dict[tuple[str, str], int] = {}  # (backend, artifact name) -> times logged to it
        # backend -> tokens of artifacts it failed for a transient reason (an outage): run.json keeps them at
        # stop (`failed_artifacts`) so `tracelet sync RUN` delivers them, since the worker's cursor moved on.
        self._failed: dict[str, dict[str, None]] = {}
        self._stored: dict[str, tuple[str, str]] = {}  # token -> (name, version) the local store holds it as
        self._keep: set[str] = set()  # tokens whose snapshot is the run's copy (a failure, a backend snapshot)
        self._staging: Path | None = None
        self._temporary_staging = False
        self._watcher: Any = None
        self._stopped = False
        self.attempts = DELIVERY_ATTEMPTS
        self.backoff = DELIVERY_BACKOFF
        self.routing = self._parse_routing(options.get("artifact_routing"))

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the automatic parts (folder watching) when the experiment's config asks for them."""
        cfg = self._config
        wants_watch = bool(cfg.automagic_artifacts or cfg.watch_filesystem)
        if not wants_watch:
            return
        if not cfg.enable_artifacts:
            logger.warning(
                "tracelet: automagic_artifacts/watch_filesystem need enable_artifacts (Experiment(artifacts=True)); "
                "no folder is watched"
            )
            return
        dirs = [Path(d).expanduser().resolve() for d in (cfg.artifact_watch_dirs or [])]
        if not dirs:
            logger.info("tracelet: artifact watching is on but artifact_watch_dirs is empty; nothing to watch")
            return
        from tracelet.core.artifacts.watch import ArtifactWatcher

        options = self._options
        exclude = [Path(self._store_dir).expanduser().resolve()]
        if self._run_dir is not None:
            exclude.append(Path(self._run_dir).resolve())
        self._watcher = ArtifactWatcher(
            dirs,
            on_file=self._log_watched,
            exclude=exclude,
            interval=float(options.get("artifact_watch_interval", 1.0)),
            settle=float(options.get("artifact_watch_settle", 1.0)),
            mode=str(options.get("artifact_watcher", "auto")),
            more_exclude=lambda: [*self._tracker_paths(dirs), *self._skipped],
        )
        self._watcher.start()

    def skip_capture(self, path: str | os.PathLike[str]) -> None:
        """Leave files under `path` to the integration that logs them: the folder watcher (and plugins that
        ask `capture_skipped`) do not capture them."""
        resolved = Path(path).expanduser().resolve()
        with self._lock:
            if resolved not in self._skipped:
                self._skipped = (*self._skipped, resolved)

    def capture_skipped(self, path: str | os.PathLike[str]) -> bool:
        """Whether `path` is under a folder given to `skip_capture`."""
        skipped = self._skipped
        if not skipped:
            return False
        resolved = Path(path).expanduser().resolve()
        return any(resolved == s or s in resolved.parents for s in skipped)

    def _tracker_paths(self, watched: list[Path]) -> list[Path]:
        """Local files and folders the backends write to, from their run details (an MLflow sqlite database
        and artifact root, a W&B run folder, a ClearML session folder). A watched folder that holds one of
        them would otherwise log the tracker's own writes, each of which it then writes again, without end."""
        found: list[Path] = []
        for b in self._backends():
            for value in dict(b.details or {}).values():
                path = _local_path(value)
                if path is None or any(path == d or path in d.parents for d in watched):
                    continue  # excluding a watched folder itself (or one above it) would stop all watching
                found.append(path)
                found.extend(path.with_name(path.name + suffix) for suffix in _SQLITE_SIDECARS)
        return found

    def stop(self) -> None:
        """Stop watching (logging what appeared last); deliveries already queued still complete."""
        if self._watcher is not None:
            self._watcher.stop()
        with self._lock:
            self._stopped = True
            idle = not self._results
        if idle and self._temporary_staging and self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)

    def close(self) -> None:
        """After the backends' workers have ended: a result still pending will never be answered, so it fails
        with what to do instead of making every later read of it wait out the stop timeout again."""
        with self._lock:
            leftover = list(self._results.values())
            self._results.clear()
        if not leftover:
            return
        later = self._sync_hint() or "without the local store it is not kept; log it again in a new run"
        for pending in leftover:
            for name, result in pending.items():
                result.status = FAILED
                result.error = f"not delivered to {name!r} before the run stopped (stop_timeout); {later}"
                result._done.set()
        if self._temporary_staging and self._staging is not None:  # nothing will read these snapshots now
            shutil.rmtree(self._staging, ignore_errors=True)

    # -- logging -----------------------------------------------------------------------------------------------
    def log(
        self, artifact_or_path: TraceletArtifact | str | os.PathLike[str], wait: bool | float = False
    ) -> dict[str, ArtifactResult]:
        """Route, snapshot and queue an artifact; `wait` (True or seconds) blocks until the backends answer."""
        if self._stopped:
            logger.warning("tracelet: log_artifact after the experiment stopped is ignored")
            return {}
        artifact = self._coerce(artifact_or_path)
        targets, results = self._route(artifact)
        if not targets:
            if not results:
                logger.warning("tracelet: no active backend takes artifact %r (%s)", artifact.name, artifact.type.value)
            return results
        token = uuid.uuid4().hex
        staging = self._staging_root() / token
        try:
            snapshot = self._snapshot(artifact, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        extras = self._backend_snapshots(artifact, targets, staging, results)
        targets = [name for name in targets if name not in results]
        pending = {name: self._pending(name, snapshot) for name in targets}
        with self._lock:
            self._results[token] = dict(pending)  # registered before the event exists: delivery may be instant
            if extras or "local" not in pending:
                self._keep.add(token)  # a backend's own snapshot, or no local copy: the snapshot stays
            else:
                self._stored[token] = (snapshot.name, "")  # the version once the local store answers
        payload = {
            "token": token,
            "targets": targets,
            "staging": str(staging),
            "artifact": snapshot.to_dict(),
            "snapshots": extras,
        }
        self._append((ARTIFACT, payload, time.time()))
        results.update(pending)
        if wait:
            timeout = self._wait_timeout if wait is True else float(wait)
            deadline = time.monotonic() + timeout
            for r in pending.values():
                r.wait(max(deadline - time.monotonic(), 0))
        return results

    def _pending(self, backend: str, snapshot: TraceletArtifact) -> ArtifactResult:
        """A pending result with what the core knows now: the version (backends number an artifact's
        versions in logging order within a run, so the n-th log of a name is "vn") and, for the local store,
        where it will be. Reading anything else waits for the backend (bounded by the stop timeout)."""
        with self._lock:
            key = (backend, snapshot.name)
            self._logged[key] = number = self._logged.get(key, 0) + 1
        result = ArtifactResult(backend=backend, version=f"v{number}")
        early = {"version"}
        if backend == "local" and self._run_dir is not None:
            from tracelet.core.engine.journal import artifacts_root

            vdir = artifacts_root(self._run_dir) / snapshot.name / result.version
            result.uri = vdir.resolve().as_uri()
            result.metadata = {
                "path": str(vdir),
                "size_bytes": snapshot.size_bytes,
                "checksums": {f.artifact_path: f.checksum for f in snapshot.files},
            }
            early |= {"uri", "metadata"}
        result._early = frozenset(early)
        result._read_timeout = self._wait_timeout
        return result

    def log_file(self, local_path: str, artifact_path: str | None = None) -> dict[str, ArtifactResult]:
        """One file as an artifact named after it, typed by its extension.

        `artifact_path` is the file's path inside the artifact; one ending in "/" is a folder (as in the
        legacy `log_artifact(local_path, artifact_path)` of other trackers) that keeps the file's name.
        """
        path = Path(local_path)
        if artifact_path is not None and artifact_path.endswith(("/", "\\")):
            artifact_path = artifact_path.rstrip("/\\") + "/" + path.name
        artifact = TraceletArtifact(path.name, guess_type(path)).add_file(str(path), artifact_path)
        return self.log(artifact)

    def log_under(
        self, local_path: str | os.PathLike[str], folder: str, wait: bool | float = False
    ) -> dict[str, ArtifactResult]:
        """A file (under its own name) or a folder's files, inside `folder` of an artifact named after it."""
        path = Path(local_path)
        folder = str(folder).strip("/\\")
        if path.is_dir():
            artifact = TraceletArtifact(path.resolve().name, ArtifactType.CUSTOM).add_dir(str(path), folder or None)
        else:
            inside = f"{folder}/{path.name}" if folder else None
            artifact = TraceletArtifact(path.name, guess_type(path)).add_file(str(path), inside)
        return self.log(artifact, wait=wait)

    def _log_watched(self, path: Path) -> None:
        kind = captured_file_type(self._config, path, guess_type(path))
        if kind is not None:
            self.log(TraceletArtifact(path.name, kind).add_file(str(path)))

    def _coerce(self, value: Any) -> TraceletArtifact:
        if isinstance(value, TraceletArtifact):
            return value
        if isinstance(value, (str, os.PathLike)):
            path = Path(value)
            if path.is_dir():
                return TraceletArtifact(path.resolve().name, ArtifactType.CUSTOM).add_dir(str(path))
            return TraceletArtifact(path.name, guess_type(path)).add_file(str(path))
        raise TypeError(f"log_artifact takes a TraceletArtifact or a file path, got {type(value).__name__}")

    # -- routing -------------------------------------------------------------------------------------------------
    def _parse_routing(self, raw: Any) -> dict[ArtifactType, list[str]]:
        """Config `artifact_routing`: {type (value or name): backend name or list of names}."""
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ConfigurationError(f"artifact_routing must be a dict of type -> backends, got {type(raw).__name__}")
        table: dict[ArtifactType, list[str]] = {}
        for key, names in raw.items():
            try:
                kind = to_artifact_type(key)
            except ValueError as exc:
                raise ConfigurationError(f"artifact_routing: {exc}") from None
            names = [names] if isinstance(names, str) else list(names or [])
            table[kind] = [str(n) for n in names]
            for n in names:
                if n not in self._backend_names:
                    logger.warning(
                        "tracelet: artifact_routing sends %s to %r, which is not an active backend", kind.value, n
                    )
        return table

    def _artifact_backends(self) -> list[Backend]:
        return [b for b in self._backends() if b.implements("backend_log_artifact")]

    def _route(self, artifact: TraceletArtifact) -> tuple[list[str], dict[str, ArtifactResult]]:
        """Target backends, and results for those that failed to answer whether they accept it.

        A type named in `artifact_routing` goes exactly where the config says (the user's choice wins over
        the backends' preferences); any other type goes to every artifact backend that does not decline it.
        """
        backends = self._artifact_backends()
        if artifact.type in self.routing:
            names = {b.name for b in backends}
            return [n for n in dict.fromkeys(self.routing[artifact.type]) if n in names], {}
        targets: list[str] = []
        failed: dict[str, ArtifactResult] = {}
        for b in backends:
            try:
                accepted = b.call("backend_accepts_artifact", artifact=artifact)
            except Exception as exc:  # a backend's bug becomes its result, not the caller's exception
                failed[b.name] = _failed(b.name, f"backend_accepts_artifact: {type(exc).__name__}: {exc}")
                continue
            if accepted is not False:
                targets.append(b.name)
        return targets, failed

    # -- snapshots -----------------------------------------------------------------------------------------------
    def _staging_root(self) -> Path:
        with self._lock:
            if self._staging is None:
                if self._run_dir is not None:
                    self._staging = journal.staging_root(self._run_dir)
                    self._staging.mkdir(parents=True, exist_ok=True)
                else:  # no run folder (local store off): staged copies live until delivered or exit
                    self._staging = Path(tempfile.mkdtemp(prefix="tracelet-artifacts-"))
                    self._temporary_staging = True
                    weakref.finalize(self, shutil.rmtree, str(self._staging), True)
            return self._staging

    def _snapshot(self, artifact: TraceletArtifact, staging: Path) -> TraceletArtifact:
        """A copy of `artifact` whose files and objects live under `staging` and belong to the run."""
        snap = TraceletArtifact(
            artifact.name,
            artifact.type,
            artifact.description,
            metadata=plain(artifact.metadata),
            references=[r.__class__(r.uri, r.size_bytes, r.description) for r in artifact.references],
            created_at=artifact.created_at,
        )
        staging.mkdir(parents=True)
        for f in artifact.files:
            rel = check_artifact_path(f.artifact_path)
            dst = staging / "files" / rel
            # A copy, not a hard link: a link shares the inode, so an in-place rewrite would change it.
            try:
                checksum, size = copy_hashing(f.local_path, dst)
            except OSError as exc:
                raise _snapshot_error(exc, f.local_path, artifact.name, staging) from exc
            if f.checksum and checksum != f.checksum:
                logger.info(
                    "tracelet: %s changed between add_file and log_artifact; logging it as it is now", f.local_path
                )
            snap.files.append(ArtifactFile(str(dst), rel, f.description, size, checksum))
        for o in artifact.objects:
            path = artifact.serialize_object(o, str(staging / "objects"))
            checksum, size = sha256_file(path)
            snap.objects.append(ArtifactObject(None, o.name, o.serializer, o.description, path, size, checksum))
        return snap

    def _backend_snapshots(
        self, artifact: TraceletArtifact, targets: list[str], staging: Path, failed: dict[str, ArtifactResult]
    ) -> dict[str, Any]:
        """Let each target save its own form of live objects now (e.g. a framework's model format)."""
        extras: dict[str, Any] = {}
        for b in self._backends():
            if b.name not in targets or not b.implements("backend_snapshot_artifact"):
                continue
            try:
                extra = b.call(
                    "backend_snapshot_artifact", artifact=artifact, staging_dir=str(staging / "backends" / b.name)
                )
            except Exception as exc:  # this backend's failure is its result; the others still get the artifact
                failed[b.name] = _failed(b.name, f"backend_snapshot_artifact: {type(exc).__name__}: {exc}")
                continue
            if extra is not None:
                extras[b.name] = plain(extra)
        return extras

    # -- delivery, on each backend's worker thread ---------------------------------------------------------------
    def deliver(self, backend: Backend, payload: dict[str, Any]) -> None:
        """Give one artifact event to one backend; never raises (the worker would redeliver the batch)."""
        if backend.name not in (payload.get("targets") or ()):
            return
        token = str(payload.get("token"))
        snapshot = (payload.get("snapshots") or {}).get(backend.name)

        def attempt() -> Any:
            artifact = TraceletArtifact.from_dict(payload["artifact"])  # fresh per attempt and per backend
            return backend.call("backend_log_artifact", artifact=artifact, snapshot=snapshot)

        try:
            # A ConfigurationError (permanent) fails at once; other errors are tried `attempts` times, never
            # past the stop deadline this worker thread has bound.
            out = backoff.retry(attempt, attempts=self.attempts, start=self.backoff)
        except Exception as error:
            self._record_error(backend.name, "log_artifact", error)
            later = self._remember_failed(backend.name, token, error)
            self._finish(token, backend.name, None, error, later)
            return
        with self._lock:  # a replay from the journal that went through: nothing is left to sync
            self._failed.get(backend.name, {}).pop(token, None)
        self._finish(token, backend.name, out, None)

    def _remember_failed(self, name: str, token: str, error: BaseException) -> str:
        """Keep the token of an artifact `name` failed for a later sync; returns what the result should add.

        Not for a ConfigurationError (the backend refuses it for good: sending it again cannot help), nor for
        the local store (it is where a sync reads from), nor without a run folder (nothing is kept)."""
        if self._run_dir is None or name == "local" or backoff.is_permanent(error) or token in ("", "None"):
            return ""
        with self._lock:
            self._failed.setdefault(name, {})[token] = None
        return f"; {self._sync_hint()}"

    def _sync_hint(self) -> str:
        """What delivers an artifact a backend did not take, later ("" without a run folder)."""
        if self._run_dir is None:
            return ""
        return f"the run's journal keeps it: `tracelet sync {self._run_dir.name}` delivers it later"

    def failed_artifacts(self) -> dict[str, list[str]]:
        """Backend -> tokens of the artifacts it did not take for a transient reason (for run.json at stop)."""
        with self._lock:
            return {name: list(tokens) for name, tokens in self._failed.items() if tokens}

    def _finish(self, token: str, name: str, out: Any, error: BaseException | None, later: str = "") -> None:
        with self._lock:
            pending = self._results.get(token)
            result = pending.pop(name, None) if pending is not None else None
            if result is not None and error is not None:
                self._keep.add(token)  # a later sync sends it from the snapshot
            elif result is not None and name == "local" and token in self._stored and getattr(out, "version", None):
                self._stored[token] = (self._stored[token][0], str(out.version))
            complete = pending is not None and not pending
            if complete:
                del self._results[token]
            cleanup = (
                self._staging is not None
                and complete
                and (
                    self._temporary_staging or (self._stored.get(token, ("", ""))[1] != "" and token not in self._keep)
                )
            )
            stored = self._stored.pop(token, None) if complete else None
            if complete:
                self._keep.discard(token)
        if cleanup:  # before the result is final, so a waiter never sees a half-removed snapshot
            assert self._staging is not None
            if stored is not None and not self._temporary_staging:
                self._mark_stored(token, stored)
            shutil.rmtree(self._staging / token, ignore_errors=True)
        if result is not None:  # None: a replay from the journal, or a backend outside the targets
            if error is not None:
                result.status, result.error = FAILED, f"{type(error).__name__}: {error}{later}"
            else:
                _fill(result, out)
                result.status = OK
            result._done.set()

    def _mark_stored(self, token: str, stored: tuple[str, str]) -> None:
        """Say where the local store holds the artifact whose snapshot goes (read by `stored_copy`)."""
        assert self._staging is not None
        marker = self._staging / f"{token}{STORED_SUFFIX}"
        marker.write_text(json.dumps({"name": stored[0], "version": stored[1]}), encoding="utf-8")

    def _wait_for(self, name: str, timeout: float = READ_WAIT) -> None:
        """Let `name` store what was logged before reading from it (read-your-writes)."""
        with self._lock:
            pending = [r[name] for r in self._results.values() if name in r]
        deadline = time.monotonic() + timeout
        for r in pending:
            if not r.wait(max(deadline - time.monotonic(), 0)):
                return

    # -- reading -------------------------------------------------------------------------------------------------
    def _readers(self, hook: str, backend: str | None) -> list[Backend]:
        active = self._backends()
        if backend is not None:
            chosen = [b for b in active if b.name == backend]
            if not chosen:
                raise ConfigurationError(f"backend {backend!r} is not active in this experiment")
            if not chosen[0].implements(hook):
                raise ConfigurationError(f"backend {backend!r} cannot read artifacts ({hook} not implemented)")
            return chosen
        readers = [b for b in active if b.implements(hook)]
        return sorted(readers, key=lambda b: b.name != "local")  # the local store first, then in order

    def _read(self, hook: str, backend: str | None, **kwargs: Any) -> Any:
        for b in self._readers(hook, backend):
            self._wait_for(b.name)
            try:
                found = b.call(hook, **kwargs)
            except Exception as exc:
                if backend is not None:
                    raise BackendError(
                        f"backend {b.name!r} {hook} failed: {type(exc).__name__}: {exc}", b.name
                    ) from exc
                logger.warning("tracelet: backend %r %s failed: %s", b.name, hook, exc)
                continue
            if found is not None:
                return found
        return None

    def get(
        self, name: str, version: str = "latest", backend: str | None = None, load: bool = False
    ) -> TraceletArtifact | None:
        """Read an artifact back; json/yaml objects are loaded, pickle/torch ones only with `load=True`."""
        version = f"v{version}" if isinstance(version, int) else str(version)
        found = self._read("backend_get_artifact", backend, name=name, version=version)
        if found is None:
            return None
        artifact = found if isinstance(found, TraceletArtifact) else TraceletArtifact.from_dict(found)
        return artifact.load_objects(unsafe=load)

    def list(self, type_filter: ArtifactType | str | None = None, backend: str | None = None) -> list[TraceletArtifact]:
        """Every artifact version a backend holds (the local store first), optionally of one type."""
        kind = to_artifact_type(type_filter) if type_filter is not None else None
        found = self._read("backend_list_artifacts", backend, type_filter=kind)
        out = [a if isinstance(a, TraceletArtifact) else TraceletArtifact.from_dict(a) for a in (found or [])]
        return [a for a in out if kind is None or a.type is kind]


_SQLITE_SIDECARS = ("-journal", "-wal", "-shm")


def _local_path(value: Any) -> Path | None:
    """The local path a backend's run detail names (an absolute path, a file: or sqlite: URI), else None."""
    if not isinstance(value, str) or not value or "\n" in value:
        return None
    if value.startswith("file:"):
        text = unquote(urlparse(value).path)
    elif value.startswith("sqlite:///"):
        text = value[len("sqlite:///") :].split("?", 1)[0]  # sqlite:////abs/db -> /abs/db; sqlite:///db: relative
        if text and not os.path.isabs(text):
            text = os.path.abspath(text)
    else:
        text = value
    if not text or not os.path.isabs(text):
        return None  # a name or a relative path: nothing that can be told apart from the user's own files
    return Path(text).resolve()


_SNAPSHOT_HINTS = {
    errno.ENOSPC: "free space there, or point TRACELET_DIR at a bigger disk; add_reference(uri) records a file "
    "too big to copy without copying it",
    errno.ENOENT: "it was removed or renamed after add_file",
    errno.EACCES: "the file is not readable by this process",
}


STORED_SUFFIX = ".stored"


def stored_copy(run_dir: str | os.PathLike[str], token: str) -> TraceletArtifact | None:
    """The local store's version of the artifact event `token` whose snapshot was removed (see the module
    docstring), or None when the snapshot is the run's copy (or the marker or the version is gone)."""
    from tracelet.core.artifacts import folder

    marker = journal.staging_root(run_dir) / f"{token}{STORED_SUFFIX}"
    try:
        where = json.loads(marker.read_text(encoding="utf-8"))
        return folder.get(journal.artifacts_root(run_dir), str(where["name"]), str(where["version"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _snapshot_error(exc: OSError, source: str, name: str, staging: Path) -> OSError:
    """The same kind of OSError (FileNotFoundError, PermissionError, ...), saying which artifact and what to do."""
    hint = _SNAPSHOT_HINTS.get(exc.errno or 0, "nothing was logged")
    message = f"cannot copy a file of artifact {name!r} into the run ({staging.parent}): {exc.strerror or exc}; {hint}"
    return OSError(exc.errno, message, source) if exc.errno else OSError(message)


def _failed(backend: str, error: str) -> ArtifactResult:
    result = ArtifactResult(backend=backend, status=FAILED, error=error)
    result._done.set()
    return result


def _fill(result: ArtifactResult, out: Any) -> None:
    """Copy what a backend's hook returned (an ArtifactResult, a dict, or None) into the pending result."""
    if isinstance(out, ArtifactResult):
        out = out.to_dict()
    if isinstance(out, dict):
        result.uri = str(out.get("uri") or "")
        result.version = str(out.get("version") or "") or result.version  # a backend without versions: the core's
        result.metadata = dict(out.get("metadata") or {})
