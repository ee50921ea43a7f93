"""Secrets in env, argv, configs and git remote URLs are masked before any backend sees run metadata."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tracelet
from tracelet.core.contract.redact import MASK, redact_argv, redact_text
from tracelet_testplugin.backends import record_for


def test_redact_text_masks_url_credentials_query_secrets_and_token_shapes() -> None:
    assert redact_text("https://user:pw@github.com/o/r.git") == f"https://{MASK}@github.com/o/r.git"
    assert redact_text("https://ghp_" + "a" * 36 + "@github.com/o/r") == f"https://{MASK}@github.com/o/r"
    assert redact_text("http://h/x?token=abc&page=2") == f"http://h/x?token={MASK}&page=2"
    assert MASK in redact_text("key hf_" + "b" * 30)
    assert redact_text("plain text, nothing secret") == "plain text, nothing secret"


def test_redact_argv() -> None:
    argv = ["train.py", "--api-key", "s3cr3t", "--token=abc", "--lr", "0.1", "PASSWORD=x"]
    assert redact_argv(argv) == ["train.py", "--api-key", MASK, f"--token={MASK}", "--lr", "0.1", f"PASSWORD={MASK}"]


def test_backends_see_redacted_env_argv_config_and_git_remote(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["git", "remote", "add", "origin", "https://bob:ghp_topsecret@github.com/o/r.git"], check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "c"], check=True
    )
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-value")
    monkeypatch.setattr(sys, "argv", ["train.py", "--hf-token", "hf-secret-value"])
    exp = tracelet.start_logging(
        "secrets", backend="recorder", config={"recorder_password": "pw-secret-value", "track_env": True}
    )
    run = record_for(exp.id, "recorder")["run"]
    tracelet.stop_logging()
    text = repr(run.metadata)
    for secret in ("ghp_topsecret", "wandb-secret-value", "hf-secret-value", "pw-secret-value"):
        assert secret not in text
    assert run.metadata["git"]["remote"] == f"https://{MASK}@github.com/o/r.git"
    assert len(run.metadata["git"]["commit"]) == 40
    assert "WANDB_API_KEY" not in run.metadata["environment"]["env"]  # only allowlisted variables are read
    assert run.config["password"] == "pw-secret-value"  # the backend's own connection settings stay usable
