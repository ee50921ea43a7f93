"""Tracelet's MLflow backend. Importing this package does not import mlflow: that happens when a run starts."""

__version__ = "0.1.0"

__all__ = ["__version__"]
