"""Metric, param and tag names MLflow refuses, mapped by one deterministic rule (documented in README.md).

MLflow accepts names of letters, digits, `_ - . / space` (and `:` except on Windows), that stay the same under
`posixpath.normpath` and are at most 250 characters long. The rule, applied only to names MLflow would refuse:

1. every character outside the portable set (Unicode letters and digits, `_ - . / space`) becomes `_`
   (`:` is mapped too, so a run logged on Linux and on Windows gets the same names);
2. the name is split on `/`; empty segments are dropped, and `.` / `..` segments become `_` / `__`;
3. an empty result becomes `_`;
4. a result over 250 characters is cut to 241 and suffixed with `-` and 8 hex digits of the SHA-1 of the
   original name, so long names that share a prefix stay distinct.

The rule is pure: the same name always maps to the same name, on every machine and in every run.
"""

from __future__ import annotations

import hashlib
import posixpath
import re

MAX_NAME_LENGTH = 250
_HASH_DIGITS = 8
_ALLOWED = re.compile(r"^[/\w.\- ]*$")
_BAD_CHAR = re.compile(r"[^/\w.\- ]")


def is_valid(name: str) -> bool:
    """Whether MLflow takes `name` as it is, on every platform."""
    if not name or len(name) > MAX_NAME_LENGTH or not _ALLOWED.match(name):
        return False
    norm = posixpath.normpath(name)
    return not (norm != name or norm == "." or norm.startswith("..") or norm.startswith("/"))


def map_name(name: str) -> str:
    """The name MLflow gets for `name`: `name` itself when valid, else the mapping described above."""
    if is_valid(name):
        return name
    text = _BAD_CHAR.sub("_", name)
    segments = [s for s in text.split("/") if s]
    segments = ["_" if s == "." else "__" if s == ".." else s for s in segments]
    out = "/".join(segments) or "_"
    if len(out) > MAX_NAME_LENGTH:
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]
        out = out[: MAX_NAME_LENGTH - _HASH_DIGITS - 1].rstrip("/") + "-" + digest
    return out


class NameMap:
    """Caches mapped names and collects the renames not yet recorded in the run (as tags)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._cache: dict[str, str] = {}
        self.pending: dict[str, str] = {}  # mapped name -> original, until recorded

    def __call__(self, name: str) -> str:
        mapped = self._cache.get(name)
        if mapped is None:
            mapped = map_name(name)
            self._cache[name] = mapped
            if mapped != name:
                self.pending[mapped] = name
        return mapped

    def record_tags(self) -> dict[str, str]:
        """Tags recording the pending renames: `tracelet.renamed.<kind>.<mapped>` = original name."""
        return {rename_tag(self.kind, mapped): original for mapped, original in self.pending.items()}


def rename_tag(kind: str, mapped: str) -> str:
    """The tag key that records the original of a mapped name."""
    return prefixed(f"tracelet.renamed.{kind}.", mapped)


def prefixed(prefix: str, mapped: str) -> str:
    """`prefix + mapped` (a valid name), cut and hashed like rule 4 when it gets too long."""
    key = prefix + mapped
    if len(key) > MAX_NAME_LENGTH:
        digest = hashlib.sha1(mapped.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]
        key = key[: MAX_NAME_LENGTH - _HASH_DIGITS - 1].rstrip("/") + "-" + digest
    return key
