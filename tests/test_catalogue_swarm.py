"""Namespace identity on the real 3-node swarm (netns_shell.swarm): three dockerd exec roots
on one host each hold `ingress_sbox`, `lb_<id>` and `1-<netid>`.

The oracle is the file system: which node's exec root holds each file, and its inode.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import netns_shell

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("swarm")]


def _env(swarm) -> dict[str, str]:
    return {
        "NETNS_SHELL_PATH": ":".join(n.netns_dir for n in swarm.nodes),
        "DOCKER_HOST": swarm.nodes[0].endpoint,
    }


def _node_of(swarm, path: str) -> str | None:
    return next((n.name for n in swarm.nodes if os.path.dirname(path) == n.netns_dir), None)


def test_each_engines_namespaces_stay_apart(docker_swarm):
    swarm = docker_swarm
    env = _env(swarm)
    run = netns_shell("--json", "-c", "ns", env=env)
    assert run.status == 0, run.stderr
    records = run.json
    names = [r["name"] for r in records]
    assert len(names) == len(set(names))
    overlay = os.path.basename(swarm.overlay_ns(swarm.nodes[0]))
    qualified: dict[str, list[str]] = {}
    for shared in ("ingress_sbox", overlay):
        found = {
            _node_of(swarm, r["paths"][0]): r for r in records if r["paths"] and
            os.path.basename(r["paths"][0]) == shared and _node_of(swarm, r["paths"][0])
        }  # fmt: skip
        assert sorted(found) == [n.name for n in swarm.nodes], shared
        for node, record in found.items():
            # `n1:NAME` (more of the directory when another swarm on the host has an n1 too)
            assert record["name"].endswith(f":{shared}"), record["name"]
            assert node in record["name"] or swarm.base in record["name"], record["name"]
            assert record["inode"] == os.stat(record["paths"][0]).st_ino
            # the qualified name enters exactly that namespace
            current = netns_shell(record["name"], "--json", "-c", "ns", env=env)
            assert [r["inode"] for r in current.json if r["current"]] == [record["inode"]]
        qualified[shared] = [r["name"] for r in found.values()]
    # never picked silently; each of the three named as `use` accepts it (another swarm on
    # the host adds its own)
    run = netns_shell("-c", "use ingress_sbox", env=env)
    assert run.status != 0
    count = int(re.search(r"matches (\d+) namespaces", run.stderr).group(1))
    assert count >= 3, run.stderr
    if count <= 10:
        for name in qualified["ingress_sbox"]:
            assert name in run.stderr
    else:  # other swarms on the host: ten named, the rest counted
        assert f"and {count - 10} more" in run.stderr


def test_topology_wires_containers_to_their_own_node(docker_swarm):
    swarm = docker_swarm
    env = _env(swarm)
    paths = {r["name"]: r["paths"] for r in netns_shell("--json", "-c", "ns", env=env).json}
    run = netns_shell("--json", "-c", "topology", env=env)
    assert run.status == 0, run.stderr
    checked = 0
    for edge in run.json:
        if edge["kind"] != "veth" or not edge.get("peer_netns"):
            continue
        here = _node_of(swarm, (paths.get(edge["netns"]) or [""])[0])
        there = _node_of(swarm, (paths.get(edge["peer_netns"]) or [""])[0])
        if here and there:
            assert here == there, edge
            checked += 1
    assert checked >= 2 * len(swarm.nodes)  # each node's container <-> its overlay, both ways
