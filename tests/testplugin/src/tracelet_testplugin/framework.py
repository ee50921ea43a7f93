"""A framework plugin that records instrumentation and describes `dict` models."""

from __future__ import annotations

from typing import Any

from tracelet.plugin import hookimpl

EVENTS: list[tuple[str, str]] = []


class TestFramework:
    @hookimpl
    def framework_instrument(self, experiment: Any) -> None:
        EVENTS.append(("instrument", experiment.id))

    @hookimpl
    def framework_uninstrument(self, experiment: Any) -> None:
        EVENTS.append(("uninstrument", experiment.id))

    @hookimpl
    def framework_describe_model(self, model: Any) -> dict[str, Any] | None:
        if isinstance(model, dict) and model.get("kind") == "test-model":
            return {"layers": len(model.get("layers", []))}
        return None
