"""The one process manager (`labkit.core.procs`) that lab 09's service and lab 07's Flower
federation use: real processes, each stopped with everything it started."""
import subprocess
import sys
import time

import pytest

from labkit.core import procs

SLEEPER = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
           "print('up', flush=True); time.sleep(60)")


def test_free_ports_are_distinct_so_servers_never_race_for_one():
    ports = procs.free_ports(8)
    assert len(set(ports)) == 8 and all(1024 < p < 65536 for p in ports)
    assert not procs.port_open(ports[0])


def test_stop_ends_the_process_and_what_it_started(tmp_path):
    log = tmp_path / "sleeper.log"
    p = procs.spawn([sys.executable, "-c", SLEEPER], log)
    procs.wait_until(lambda: "up" in log.read_text(), p, 20, log, "the sleeper", every=0.05)
    child = subprocess.run(["pgrep", "-g", str(p.pid)], capture_output=True, text=True).stdout.split()
    assert len(child) == 2  # the process and the one it started share its group
    t0 = time.monotonic()
    procs.stop([p], grace=5)
    assert time.monotonic() - t0 < 5 and p.poll() is not None
    assert live_in_group(p.pid, within=3) == []  # the orphaned child too (a zombie left for init is not live)
    procs.stop([p])  # idempotent


def live_in_group(pgid: int, within: float) -> list[str]:
    end = time.monotonic() + within
    while True:
        rows = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(pgid)], capture_output=True, text=True).stdout
        live = [r for r in rows.splitlines() if r.split() and not r.split()[1].startswith("Z")]
        if not live or time.monotonic() > end:
            return live
        time.sleep(0.1)


def test_wait_until_names_the_process_and_shows_its_log(tmp_path):
    log = tmp_path / "fails.log"
    p = procs.spawn([sys.executable, "-c", "print('bad config'); raise SystemExit(3)"], log)
    with pytest.raises(RuntimeError, match=r"(?s)the server exited with code 3 while starting:.*bad config"):
        procs.wait_until(lambda: False, p, 20, log, "the server")
    p = procs.spawn([sys.executable, "-c", "import time; print('slow'); time.sleep(30)"], log)
    try:
        with pytest.raises(TimeoutError, match=r"(?s)the server did not answer within 0 s"):
            procs.wait_until(lambda: False, p, 0.3, log, "the server")
    finally:
        procs.stop([p])
    assert procs.tail(tmp_path / "absent.log") == "(no log)"
