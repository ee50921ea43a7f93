"""Moved: collectors live in the package `tracelet.collectors` (one module per part); names kept importable."""

from __future__ import annotations

from tracelet.collectors.runner import CollectorRunner
from tracelet.collectors.system import SystemCollector

__all__ = ["CollectorRunner", "SystemCollector"]
