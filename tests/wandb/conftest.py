"""The W&B tests that need another tracker too: W&B runs offline inside each test's folder, nothing reaches a
server, nothing is read from the developer's W&B settings or credentials (`offline_wandb`, autouse, from
tracelet_testsupport.wandb). The `mlflow_server` fixture is in the root conftest.py."""

from tracelet_testsupport.wandb import offline_wandb  # noqa: F401  (a fixture: pytest finds it by its name here)
