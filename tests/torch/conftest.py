"""Fixtures for tracelet-torch: real torch, TensorBoard and Lightning on tiny CPU models."""

from tracelet_testsupport.torch import no_ambient_mlflow, sqlite_uri  # noqa: F401  (fixtures: pytest finds them by name here)
