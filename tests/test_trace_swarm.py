"""`trace` across the nodes of a real 3-node swarm (tests/swarmenv.py, the `check` fixture).

Container c1 runs on n1, c2 on n2; the path crosses n1's overlay bridge, its
vxlan device, n1's underlay (the node namespace holding the vxlan socket),
n2's underlay, n2's overlay and ends in c2's sandbox.  Faults are planted for
real and undone afterwards, also when the test fails; the oracles are the
kernel (`bridge -j fdb`, `iptables-save -c`, a real ping from the container)
and the engines (`docker -H NODE inspect / network inspect -v`).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from netns_shell.engine_view import overlay_mac
from tests.conftest import netns_shell
from tests.swarmenv import engine_oracle, fdb_oracle, in_overlay, nodes_option

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("swarm")]


@pytest.fixture
def swarm(docker_swarm):
    docker_swarm.wait_converged()
    yield docker_swarm
    docker_swarm.wait_converged()


def trace(swarm, dest: str, *extra: str, nodes: str | None = None):
    env = {"NETNS_SHELL_PATH": ":".join(n.netns_dir for n in swarm.nodes)}
    nodes = nodes or nodes_option(swarm)
    line = " ".join(["trace", "--from", swarm.containers["n1"], dest, "--nodes", nodes, *extra])
    run = netns_shell("--json", "-c", line, env=env, timeout=60)
    assert run.stdout, run.stderr
    return run, run.json


def container(swarm, node) -> tuple[str, str]:
    """(IP on the overlay, sandbox file name) of the container pinned on `node`."""
    info = json.loads(node.docker("inspect", swarm.containers[node.name]))[0]
    net = info["NetworkSettings"]["Networks"][swarm.network]
    return net["IPAddress"], info["NetworkSettings"]["SandboxKey"].rsplit("/", 1)[-1]


def ping_from_c1(swarm, ip: str) -> int:
    n1 = swarm.nodes[0]
    done = subprocess.run(
        ["docker", "-H", n1.endpoint, "exec", swarm.containers["n1"], "ping", "-c", "1", "-W",
         "1", ip], capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return done.returncode


def test_healthy_cross_node_path(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, sandbox = container(swarm, n2)
    run, hops = trace(swarm, swarm.containers["n2"])
    assert run.status == 0, run.stdout + run.stderr
    assert not any(h.get("reason") for h in hops)
    assert hops[0]["node"] == "n1" and hops[-1]["node"] == "n2"
    assert hops[-1]["netns"] == sandbox and hops[-1]["verdict"] == "delivered"
    vxlan = next(h for h in hops if h["step"] == "vxlan")
    assert vxlan["vtep"] == {e["mac"]: e["dst"] for e in fdb_oracle(swarm, n1)}[overlay_mac(ip)]
    assert vxlan["vtep"] == n2.addr
    under = next(h for h in hops if h["step"] == "underlay")
    assert (under["node"], under["src"], under["outer_size"]) == ("n1", n1.addr, 84 + 50)
    assert any(h["step"] == "underlay-in" and h["node"] == "n2" for h in hops)
    assert ping_from_c1(swarm, ip) == 0


def test_wrong_vtep(swarm):
    n1, n2, n3 = swarm.nodes
    ip, _ = container(swarm, n2)
    mac = overlay_mac(ip)
    in_overlay(swarm, n1, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst", n3.addr,
               "self", "permanent")  # fmt: skip
    try:
        assert {e["mac"]: e["dst"] for e in fdb_oracle(swarm, n1)}[mac] == n3.addr
        tasks = [t for s in engine_oracle(swarm, n1)["Services"].values() for t in s["Tasks"]]
        assert {t["EndpointIP"]: t["Info"]["Host IP"] for t in tasks}[ip] == n2.addr
        run, hops = trace(swarm, ip)
        assert run.status == 1, run.stdout
        dead = hops[-1]
        assert (dead["node"], dead["step"], dead["reason"], dead["vtep"]) == (
            "n1",
            "vxlan",
            "wrong-vtep",
            n3.addr,
        )
        assert n2.addr in dead["evidence"]
        assert ping_from_c1(swarm, ip) != 0
    finally:
        in_overlay(swarm, n1, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst", n2.addr,
                   "self", "permanent")  # fmt: skip


@pytest.mark.parametrize("side", ["receiver", "sender"])
def test_udp_4789_dropped_between_two_nodes(swarm, side):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, _ = container(swarm, n2)
    where, other = (n2, n1) if side == "receiver" else (n1, n2)
    undo = swarm.block_vxlan(where, other)
    try:
        assert ping_from_c1(swarm, ip) != 0
        saved = subprocess.run(
            ["nsenter", f"--net={where.netns_path}", "iptables-save", "-c"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        chain = "INPUT" if side == "receiver" else "OUTPUT"
        rule = f"-A {chain} -{'s' if chain == 'INPUT' else 'd'} {other.addr}/32 -p udp -m udp"
        counted = next(line for line in saved.splitlines() if rule in line)
        assert not counted.startswith("[0:0]")  # the ping's VXLAN packet died there
        run, hops = trace(swarm, ip)
        assert run.status == 1, run.stdout
        dead = hops[-1]
        step = "underlay-in" if side == "receiver" else "underlay"
        assert (dead["node"], dead["netns"], dead["step"], dead["reason"]) == (
            where.name,
            where.netns,
            step,
            "netfilter",
        )
        assert rule in dead["evidence"] and "--dport 4789 -j DROP" in dead["evidence"]
    finally:
        undo()


def test_a_node_that_cannot_be_reached_is_named(swarm):
    n2 = swarm.nodes[1]
    ip, _ = container(swarm, n2)
    nodes = nodes_option(swarm).replace(n2.endpoint, "unix:///nonexistent/docker.sock")
    run, hops = trace(swarm, ip, nodes=nodes)
    assert run.status == 2
    last = hops[-1]
    assert (last["verdict"], last["reason"], last["node"]) == ("unknown", "node-unreachable", "n1")
    assert "node n2 cannot be reached" in last["evidence"]
