"""Git state of the code a run comes from: commit, branch, dirty flag, remote (credentials masked), and the diff.

Switch: `ExperimentConfig.track_git` (setting `track_git`, `TRACELET_TRACK_GIT`).

- Run metadata `git`: `commit`, `branch`, `dirty`, `remote` (origin's URL, user/password/token masked),
  `root`. Read when the run starts with a few quick `git` calls in the current folder.
- Without a `git` binary (or when git refuses the folder), the same facts are read from the `.git` folder
  itself (HEAD, refs, packed-refs, config); `dirty` is then `None` (unknown) and there is no diff.
- Outside a repository: no `git` metadata, no error.
- When the tree is dirty, `git diff HEAD` (tracked files, staged and not) is logged once as the `code` artifact
  `git-diff` (file `diff.patch`), on the collector thread. It is capped at `DIFF_MAX_BYTES` (1 MiB): a longer
  diff is cut at a line end and ends with a `# tracelet: diff truncated ...` line. Known secret shapes in the
  diff (URL credentials, tokens, `password = "..."` literals) are masked like everything else Tracelet sends.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tracelet.collectors import takes_artifacts
from tracelet.core.contract.redact import redact_text
from tracelet.plugin import ArtifactType, TraceletArtifact, hookimpl

logger = logging.getLogger("tracelet")

DIFF_MAX_BYTES = 1 << 20
GIT_TIMEOUT = 5.0
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


def _git(*args: str, cwd: str | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(cwd: str | None = None) -> dict[str, Any]:
    """Commit, branch, remote (credentials masked), top folder and dirty flag; {} outside a repository."""
    status = _git("status", "--porcelain=v2", "--branch", "--untracked-files=no", cwd=cwd)
    if status is None:
        return read_git_dir(cwd)
    commit = branch = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2]
        elif line.startswith("# branch.head "):
            branch = line.split(" ", 2)[2]
        elif line and not line.startswith("#"):
            dirty = True
    if not commit or not _SHA.match(commit):  # "(initial)": a repository without a commit yet
        return {}
    remote = _git("config", "--get", "remote.origin.url", cwd=cwd)
    return {
        "commit": commit,
        "branch": "HEAD" if branch == "(detached)" else branch,
        "remote": redact_text(remote) if remote else None,
        "root": _git("rev-parse", "--show-toplevel", cwd=cwd),
        "dirty": dirty,
    }


def _find_git_dir(start: Path) -> tuple[Path, Path] | None:
    """(work tree, git folder) for the repository containing `start`, following a `.git` file (worktrees)."""
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return folder, dot
        if dot.is_file():
            text = dot.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:") :].strip())
                return folder, (target if target.is_absolute() else folder / target)
    return None


def _resolve_ref(git_dir: Path, common: Path, ref: str) -> str | None:
    for base in (git_dir, common):
        path = base / ref
        if path.is_file():
            value = path.read_text(encoding="utf-8", errors="replace").strip()
            return value if _SHA.match(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split(" ", 1)
            if len(parts) == 2 and parts[1].strip() == ref and _SHA.match(parts[0]):
                return parts[0]
    return None


def _origin_url(config: Path) -> str | None:
    if not config.is_file():
        return None
    section = None
    for raw in config.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif section in ('remote "origin"',) and "=" in line:
            key, _, value = line.partition("=")
            if key.strip().lower() == "url":
                return value.strip()
    return None


def read_git_dir(cwd: str | None = None) -> dict[str, Any]:
    """The same facts as `git_info`, read from the `.git` folder without a git binary; `dirty` is None."""
    try:
        found = _find_git_dir(Path(cwd or os.getcwd()).resolve())
        if found is None:
            return {}
        root, git_dir = found
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
        head = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
        if head.startswith("ref:"):
            ref = head[4:].strip()
            commit = _resolve_ref(git_dir, common, ref)
            branch = ref.removeprefix("refs/heads/")
        else:
            commit, branch = (head if _SHA.match(head) else None), "HEAD"
        if not commit:
            return {}
        remote = _origin_url(common / "config")
    except OSError:
        return {}
    return {
        "commit": commit,
        "branch": branch,
        "remote": redact_text(remote) if remote else None,
        "root": str(root),
        "dirty": None,
    }


def read_diff(cwd: str | None = None, max_bytes: int = DIFF_MAX_BYTES) -> tuple[str, int] | None:
    """`git diff HEAD` of tracked files, cut to `max_bytes` at a line end; (text, full size) or None."""
    try:
        proc = subprocess.Popen(
            ["git", "diff", "HEAD", "--no-color", "--no-ext-diff"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    except OSError:
        return None
    assert proc.stdout is not None
    data = proc.stdout.read(max_bytes + 1)
    total = len(data)
    while chunk := proc.stdout.read(1 << 16):  # count the rest without keeping it
        total += len(chunk)
    proc.stdout.close()
    if proc.wait(timeout=GIT_TIMEOUT) != 0:
        return None
    if total > max_bytes:
        data = data[:max_bytes]
        data = data[: data.rfind(b"\n") + 1] or data
        text = data.decode("utf-8", errors="replace")
        text += f"# tracelet: diff truncated: {len(data)} of {total} bytes kept (cap {max_bytes})\n"
    else:
        text = data.decode("utf-8", errors="replace")
    return text, total


class GitCollector:
    """Git metadata at start; the uncommitted diff as a `code` artifact when the tree is dirty."""

    config_switch = "track_git"

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    @hookimpl
    def collector_metadata(self) -> dict[str, Any]:
        self.info = git_info()
        return {"git": self.info} if self.info else {}

    @hookimpl
    def collector_begin(self, experiment: Any) -> None:
        if not self.info.get("dirty"):
            return
        if not takes_artifacts(experiment):
            return
        diff = read_diff(self.info.get("root"))
        if diff is None:
            return
        text, total = diff
        with tempfile.TemporaryDirectory(prefix="tracelet-git-") as tmp:
            path = Path(tmp) / "diff.patch"
            path.write_text("".join(redact_text(line) for line in text.splitlines(keepends=True)), encoding="utf-8")
            artifact = TraceletArtifact(
                "git-diff", ArtifactType.CODE, f"uncommitted changes against {self.info['commit']}"
            )
            artifact.add_file(str(path), "diff.patch")
            artifact.metadata.update(
                {"commit": self.info["commit"], "bytes": total, "truncated": total > DIFF_MAX_BYTES}
            )
            experiment.log_artifact(artifact)  # snapshotted before it returns: the temporary file may go
