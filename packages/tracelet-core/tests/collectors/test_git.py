"""Git metadata and the diff artifact, from real repositories made in temporary folders."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tracelet.collectors.git import DIFF_MAX_BYTES, git_info, read_git_dir
from tracelet.core.contract.redact import MASK
from tracelet_testsupport.collectors import run_json, stored

TOKEN = "ghp_" + "Z" * 36


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("lr = 0.1\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_clean_repo(repo: Path, monkeypatch: pytest.MonkeyPatch, experiment_factory) -> None:
    monkeypatch.chdir(repo)
    exp = experiment_factory(track_git=True).start()
    exp.stop()
    meta = run_json(exp)["metadata"]["git"]
    assert meta["commit"] == git(repo, "rev-parse", "HEAD")
    assert meta["branch"] == "main"
    assert meta["dirty"] is False
    assert meta["remote"] is None
    assert Path(meta["root"]).resolve() == repo.resolve()
    assert [a.name for a in stored(exp).artifacts()] == []  # a clean tree has no diff


def test_dirty_repo_logs_the_diff_as_a_code_artifact(
    repo: Path, monkeypatch: pytest.MonkeyPatch, experiment_factory
) -> None:
    (repo / "train.py").write_text("lr = 0.05\npassword = 'hunter2'\n")
    monkeypatch.chdir(repo)
    exp = experiment_factory(track_git=True).start()
    exp.stop()
    assert run_json(exp)["metadata"]["git"]["dirty"] is True
    (artifact,) = stored(exp).artifacts()
    assert artifact.name == "git-diff" and artifact.type.value == "code"
    (f,) = artifact.files
    text = Path(f.local_path).read_text()
    assert "-lr = 0.1" in text and "+lr = 0.05" in text
    assert "hunter2" not in text and f"password = '{MASK}" in text
    assert artifact.metadata["truncated"] is False


def test_a_large_diff_is_capped(repo: Path, monkeypatch: pytest.MonkeyPatch, experiment_factory) -> None:
    (repo / "train.py").write_text("".join(f"line {i} {'x' * 60}\n" for i in range(DIFF_MAX_BYTES // 40)))
    monkeypatch.chdir(repo)
    exp = experiment_factory(track_git=True).start()
    exp.stop()
    (artifact,) = stored(exp).artifacts()
    data = Path(artifact.files[0].local_path).read_bytes()
    assert len(data) <= DIFF_MAX_BYTES + 200
    assert data.rstrip().splitlines()[-1].startswith(b"# tracelet: diff truncated:")
    assert artifact.metadata["truncated"] is True and artifact.metadata["bytes"] > DIFF_MAX_BYTES


def test_remote_with_an_embedded_token_arrives_masked(
    repo: Path, monkeypatch: pytest.MonkeyPatch, experiment_factory
) -> None:
    git(repo, "remote", "add", "origin", f"https://bob:{TOKEN}@github.com/o/r.git")
    monkeypatch.chdir(repo)
    exp = experiment_factory(track_git=True, backend=["local", "recorder"]).start()
    exp.stop()
    from tracelet_testplugin.backends import record_for

    for meta in (run_json(exp)["metadata"], record_for(exp.id, "recorder")["run"].metadata):
        assert meta["git"]["remote"] == f"https://{MASK}@github.com/o/r.git"
        assert TOKEN not in repr(meta)
    assert TOKEN not in (Path(exp.run_dir) / "run.json").read_text()


def test_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, experiment_factory) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # do not find a repository above tmp
    exp = experiment_factory(track_git=True).start()
    exp.stop()
    assert "git" not in run_json(exp)["metadata"]
    assert stored(exp).artifacts() == []


def test_without_a_git_binary(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, experiment_factory) -> None:
    """No `git` on PATH: commit, branch and remote come from the .git folder; dirty is unknown; no diff."""
    git(repo, "remote", "add", "origin", f"https://{TOKEN}@github.com/o/r.git")
    git(repo, "checkout", "-q", "-b", "feature")
    git(repo, "pack-refs", "--all")  # the branch's commit is only in packed-refs now
    (repo / "train.py").write_text("changed\n")
    commit = git(repo, "rev-parse", "HEAD")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(repo / ".")
    with pytest.raises(FileNotFoundError):
        subprocess.run(["git", "--version"], check=False)
    exp = experiment_factory(track_git=True).start()
    exp.stop()
    meta = run_json(exp)["metadata"]["git"]
    assert meta == {
        "commit": commit,
        "branch": "feature",
        "remote": f"https://{MASK}@github.com/o/r.git",
        "root": str(repo.resolve()),
        "dirty": None,
    }
    assert stored(exp).artifacts() == []


def test_git_dir_reader_agrees_with_git(repo: Path) -> None:
    (repo / "sub").mkdir()
    with_git = git_info(str(repo / "sub"))
    without = read_git_dir(str(repo / "sub"))
    assert {k: without[k] for k in ("commit", "branch")} == {k: with_git[k] for k in ("commit", "branch")}
    assert os.path.samefile(without["root"], with_git["root"])
