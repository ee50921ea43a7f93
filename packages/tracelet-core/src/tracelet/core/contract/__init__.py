"""The contract: what plugins see and what travels to them.

The records a backend receives, the experiment protocol framework and collector plugins are handed, plugin
discovery, the option parser, what a backend imports runs as, and the value and redaction rules every record
passes through. The hookspecs (`tracelet.core.plugins`, a spec path) are the contract's face;
`tracelet.plugin` is its public face for plugin authors. The contract imports neither the engine
(`tracelet.core.engine`) nor the run layer (`tracelet.core.run`) (tests/core/test_import_graph.py).
"""
