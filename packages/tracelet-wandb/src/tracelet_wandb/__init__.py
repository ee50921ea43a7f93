"""Tracelet's Weights & Biases backend. Importing this package does not import wandb (about a second, and it
starts W&B's service process): that happens when a run starts."""

__version__ = "0.1.0"

__all__ = ["__version__"]
