"""--demo builds the lab, runs the shell in it and always removes it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from netns_shell.lab import NETNS_DIR, remove_stale_labs


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


def test_stale_lab_of_a_dead_process_is_removed():
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"nstale-{dead.pid}-abcdef-ovl"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert remove_stale_labs("nstale") == [name]
        assert not os.path.exists(os.path.join(NETNS_DIR, name))
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
