"""Preparing ClearML for a Tracelet run: in-process reporting, offline mode, no update check.

ClearML's defaults are made for being the only thing in the process. These functions change only what a
Tracelet run needs, through ClearML's own configuration API, never by writing the user's `clearml.conf`:

- **In-process reporting.** On Linux ClearML forks a reporting subprocess by default
  (`sdk.development.report_use_subprocess`). As measured for this plugin's issue, `Task.close()` then stalled
  for minutes in half the runs (the fork inherits a `git` pipe) and each `report_scalar` cost about 2.6 ms. The override below
  sets the key to false for this process, on top of whatever configuration files ClearML reads.
- **Its own task in every process.** ClearML marks the process that opened a task in
  `CLEARML_PROC_MASTER_ID` (`<pid>:<task id>`), which every process started from it inherits; in a process with
  another pid's mark `Task.current_task()` and `Task.init` hand out the parent's task or a do-nothing stub. A
  Tracelet run is its own run wherever it starts (a script launched by another run, a spawned rank), so an
  inherited mark is set aside for the run and put back after it.
- **No update check.** ClearML asks its update server for new versions while detecting the repository. In
  offline mode Tracelet marks that check as done, so nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from typing import Any

logger = logging.getLogger("tracelet.clearml")

IN_PROCESS_OVERRIDE = {"sdk": {"development": {"report_use_subprocess": False}}}


def use_in_process_reporting() -> None:
    """Make ClearML report from threads of this process instead of a forked subprocess."""
    from clearml import Task
    from clearml.config import ConfigSDKWrapper, ConfigWrapper

    if not _lazy_value_loaded(Task, "_report_subprocess_enabled"):
        # Not read yet in this process: override the key (reloading ClearML's configuration costs about a
        # second, so only while it can still matter).
        ConfigWrapper.set_overrides(IN_PROCESS_OVERRIDE)
        ConfigSDKWrapper.clear_config_impl()  # it caches the "sdk" subtree of the configuration before the override
    # ClearML reads the key once, lazily, and caches it on the Task class: evaluate it now, while the override
    # holds (a vault applied later by an online session replaces overrides). If something in this process
    # evaluated it earlier, the cached value wins and the class attribute is the only switch left.
    if bool(Task._report_subprocess_enabled):
        # Deliberate: ClearML's lazy setting (a LazyEvalWrapper) replaced by the plain value it stands for.
        Task._report_subprocess_enabled = False  # type: ignore[assignment]


def _lazy_value_loaded(owner: type, name: str) -> bool:
    """Whether ClearML's lazily read setting `owner.name` was read already (or is a plain value by now)."""
    value = next((klass.__dict__[name] for klass in owner.__mro__ if name in klass.__dict__), None)
    try:
        return object.__getattribute__(value, "_wrapped") is not None
    except AttributeError:
        return True  # not a lazy wrapper: a plain value set before


def skip_update_check() -> None:
    """Mark ClearML's once-per-process update check as done (it would contact ClearML's update server)."""
    try:
        from clearml.utilities.check_updates import CheckPackageUpdates
    except ImportError:  # moved in another ClearML version: repository detection is off by default anyway
        return
    CheckPackageUpdates._package_version_checked = True


def detach_fork_hooks() -> None:
    """Stop ClearML's fork callbacks from acting in child processes (DataLoader workers, process pools).

    ClearML registers `os.register_at_fork` callbacks that, in a forked child, install signal and exception
    hooks, start reporting threads and patch `os._exit` to close the task from the child. Tracelet's run
    belongs to the parent; the callbacks do nothing while ClearML's fork patcher holds no task.
    """
    try:
        from clearml.binding.environ_bind import PatchOsFork
    except ImportError:  # moved in another ClearML version
        return
    PatchOsFork._current_task = None


def rearm_argparse_capture() -> None:
    """Let ClearML's argparse capture work in this run (`auto_connect_arg_parser`).

    ClearML patches argparse once, when clearml is imported; Tracelet takes that patch out again (right after
    `Task.init` of a run without the capture, and at every run's stop), so a later run asking for the capture
    would record nothing. ClearML's own patch function re-applies it: it does nothing while the patch is in
    place (its marker attribute on `ArgumentParser`), and `ProcessState` takes it out again at stop.
    """
    try:
        from clearml.binding.args import patch_argparse
    except ImportError:  # moved in another ClearML version: the capture then works in the first run only
        return
    patch_argparse()


def rearm_stream_capture() -> None:
    """Let ClearML's console capture work in this run (`auto_connect_streams`).

    ClearML wraps `sys.stdout` / `sys.stderr` once per process (`PrintPatchLogger.patched`) and later tasks only
    reconnect the wrappers it made then. Tracelet puts the streams back at a run's stop, so those wrappers are
    no longer installed and a later run would capture nothing: forget them, so `Task.init` wraps the streams as
    they are now. Left alone while a ClearML wrapper is still installed (a task the user opened).
    """
    try:
        from clearml.backend_interface.logger import PrintPatchLogger, StdStreamPatch
    except ImportError:  # moved in another ClearML version: the capture then works in the first run only
        return
    if not PrintPatchLogger.patched:
        return
    if any(isinstance(stream, PrintPatchLogger) for stream in (sys.stdout, sys.stderr)):
        return
    PrintPatchLogger.patched = False
    StdStreamPatch._stdout_proxy = None
    StdStreamPatch._stderr_proxy = None
    StdStreamPatch._stdout_original_write = None
    StdStreamPatch._stderr_original_write = None


def is_offline() -> bool:
    from clearml import Task

    return bool(Task.is_offline())


def set_offline(offline: bool) -> None:
    from clearml import Task

    Task.set_offline(offline_mode=offline)


OFFLINE_ENV = ("CLEARML_OFFLINE_MODE", "TRAINS_OFFLINE_MODE")  # Task.set_offline writes both variables


def offline_env() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in OFFLINE_ENV}


def restore_offline(offline: bool, env: dict[str, str | None]) -> None:
    """Switch ClearML's offline mode back to `offline` after a run, and its environment variable to `env`.

    Going online again makes ClearML re-open its API sessions; where ClearML has no configuration that
    raises after the switch itself is done, which is all a later online run needs, so it is only logged.
    """
    try:
        set_offline(offline)
    except Exception as exc:
        logger.debug("tracelet-clearml: ClearML's offline switch went back with: %s", exc)
    restore_env(env)


MASTER_ENV = ("CLEARML_PROC_MASTER_ID", "TRAINS_PROC_MASTER_ID")  # ClearML's "this pid owns task X" mark


def own_process() -> dict[str, str | None]:
    """Set aside a task-owner mark inherited from another process; return the variables as they were."""
    saved = {name: os.environ.get(name) for name in MASTER_ENV}
    pid = str(os.getpid())
    for name, value in saved.items():
        if value and value.split(":", 1)[0] != pid:
            os.environ.pop(name, None)
    return saved


def restore_env(saved: dict[str, str | None]) -> None:
    """Put environment variables back as `saved` recorded them (None: absent)."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def import_command(session_zip: str) -> str:
    """The shell command that uploads an offline session to the ClearML server configured where it runs.

    It names this run's interpreter (which has clearml installed), so it works as printed on this machine.
    """
    code = f"from clearml import Task; Task.import_offline_session({session_zip!r})"
    return f"{shlex.quote(sys.executable or 'python')} -c {shlex.quote(code)}"


def task_url(task: Any) -> str | None:
    try:
        return str(task.get_output_log_web_page())
    except Exception:  # an incomplete server configuration: the id is still reported
        return None
