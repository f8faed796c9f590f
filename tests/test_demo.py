"""--demo builds the lab, runs the shell in it and always removes it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from netns_shell.lab import NETNS_DIR, Lab, remove_stale_labs


def _lab_names(base: str) -> list[str]:
    return [n for n in os.listdir(NETNS_DIR) if n.startswith(base)]


def _base_from(stderr: str) -> str:
    match = re.search(r"namespaces named (\S+)-\*", stderr)
    assert match, stderr
    return match.group(1)


def test_demo_runs_commands_in_the_overlay_and_cleans_up():
    proc = subprocess.run(
        [sys.executable, "-m", "netns_shell", "--demo", "--json"],
        input="fdb dev vxlan0\nns\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    base = _base_from(proc.stderr)
    assert "192.0.2.11" in proc.stdout  # a remote VTEP of the lab's vxlan FDB
    assert f"{base}-ovl" in proc.stdout
    assert _lab_names(base) == []


def test_demo_is_removed_after_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", "--demo"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    base = _base_from(line)
    assert len(_lab_names(base)) == 5
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert _lab_names(base) == []


def test_a_lab_left_by_a_killed_demo_is_named_and_removed_by_the_next():
    """The lab's owner holds a lock while the lab exists; kill -9 leaves the lock free."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", "--demo"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = _base_from(proc.stderr.readline())
    try:
        assert remove_stale_labs("nsdemo") == []  # alive: its lab is left alone
        proc.kill()
        proc.wait(timeout=10)
        assert len(_lab_names(base)) == 5
        run = subprocess.run(
            [sys.executable, "-m", "netns_shell", "--demo"],
            input="exit\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        assert "removed a demo lab left behind" in run.stderr and f"{base}-ovl" in run.stderr
        assert _lab_names(base) == []
    finally:
        proc.kill()
        for name in _lab_names(base):
            subprocess.run(["ip", "netns", "del", name], check=False)


def test_a_live_lab_of_another_process_is_never_removed():
    """A PID test removed labs whose creator's PID was not visible (another PID namespace)."""
    with Lab(prefix="nstale") as lab:
        other = subprocess.run(
            [
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                sys.executable,
                "-c",
                "from netns_shell.lab import remove_stale_labs; print(remove_stale_labs('nstale'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert other.stdout.strip() == "[]"
        assert len(_lab_names(lab.base)) == len(lab.roles)
