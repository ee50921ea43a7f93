"""Decide, before wandb is imported, whether a W&B run can start without a prompt.

`wandb.init` online without credentials asks for an API key on a terminal, or fails after its init timeout
elsewhere. Tracelet checks first, in well under a second and without importing wandb (which alone takes
about a second and starts W&B's service): the mode W&B would use, and whether any of W&B's own credential
sources holds a key for its host. The sources, in W&B's order: WANDB_API_KEY / WANDB_IDENTITY_TOKEN_FILE,
the netrc file (NETRC, else ~/.netrc or ~/_netrc) entry for the host, an `api_key` in W&B's settings files,
and credentials already set in this process (`wandb.login(key=...)`), which is looked at only when wandb is
imported already.
"""

from __future__ import annotations

import configparser
import netrc
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracelet.plugin import ConfigurationError

DEFAULT_BASE_URL = "https://api.wandb.ai"
OFFLINE_MODES = {"offline", "dryrun"}
ONLINE_MODES = {"online", "run", "shared"}
MODES = OFFLINE_MODES | ONLINE_MODES | {"disabled"}
_TRUE = {"1", "true", "yes", "on"}


def _settings_files(config: dict[str, Any]) -> list[Path]:
    """W&B's settings files, the most specific last: global (WANDB_CONFIG_DIR), then the workspace's."""
    config_dir = os.environ.get("WANDB_CONFIG_DIR") or str(Path("~/.config/wandb").expanduser())
    root = config.get("dir") or os.environ.get("WANDB_DIR") or os.getcwd()
    return [Path(config_dir) / "settings", Path(root) / "wandb" / "settings"]


def _from_settings_files(config: dict[str, Any], key: str) -> str | None:
    value = None
    for path in _settings_files(config):
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if parser.has_option("default", key):
            value = parser.get("default", key).strip() or value
    return value


def resolve_mode(config: dict[str, Any]) -> str:
    """The mode W&B will run in: the config's `mode`, else WANDB_MODE (WANDB_DISABLED), else the settings files,
    else "online". Raises ConfigurationError for a mode W&B does not know."""
    mode = config.get("mode") or os.environ.get("WANDB_MODE")
    if not mode and os.environ.get("WANDB_DISABLED", "").strip().lower() in _TRUE:
        mode = "disabled"
    if not mode:
        mode = _from_settings_files(config, "mode")
    mode = str(mode or "online").strip().lower()
    if mode not in MODES:
        raise ConfigurationError(
            f"tracelet-wandb: unknown W&B mode {mode!r}; use one of 'online', 'offline' or 'disabled'"
        )
    return mode


def base_url(config: dict[str, Any]) -> str:
    return str(
        config.get("base_url")
        or os.environ.get("WANDB_BASE_URL")
        or _from_settings_files(config, "base_url")
        or DEFAULT_BASE_URL
    ).rstrip("/")


def _netrc_has_key(url: str) -> bool:
    path_env = os.environ.get("NETRC")
    candidates = (
        [Path(path_env).expanduser()] if path_env else [Path("~/.netrc").expanduser(), Path("~/_netrc").expanduser()]
    )
    host = urlsplit(url).netloc
    if not host:
        return False
    for path in candidates:
        if not path.exists():
            continue
        try:
            found = netrc.netrc(str(path)).authenticators(host)
        except (netrc.NetrcParseError, OSError):
            return False  # W&B would not read it either
        return bool(found and found[2])
    return False


def _session_has_key(url: str) -> bool:
    """Credentials given to wandb in this process (wandb.login(key=...)); only when wandb is imported."""
    if "wandb" not in sys.modules:
        return False
    try:
        from wandb.sdk.lib import wbauth

        return wbauth.session_credentials(host=url) is not None
    except Exception:  # an internal module that moved: fall back to the other sources
        return False


def has_credentials(config: dict[str, Any]) -> bool:
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    url = base_url(config)
    return _netrc_has_key(url) or bool(_from_settings_files(config, "api_key")) or _session_has_key(url)


def check(config: dict[str, Any]) -> str:
    """The mode to run in; raises ConfigurationError at once when W&B is online and has no API key."""
    mode = resolve_mode(config)
    if mode in ONLINE_MODES and not has_credentials(config):
        raise ConfigurationError(
            f"tracelet-wandb: W&B is online but no API key was found for {base_url(config)}. Either log in "
            "(run `wandb login`, or set WANDB_API_KEY), or log offline with config={'wandb': {'mode': 'offline'}} "
            "(or WANDB_MODE=offline) and upload the run later with `wandb sync`"
        )
    return mode
