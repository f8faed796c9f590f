"""The multi-node swarm for the tests: one per test process (xdist worker), built once.

Built with netns_shell.swarm (the same builder as `--demo swarm`); skipped with
the reason only when dockerd cannot start here.  Swarms of test runs that were
killed are removed first (their lock is free).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from netns_shell.swarm import Swarm, SwarmError, SwarmNode, dockerd_missing, remove_stale_swarms
from tests.conftest import PROMPT, Run, netns_shell

PREFIX = "nstswarm"


@contextmanager
def running_swarm(nodes: int = 3) -> Iterator[Swarm]:
    reason = dockerd_missing()
    if reason:
        pytest.skip(reason)
    remove_stale_swarms(PREFIX)
    swarm = Swarm(nodes_wanted=nodes, prefix=PREFIX)
    try:
        swarm.up()
    except SwarmError as exc:
        if "dockerd did not start" in str(exc):
            pytest.skip(str(exc))
        raise
    try:
        yield swarm
    finally:
        swarm.down()


def nodes_option(swarm: Swarm, nodes: list[SwarmNode] | None = None) -> str:
    return ",".join(f"{n.name}={n.endpoint}" for n in (nodes or swarm.nodes))


def run_check(swarm: Swarm, *extra: str, first: SwarmNode | None = None) -> Run:
    """`check` through the console script, --json; `first` is the node checked alone."""
    order = swarm.nodes if first is None else [first] + [n for n in swarm.nodes if n != first]
    line = " ".join(["check", "--nodes", nodes_option(swarm, order), *extra])
    return netns_shell("--json", "-c", line, timeout=60)


def in_overlay(swarm: Swarm, node: SwarmNode, *argv: str) -> str:
    """A command run inside `node`'s overlay namespace (nsenter --net); its stdout."""
    proc = subprocess.run(
        ["nsenter", f"--net={swarm.overlay_ns(node)}", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def fdb_oracle(swarm: Swarm, node: SwarmNode) -> list[dict]:
    """`bridge -j fdb show dev vxlan0` in the node's overlay namespace: entries with a dst."""
    entries = json.loads(in_overlay(swarm, node, "bridge", "-j", "fdb", "show", "dev", "vxlan0"))
    return [e for e in entries if "dst" in e and not e["mac"].startswith(("00:00", "01:", "33:"))]


def neigh_oracle(swarm: Swarm, node: SwarmNode) -> dict[str, dict]:
    """`ip -j neigh show dev vxlan0` in the node's overlay namespace, by IP."""
    entries = json.loads(in_overlay(swarm, node, "ip", "-j", "neigh", "show", "dev", "vxlan0"))
    return {e["dst"]: e for e in entries}


def engine_oracle(swarm: Swarm, node: SwarmNode) -> dict:
    """`docker -H NODE network inspect -v NET`."""
    return json.loads(node.docker("network", "inspect", "-v", swarm.network))[0]


def remote_tasks(swarm: Swarm, node: SwarmNode) -> dict[str, str]:
    """IP -> Host IP of every task the node's engine places on another node."""
    view = engine_oracle(swarm, node)
    return {
        t["EndpointIP"]: t["Info"]["Host IP"]
        for s in view.get("Services", {}).values()
        for t in s["Tasks"]
        if t["Info"]["Host IP"] != node.addr
    }


def docker_clients(swarm: Swarm) -> set[str]:
    """The docker CLI processes talking to one of the swarm's engines (pid: command line)."""
    found = set()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"docker" and swarm.directory.encode() in b" ".join(argv):
            found.add(f"{pid}: {b' '.join(argv).decode(errors='replace')}")
    return found


def interrupted_check(
    line: str, delay: float, env: dict[str, str] | None = None
) -> tuple[int, float, str]:
    """`netns-shell -c LINE` sent SIGINT after `delay` s: (exit status, seconds from the
    signal to its exit, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", "-c", line],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _out, err = proc.communicate(timeout=60)
        return proc.returncode, time.monotonic() - sent, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def interrupted_in_the_shell(line: str, delay: float) -> tuple[float, str]:
    """LINE typed in the REPL, Ctrl-C after `delay` s: (seconds until the prompt is back,
    what the terminal showed); then `exit` ends the shell."""
    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell"],
        env={**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1"},
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    try:
        child.expect(PROMPT)
        child.sendline(line)
        # what the terminal shows meanwhile (the line echoed, the prompt redrawn) is read
        # here, so that the prompt expected below is the one after the command
        child.expect(pexpect.TIMEOUT, timeout=delay)
        child.sendintr()
        sent = time.monotonic()
        child.expect(r"\^C")
        child.expect(PROMPT)
        took = time.monotonic() - sent
        shown = child.before
        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=20)
        return took, shown
    finally:
        child.close(force=True)
