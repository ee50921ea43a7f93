"""What a run records about itself, one collector plugin per part, each behind its `ExperimentConfig` switch.

| module        | entry point   | switch (`ExperimentConfig`) | setting / env var                |
| ------------- | ------------- | --------------------------- | -------------------------------- |
| `system`      | `system`      | `track_system_metrics`      | `track_system`, `metrics_interval` |
| `gpu`         | `gpu`         | `track_system_metrics`      | `track_system` (needs `tracelet[gpu]`) |
| `git`         | `git`         | `track_git`                 | `track_git`                      |
| `environment` | `environment` | `track_environment`         | `track_env`, `env_allowlist`     |
| `args`        | `args`        | `track_args`                | —                                |
| `stdout`      | `stdout`      | `track_stdout`              | `track_stdout` (off by default)  |

`checkpoints` is the `track_checkpoints` rule the artifact watcher and the torch capture apply, and
`track_metrics=False` turns `Experiment.log_metric` into a no-op. Each collector is published in the
`tracelet.collectors` entry-point group of the core distribution, exactly as a third-party one would be, and is
run by `runner.CollectorRunner` (hooks: `tracelet.core.plugins.CollectorPlugin`). Importing this package
imports none of the collectors.
"""

from typing import Any


def takes_artifacts(experiment: Any) -> bool:
    """Whether any of the run's backends stores artifacts. A collector's own artifacts (the environment, the
    git diff, the console log) are left out quietly when none does: the user did not log them, so the
    "no active backend takes artifact" warning a user's own `log_artifact` gets would only be noise."""
    backends = getattr(experiment, "backends", None)
    if backends is None:
        return True
    return any(b.implements("backend_log_artifact") for b in backends)
