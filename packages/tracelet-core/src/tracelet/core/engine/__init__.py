"""The engine: what delivers a run's data and keeps it safe, whatever the backends do.

Workers and their retry policy, the journal and the run folder, the owner lock, the run's lifecycle (exit,
signals, fork) and the collector runner. The orchestrator (`tracelet.core.orchestrator`, a spec path) is the
engine's face. Imports point down only: the engine uses the contract (`tracelet.core.contract`) and the
artifact model, never the run layer (`tracelet.core.run`) nor the built-in collectors
(tests/core/test_import_graph.py).
"""
