"""Tracelet's ClearML backend. Importing this package does not import clearml (whose import alone patches
argparse): that happens on the backend's worker thread when a run starts."""

__version__ = "0.1.0"

__all__ = ["__version__"]
