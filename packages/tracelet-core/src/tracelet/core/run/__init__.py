"""The run layer: one run's settings and wiring, above the engine.

The experiment config, automagic and hyperparameter capture, each backend's slice of the config, and rank
awareness for multi-process jobs. The experiment (`tracelet.core.experiment`, a spec path) is its face. Nothing
in the engine or the contract imports this layer (tests/core/test_import_graph.py).
"""
