"""Secrets never leave the process: redaction applied before any backend sees run data."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "***"

# Names whose values are secrets (env vars, config keys, CLI options).
_SECRET_NAME = re.compile(
    r"(token|secret|passw(or)?d|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credential|auth(?!or)|session[_-]?key)",
    re.IGNORECASE,
)
# Credentials embedded in URLs: scheme://user:password@host or scheme://token@host.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# Well-known token shapes, wherever they appear.
_TOKEN_SHAPES = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{20,}"
    r"|AKIA[0-9A-Z]{16}|xox[abpr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,})\b"
)
# Query-string secrets: ?token=...&api_key=...
_QUERY_SECRET = re.compile(r"(?P<key>[?&][^=&\s]*(?:token|key|secret|password|sig)[^=&\s]*=)[^&\s]+", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str) -> str:
    """Mask URL credentials, secret query parameters and known token shapes inside a string."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
    return _TOKEN_SHAPES.sub(MASK, text)


def redact_value(name: str, value: Any) -> Any:
    if is_secret_name(name) and value not in (None, "", False):
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
