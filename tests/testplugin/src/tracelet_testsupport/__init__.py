"""Helpers shared by Tracelet's test folders (the root `tests/` and each `packages/tracelet-*/tests/`).

Installed with the test plugins (tests/testplugin), so a test imports them like any package
(`from tracelet_testsupport.mlflow import MlflowServer`): no `sys.path` edits, no reliance on pytest's rootdir.
Each module imports only what its own tests need (`.mlflow` needs mlflow, `.torch` torch, ...); this package
imports nothing.
"""
