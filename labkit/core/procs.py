"""Core: the processes a lab starts (lab 09's service, lab 07's Flower federation), on
127.0.0.1 only, always stopped. `free_ports` draws distinct free ports, `spawn` starts a
command in its own process group with its output in a log, `wait_until` polls a readiness
check while watching the process, `tail` shows the end of a log in an error, and `stop`
ends each process group: SIGTERM, then SIGKILL after a grace period.

Example: ``p = spawn([...], log)``; ``wait_until(lambda: port_open(port), p, 60, log, "the
SuperLink")``; ... ``stop([p])``.
Leaves out: processes on other hosts, and restarts.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_ports(n: int = 1) -> list[int]:
    """``n`` distinct free ports on 127.0.0.1: every socket stays bound until all are drawn (one
    drawn, closed and drawn again can come back the same, and two servers then race for it)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def spawn(cmd: list, log: Path, **popen) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group, so `stop` reaches what it
    starts), stdout and stderr into the file ``log``; ``popen``: env, cwd."""
    with open(log, "w") as out:  # the child keeps its own handle
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen)


def tail(log: Path, n: int = 15) -> str:
    """The last ``n`` lines of ``log`` (or "(no log)")."""
    log = Path(log)
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:]) if log.exists() else "(no log)"


def wait_until(ready, proc: subprocess.Popen, seconds: float, log: Path, what: str, every: float = 0.2) -> None:
    """Poll ``ready()`` until it is true; RuntimeError if ``proc`` exits first, TimeoutError
    after ``seconds``, each with the end of ``log``. The caller stops the process."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting:\n{tail(log)}")
        if ready():
            return
        time.sleep(every)
    raise TimeoutError(f"{what} did not answer within {seconds:.0f} s:\n{tail(log)}")


def stop(procs, grace: float = 5.0) -> None:
    """SIGTERM each process's group, then SIGKILL every group still there after ``grace``
    seconds (all of them together); idempotent."""
    procs = [p for p in procs if p is not None]
    for p in procs:
        if p.poll() is None:
            _signal(p, signal.SIGTERM)
    end = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _signal(p, signal.SIGKILL)  # the group: whatever the process started too
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _signal(p: subprocess.Popen, sig) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
