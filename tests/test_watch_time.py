"""`watch` lines carry the time each event arrived, like `ip -ts monitor` (real namespace)."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys

from tests.conftest import ROOT


def test_watch_lines_start_with_the_time_of_the_event(netns):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netns_shell",
            "--net",
            f"/var/run/netns/{netns}",
            "-c",
            "watch -c 1 links",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert "watching" in proc.stderr.readline()  # said once subscribed
        before = datetime.datetime.now()
        veth = ["link", "add", "tsveth0", "type", "veth", "peer", "tsveth1"]
        subprocess.run(["ip", "-n", netns, *veth], check=True)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    match = re.match(r"\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})\] \[LINK\] .*tsveth", out)
    assert match, out
    stamp = datetime.datetime.fromisoformat(match.group(1))
    assert before - datetime.timedelta(seconds=1) <= stamp <= datetime.datetime.now()
