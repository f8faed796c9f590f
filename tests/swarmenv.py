"""The multi-node swarm for the tests: one per test process (xdist worker), built once.

Built with netns_shell.swarm (the same builder as `--demo swarm`); skipped with
the reason only when dockerd cannot start here.  Swarms of test runs that were
killed are removed first (their lock is free).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from netns_shell.swarm import Swarm, SwarmError, SwarmNode, dockerd_missing, remove_stale_swarms
from tests.conftest import Run, netns_shell

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
