"""Exceptions raised by Tracelet."""

from __future__ import annotations


class TraceletException(Exception):
    """Base class of every error Tracelet raises."""


class ConfigurationError(TraceletException, ValueError):
    """Invalid settings, an unknown backend, or a plugin that cannot be loaded.

    Also a ValueError (a bad value, in meaning), so ``except ValueError:`` around a backend choice catches it."""


class BackendError(TraceletException):
    """A backend failed to start, deliver or end a run."""

    def __init__(self, message: str, backend: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
