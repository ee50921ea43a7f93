"""Secrets never leave the process: redaction applied before any backend (or the local store) sees run data.

What is masked (replaced by ``***``):

- the value of a *secret-named* key in a mapping, a ``--option value`` / ``--option=value`` / ``NAME=value``
  command-line argument, a URL query parameter, or a ``name = value`` / ``name: value`` pair inside text;
- credentials embedded in URLs (``scheme://user:password@host``, ``scheme://token@host``);
- well-known token shapes anywhere in text (GitHub, GitLab, Hugging Face, OpenAI-style, AWS access key ids,
  Slack).

A name is secret-named when, split into words (``_ - . space`` and camelCase boundaries), its *last* word is a
secret noun (``token``, ``secret``, ``password``, ``passwd``, ``passphrase``, ``credential(s)``, ``auth``,
``authorization``, ``cookie``, ``apikey``...) or ``key`` after ``api``/``secret``/``access``/``private``/...;
a trailing ``id`` / ``value`` after such a word still counts (``AWS_ACCESS_KEY_ID``, ``token_value``).
So ``hf_token``, ``WANDB_API_KEY``, ``clientSecret`` and ``db_password`` are secret, while the false friends
that ML configs are full of stay untouched: ``max_tokens`` (plural), ``tokenizer_name`` (another word),
``password_min_length`` (the secret word is not last), ``use_cls_token`` / ``pad_token`` / ``eos_token``
(a vocabulary token, named by its role), ``author``, and the ``PWD`` environment variable (the working folder).
Booleans are never masked (``use_auth_token=True`` says nothing secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"

# Nouns that name a secret when they end a name.
_SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "passcode",
        "passkey",
        "pwd",
        "credential",
        "credentials",
        "creds",
        "auth",
        "authorization",
        "cookie",
        "apikey",
        "privatekey",
        "sig",
        "signature",
        "dsn",
    }
)
# `key` is a secret only after one of these (api_key, secret_key, ...); a bare `key` or `sort_key` is not.
_KEY_QUALIFIERS = frozenset(
    {
        "api",
        "secret",
        "access",
        "private",
        "session",
        "encryption",
        "signing",
        "master",
        "client",
        "license",
        "account",
        "service",
        "sas",
        "storage",
    }
)
# Words that may follow the secret noun without changing what the value is (AWS_ACCESS_KEY_ID, token_value).
_TRAILING = frozenset({"id", "value", "val", "str", "string", "b64", "base64", "raw", "plain", "plaintext"})
# A `token` named by its role in a vocabulary is a piece of text, not a credential (pad_token, use_cls_token);
# the role is the word right before it, so `use_auth_token` stays secret.
_VOCAB_TOKEN_ROLES = frozenset(
    {
        "cls",
        "pad",
        "eos",
        "bos",
        "sep",
        "unk",
        "mask",
        "special",
        "start",
        "end",
        "stop",
        "image",
        "vision",
        "audio",
        "video",
        "text",
        "begin",
        "additional",
        "decoder",
        "encoder",
        "sot",
        "eot",
        "newline",
        "space",
        "boundary",
        "placeholder",
        "fill",
        "ignore",
        "padding",
        "first",
        "last",
        "next",
        "prev",
    }
)

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


def is_secret_name(name: str) -> bool:
    """Whether a key, option or variable called `name` holds a secret (see the module docstring)."""
    words = _words(name.lstrip("-"))
    while len(words) > 1 and words[-1] in _TRAILING:
        words.pop()
    if not words:
        return False
    last = words[-1]
    before = words[:-1]
    if last == "key":
        return bool(before) and before[-1] in _KEY_QUALIFIERS
    if last == "pwd":
        return bool(before)  # `PWD` alone is the shell's working folder
    if last == "token":
        return not (before and before[-1] in _VOCAB_TOKEN_ROLES)
    if last in ("sig", "signature", "dsn"):
        return True
    return last in _SECRET_WORDS


# Credentials embedded in URLs: scheme://user:password@host or scheme://token@host.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# Well-known token shapes, wherever they appear.
_TOKEN_SHAPES = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,})\b"
)
# Query-string parameters: ?name=value&... (the name decides).
_QUERY_PARAM = re.compile(r"(?P<key>[?&](?P<name>[^=&\s#]+)=)(?P<value>[^&\s#]+)")
# `name=value` / `name: value` pairs in free text (console lines, argv items); the name decides.
_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>[ \t]*[=:][ \t]*)(?P<quote>[\"']?)(?P<value>[^\s\"',;()\[\]{}]+)"
)


def _mask_query(m: re.Match[str]) -> str:
    return f"{m['key']}{MASK}" if is_secret_name(m["name"]) else m[0]


def _mask_assignment(m: re.Match[str]) -> str:
    if not is_secret_name(m["name"]) or m["value"] == MASK:
        return m[0]
    rest = m.string[m.end() : m.end() + 1]
    if rest in ("(", "["):  # `token = os.environ["X"]`: an expression, not a literal secret
        return m[0]
    if "://" in m["value"] or m["sep"].strip() == ":" and m["value"].startswith("//"):
        return m[0]  # a URL (`url: https://...`): its credentials are handled by the URL rule
    return f"{m['name']}{m['sep']}{m['quote']}{MASK}"


# Cheap tests that let most text (console lines, argv items) skip the expensive patterns: a secret-named pair
# needs one of these words somewhere, a token shape one of these prefixes.
# (Substring tests on the lowered text: an IGNORECASE alternation regex is ~50x slower in CPython.)
_NAME_HINTS = ("token", "secret", "pass", "pwd", "key", "auth", "cred", "cookie", "sig", "dsn")


def _may_name_a_secret(text: str) -> bool:
    low = text.lower()
    for hint in _NAME_HINTS:
        if hint in low:
            return True
    return False


def _may_hold_a_token(text: str) -> bool:
    return "gh" in text or "sk-" in text or "hf_" in text or "AKIA" in text or "xox" in text or "glpat-" in text


def redact_text(text: str) -> str:
    """Mask URL credentials, secret query parameters, secret `name=value` pairs and known token shapes."""
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    if ("=" in text or ":" in text) and _may_name_a_secret(text):
        text = _QUERY_PARAM.sub(_mask_query, text)
        text = _ASSIGNMENT.sub(_mask_assignment, text)
    if _may_hold_a_token(text):
        text = _TOKEN_SHAPES.sub(MASK, text)
    return text


def redact_value(name: str, value: Any) -> Any:
    """`value` as stored under `name`: masked when the name is secret (booleans and empty values excepted)."""
    if is_secret_name(name) and value is not None and value != "" and not isinstance(value, bool):
        return MASK
    return redact(value)


def redact(value: Any) -> Any:
    """Recursively redact strings, mappings (by key name too) and sequences."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def redact_mapping(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: redact_value(str(k), v) for k, v in mapping.items()}


def redact_argv(argv: Sequence[str]) -> list[str]:
    """Mask values of secret-named options (`--token X`, `--api-key=X`) and secrets inside arguments."""
    out: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if arg.startswith("-") and is_secret_name(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=" + MASK)
            else:
                out.append(arg)
                mask_next = True
            continue
        if "=" in arg and is_secret_name(arg.split("=", 1)[0]):
            out.append(arg.split("=", 1)[0] + "=" + MASK)
            continue
        out.append(redact_text(arg))
    return out
