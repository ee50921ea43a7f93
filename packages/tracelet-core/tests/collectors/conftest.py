"""Fixtures of the collector tests."""

from __future__ import annotations

from typing import Any

import pytest
from collectors_helpers import make_experiment

from tracelet import Experiment


@pytest.fixture
def experiment_factory():
    made: list[Experiment] = []

    def factory(*args: Any, **kwargs: Any) -> Experiment:
        exp = make_experiment(*args, **kwargs)
        made.append(exp)
        return exp

    yield factory
    for exp in made:
        exp.stop()
