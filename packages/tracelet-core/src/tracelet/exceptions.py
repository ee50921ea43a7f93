"""Exceptions raised by Tracelet."""

from __future__ import annotations


class TraceletException(Exception):
    """Base class of every error Tracelet raises."""


class ConfigurationError(TraceletException):
    """Invalid settings, an unknown backend, or a plugin that cannot be loaded."""


class BackendError(TraceletException):
    """A backend failed to start, deliver or end a run."""

    def __init__(self, message: str, backend: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
