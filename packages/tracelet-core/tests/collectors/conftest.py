"""Fixtures of the collector tests."""

from __future__ import annotations

from typing import Any

import pytest

from tracelet import Experiment
from tracelet_testsupport.collectors import make_experiment


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
