"""The guard that ties a child server's process group to the command that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from replenish.processes import is_dead, process_identity, start_guarded, stop_group

# A "server" that starts a child of its own, as `mlflow server` starts uvicorn.
SERVER_WITH_A_CHILD = [
    sys.executable,
    "-c",
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; "
    "time.sleep(300)']); time.sleep(300)",
]


def _group(pgid: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_stop_group_stops_the_server_and_its_children() -> None:
    guard = start_guarded(SERVER_WITH_A_CHILD)
    try:
        assert _wait_for(lambda: len(_group(guard.pid)) == 3, 20)  # guard, server, the server's child

        stop_group(guard, grace_seconds=5)

        assert _wait_for(lambda: not _group(guard.pid), 10)
    finally:
        os.killpg(guard.pid, signal.SIGKILL) if _group(guard.pid) else None


def test_the_group_dies_when_the_starting_process_is_killed() -> None:
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from replenish.processes import start_guarded; "
            f"guard = start_guarded({SERVER_WITH_A_CHILD!r}); print(guard.pid, flush=True); time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    guard_pid = None
    try:
        guard_pid = int(starter.stdout.readline())
        assert _wait_for(lambda: len(_group(guard_pid)) == 3, 20)

        starter.kill()  # SIGKILL: the starter runs no cleanup of its own
        starter.wait(timeout=10)

        assert _wait_for(lambda: not _group(guard_pid), 15), [p.cmdline() for p in _group(guard_pid)]
    finally:
        for group in (starter.pid, guard_pid):
            if group is not None and _group(group):
                os.killpg(group, signal.SIGKILL)
        starter.stdout.close()


def test_the_guard_exits_with_the_server_status() -> None:
    guard = start_guarded([sys.executable, "-c", "raise SystemExit(3)"])
    assert guard.wait(timeout=30) == 3


def test_a_process_identity_outlives_pid_reuse() -> None:
    assert not is_dead(process_identity())
    host, pid, started = process_identity().rsplit(":", 2)
    assert is_dead(f"{host}:{pid}:{float(started) - 100:.2f}")  # same PID, another process
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(finished.pid) if finished.poll() is None else f"{host}:{finished.pid}:0"
    finished.wait(timeout=30)
    assert is_dead(identity)
    assert not is_dead(f"another-host:{pid}:{started}")  # not ours to judge
    assert not is_dead("")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_guard_stops_its_group_on_a_stop_signal(signum: int) -> None:
    guard = start_guarded(SERVER_WITH_A_CHILD)
    try:
        assert _wait_for(lambda: len(_group(guard.pid)) == 3, 20)
        guard.send_signal(signum)
        guard.wait(timeout=20)
        assert _wait_for(lambda: not _group(guard.pid), 10)
    finally:
        if _group(guard.pid):
            os.killpg(guard.pid, signal.SIGKILL)
