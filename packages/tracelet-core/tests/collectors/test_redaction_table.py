"""Redaction, table-driven: secrets are masked wherever they appear; the names ML configs are full of that only
look like secrets (false friends) stay untouched, as do their values."""

from __future__ import annotations

import pytest

from tracelet.core.contract.redact import MASK, is_secret_name, redact_argv, redact_mapping, redact_text

# (name, value, masked?) -- the value is what a config / params / environment mapping holds under the name.
MAPPING_CASES = [
    # secrets
    ("hf_token", "abc123", True),
    ("WANDB_API_KEY", "0123456789abcdef", True),
    ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI", True),
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", True),
    ("MLFLOW_TRACKING_PASSWORD", "hunter2", True),
    ("db_password", "pw", True),
    ("clientSecret", "s", True),
    ("accessToken", "t", True),
    ("use_auth_token", "hf-xyz", True),
    ("github_token_value", "x", True),
    ("db_pwd", "pw", True),
    ("basic_auth", "user:pw", True),
    ("private_key", "-----BEGIN", True),
    ("secret", "s", True),
    ("token", 12345, True),
    # false friends: stay as they are
    ("use_cls_token", True, False),
    ("use_cls_token", "yes", False),
    ("max_tokens", 512, False),
    ("max_new_tokens", 64, False),
    ("tokenizer_name", "bert-base-uncased", False),
    ("password_min_length", 12, False),
    ("pad_token", "[PAD]", False),
    ("eos_token", "</s>", False),
    ("num_tokens", 1000, False),
    ("tokens_per_second", 3.5, False),
    ("author", "Ada", False),
    ("auth_type", "oauth", False),
    ("sort_key", "loss", False),
    ("keyword", "x", False),
    ("PWD", "/home/me/project", False),
    ("token_budget", 4096, False),
    ("use_auth", True, False),  # a boolean says nothing secret
]


@pytest.mark.parametrize(("name", "value", "masked"), MAPPING_CASES, ids=[f"{c[0]}={c[1]}" for c in MAPPING_CASES])
def test_mapping_values(name: str, value: object, masked: bool) -> None:
    out = redact_mapping({name: value})
    assert out == {name: MASK if masked else value}
    if not isinstance(value, bool):  # booleans are kept whatever the name
        assert is_secret_name(name) is masked


def test_table_is_large_and_half_false_friends() -> None:
    friends = [c for c in MAPPING_CASES if not c[2]]
    assert len(MAPPING_CASES) >= 25 and len(friends) * 2 >= len(MAPPING_CASES)


TEXT_CASES = [
    ("https://bob:ghp_topsecret@github.com/o/r.git", f"https://{MASK}@github.com/o/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("http://h/x?token=abc&page=2", f"http://h/x?token={MASK}&page=2"),
    ("http://h/x?max_tokens=3&sort_key=loss", "http://h/x?max_tokens=3&sort_key=loss"),
    ("export HF_TOKEN=abc123", f"export HF_TOKEN={MASK}"),
    ("password: hunter2", f"password: {MASK}"),
    (
        "max_tokens=512 tokenizer_name=gpt2 password_min_length=8",
        "max_tokens=512 tokenizer_name=gpt2 password_min_length=8",
    ),
    ('token = os.environ["HF_TOKEN"]', 'token = os.environ["HF_TOKEN"]'),
    ("epoch 3: loss=0.25 acc=0.9", "epoch 3: loss=0.25 acc=0.9"),
    ("key hf_" + "b" * 30, f"key {MASK}"),
    ("plain text, nothing secret", "plain text, nothing secret"),
]


@pytest.mark.parametrize(("text", "expected"), TEXT_CASES)
def test_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


ARGV_CASES = [
    (["train.py", "--api-key", "s3cr3t"], ["train.py", "--api-key", MASK]),
    (["train.py", "--token=abc", "--lr", "0.1"], ["train.py", f"--token={MASK}", "--lr", "0.1"]),
    (["train.py", "PASSWORD=x"], ["train.py", f"PASSWORD={MASK}"]),
    (["train.py", "--max-tokens", "512", "--use-cls-token"], ["train.py", "--max-tokens", "512", "--use-cls-token"]),
    (["train.py", "--tokenizer-name", "gpt2"], ["train.py", "--tokenizer-name", "gpt2"]),
    (["train.py", "--password-min-length", "8"], ["train.py", "--password-min-length", "8"]),
]


@pytest.mark.parametrize(("argv", "expected"), ARGV_CASES)
def test_argv(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected
