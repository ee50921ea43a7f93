"""Every distribution is typed (PEP 561): its package holds a `py.typed` marker and its wheel carries it, so a
plugin author's `mypy --strict` reads Tracelet's and the plugins' annotations instead of treating them as Any."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tracelet_testsupport.packaging import distributions

REPO = Path(__file__).resolve().parents[2]
# distribution folder -> its import package
DISTRIBUTIONS = {
    REPO / "packages" / "tracelet-core": "tracelet",
    REPO / "packages" / "tracelet-mlflow": "tracelet_mlflow",
    REPO / "packages" / "tracelet-wandb": "tracelet_wandb",
    REPO / "packages" / "tracelet-clearml": "tracelet_clearml",
    REPO / "packages" / "tracelet-torch": "tracelet_torch",
    REPO / "examples" / "tracelet-backend-template": "tracelet_backend_template",
    REPO / "tests" / "testplugin": "tracelet_testplugin",
}


def test_every_distribution_of_the_repository_is_listed() -> None:
    found = {p.parent for p in REPO.glob("packages/*/pyproject.toml")}
    found |= {REPO / "examples" / "tracelet-backend-template", REPO / "tests" / "testplugin"}
    assert found == set(DISTRIBUTIONS)
    assert set(distributions(REPO).values()) == found  # what the session's wheelhouse builds


@pytest.mark.parametrize("folder", sorted(DISTRIBUTIONS), ids=lambda p: p.name)
def test_the_package_has_a_py_typed_marker(folder: Path) -> None:
    assert (folder / "src" / DISTRIBUTIONS[folder] / "py.typed").is_file()


@pytest.mark.slow
def test_every_wheel_carries_py_typed(wheelhouse: Path) -> None:
    for folder, package in DISTRIBUTIONS.items():
        (wheel,) = (wheelhouse / folder.name).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            assert f"{package}/py.typed" in archive.namelist(), f"{wheel.name} has no {package}/py.typed"
