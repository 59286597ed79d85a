"""Child processes that never outlive the command that started them.

A server or worker started by ``replenish`` runs under a small guard (``python -m replenish.processes``):

* the guard leads a process group of its own, so the server and every process the server starts
  (uvicorn under ``mlflow server``, say) can be stopped together, by group;
* on Linux the guard gets SIGTERM when its parent dies, even by SIGKILL (``PR_SET_PDEATHSIG``); elsewhere
  it notices within a second that its parent is gone;
* on SIGTERM, SIGINT or SIGHUP, or when its parent is gone, it stops the whole group: SIGTERM, then
  SIGKILL after a grace period.

Its exit status is the server's, so a caller cannot tell it is there.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

import psutil

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
GROUP_STOP_SECONDS = 10  # how long the group may take to stop on SIGTERM before it is killed
PARENT_CHECK_SECONDS = 0.5


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the thread that started it ends."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_guarded(command: Sequence[str], env: Mapping[str, str] | None = None, **popen: object) -> subprocess.Popen:
    """Start ``command`` under the guard, in a process group of its own that dies with this process.

    Call it from a thread that lives as long as the child should: Linux sends the parent-death signal
    when the starting thread ends."""
    guard = [sys.executable, "-m", "replenish.processes", str(os.getpid()), "--", *command]
    return subprocess.Popen(
        guard, env=dict(env) if env is not None else None, start_new_session=True, preexec_fn=_die_with_parent, **popen
    )  # type: ignore[call-overload]


def stop_group(process: subprocess.Popen, grace_seconds: float = GROUP_STOP_SECONDS) -> int:
    """Stop a process started by ``start_guarded`` and everything it started: SIGTERM to the group,
    SIGKILL after ``grace_seconds``. Returns its exit status."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=grace_seconds + 2)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        return process.wait(timeout=10)


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _guard(parent: int, command: Sequence[str]) -> int:
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return 1
    stop_requested = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)
    server = subprocess.Popen(command)  # same process group as the guard
    while server.poll() is None and not stop_requested and os.getppid() == parent:
        try:
            server.wait(timeout=PARENT_CHECK_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    # Stop whatever is left of the group (the server's own children too), but not the guard itself yet.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    _signal_group(os.getpgrp(), signal.SIGTERM)
    deadline = time.monotonic() + GROUP_STOP_SECONDS
    while (server.poll() is None or _group_has_others()) and time.monotonic() < deadline:
        time.sleep(0.1)
    if server.poll() is None or _group_has_others():
        _signal_group(os.getpgrp(), signal.SIGKILL)  # ends the guard as well
    return 128 - server.returncode if server.returncode < 0 else server.returncode  # as a shell reports a signal


def _group_has_others() -> bool:
    """Whether any process but the guard is still in its group (Linux /proc; elsewhere assume so)."""
    if not os.path.isdir("/proc"):
        return True
    group, me = os.getpgrp(), os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def process_identity(pid: int | None = None) -> str:
    """Host, PID and start time: a PID alone may be reused by a later process."""
    process = psutil.Process(pid)
    return f"{socket.gethostname()}:{process.pid}:{process.create_time():.2f}"


def is_dead(identity: str) -> bool:
    """Whether the process an identity names has ended; False for another host's, which we cannot see."""
    try:
        host, pid, started = identity.rsplit(":", 2)
        pid_number, started_at = int(pid), float(started)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        return f"{psutil.Process(pid_number).create_time():.2f}" != f"{started_at:.2f}"
    except psutil.NoSuchProcess:
        return True


if __name__ == "__main__":
    separator = sys.argv.index("--")
    sys.exit(_guard(int(sys.argv[1]), sys.argv[separator + 1 :]))
