"""Where a run executes: interpreter, platform, host, CPU/GPU model, installed packages, chosen env variables.

Switch: `ExperimentConfig.track_environment` (setting `track_env`, `TRACELET_TRACK_ENV`).

- Run metadata `environment`: `python`, `implementation`, `platform`, `hostname`, `user`, `pid`, `cwd`,
  `executable`, `cpu_model`, `cpu_count`, `gpu_models` (from the NVIDIA driver's /proc files, without loading
  NVML; empty when there is none), and `env`: environment variables **from an allowlist only**.
- The allowlist (`DEFAULT_ENV_ALLOWLIST`: CUDA_*, SLURM_*, the torch.distributed variables, thread counts,
  PYTHONHASHSEED, ...) is extended by the setting `env_allowlist` (`TRACELET_ENV_ALLOWLIST`, comma-separated
  names or shell-style patterns such as `MYPROJ_*`). The rest of the environment is never read into the run, so
  neither a backend nor the local store ever sees it; an allowed variable with a secret-like name is masked.
- Installed distributions (`name==version`, one a line, sorted: `requirements.txt` form) are logged once as the
  `config` artifact `environment` (file `requirements.txt`, beside `environment.json`: the metadata above, so
  every tracker holds it whatever it does with run metadata), on the collector thread; the setting
  `env_packages` (`TRACELET_ENV_PACKAGES`, default true) turns just this artifact off.
"""

from __future__ import annotations

import fnmatch
import getpass
import json
import os
import platform
import socket
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tracelet.plugin import (
    ArtifactType,
    InstrumentedExperiment,
    TraceletArtifact,
    hookimpl,
    redact_mapping,
    takes_artifacts,
)

DEFAULT_ENV_ALLOWLIST: tuple[str, ...] = (
    "CUDA_*",
    "NVIDIA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
    "NCCL_DEBUG",
    "NCCL_SOCKET_IFNAME",
    "NCCL_IB_DISABLE",
    "NCCL_P2P_DISABLE",
    "SLURM_*",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
    "PYTHONHASHSEED",
    "PYTHONOPTIMIZE",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
)


def allowed_env(patterns: Iterable[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of `environ` whose names match one of `patterns` (case-sensitive), secrets masked."""
    environ = os.environ if environ is None else environ
    pats = [p for p in patterns if p]
    chosen = {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in pats)}
    return redact_mapping(dict(sorted(chosen.items())))


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def gpu_models() -> list[str]:
    """NVIDIA GPU model names from the driver's /proc files (Linux); [] elsewhere or without a driver."""
    root = Path("/proc/driver/nvidia/gpus")
    models: list[str] = []
    try:
        for info in sorted(root.glob("*/information")):
            for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("Model:"):
                    models.append(line.split(":", 1)[1].strip())
    except OSError:
        pass
    return models


def environment_info(extra_allowlist: Iterable[str] = ()) -> dict[str, Any]:
    """The `environment` metadata (see the module docstring)."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry for this uid (containers)
        user = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "user": user,
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "executable": sys.executable,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu_models": gpu_models(),
        "env": allowed_env([*DEFAULT_ENV_ALLOWLIST, *extra_allowlist]),
    }


def _header(path: str) -> tuple[str | None, str | None]:
    """`Name` and `Version` from a METADATA / PKG-INFO file, reading only its header (descriptions can be long)."""
    name = version = None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if name and version:
                    break
    except OSError:
        pass
    return name, version


def installed_distributions() -> list[str]:
    """`name==version` of every distribution on sys.path, sorted by name, the first on sys.path winning.

    Reads the `*.dist-info` / `*.egg-info` folders' headers directly: parsing every METADATA in full, as
    `importlib.metadata` does, takes the GIL for about a second in a large environment.
    """
    seen: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip, or a folder that went away
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                path = os.path.join(entry, folder, "METADATA")
            elif folder.endswith(".egg-info"):
                path = os.path.join(entry, folder)
                path = path if os.path.isfile(path) else os.path.join(path, "PKG-INFO")
            else:
                continue
            name, version = _header(path)
            if name and version and name.lower() not in seen:
                seen[name.lower()] = f"{name}=={version}"
    return [seen[k] for k in sorted(seen)]


class EnvironmentCollector:
    """Environment metadata at start; the installed distributions as a `config` artifact."""

    config_switch = "track_environment"

    @hookimpl
    def collector_metadata(self, experiment: InstrumentedExperiment) -> dict[str, Any]:
        extra = getattr(experiment.settings, "env_allowlist", None) or ()
        return {"environment": environment_info(extra)}

    @hookimpl
    def collector_begin(self, experiment: InstrumentedExperiment) -> None:
        if not getattr(experiment.settings, "env_packages", True) or not takes_artifacts(experiment):
            return
        lines = installed_distributions()
        extra = getattr(experiment.settings, "env_allowlist", None) or ()
        with tempfile.TemporaryDirectory(prefix="tracelet-env-") as tmp:
            path = Path(tmp) / "requirements.txt"
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            # The facts of the run's metadata too: a tracker that shows run metadata in its own way (or not at
            # all) still holds where the run executed, beside what was installed there.
            facts = Path(tmp) / "environment.json"
            facts.write_text(json.dumps(environment_info(extra), indent=2, default=str) + "\n", encoding="utf-8")
            artifact = TraceletArtifact(
                "environment", ArtifactType.CONFIG, "where the run executed, and what was installed"
            )
            artifact.add_file(str(path), "requirements.txt")
            artifact.add_file(str(facts), "environment.json")
            artifact.metadata["distributions"] = len(lines)
            experiment.log_artifact(artifact)  # snapshotted before it returns
