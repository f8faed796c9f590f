"""Namespace identity is the inode: one name held by several directories (several engines on
one host) stays several namespaces in `ns`, `use`, `find`, `topology` and the API.

The "nodes" are real namespace files in three directories laid out like three dockerd exec
roots (`<dir>/nK/exec/netns/`), each holding the same overlay-shaped name, a name of its own,
and a sandbox wired to the overlay by a veth; ifindexes repeat across nodes, as they do on a
real multi-node host.  The oracle is the file system (stat: inodes) and iproute2 inside
each namespace file (nsenter --net=FILE ip -j).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import netns_shell

NODES = ("n1", "n2", "n3")


@dataclass
class Nodes:
    root: Path
    overlay: str  # the name every node holds
    sandbox: str  # another shared name: the container end of the veth
    own: dict[str, str]  # node -> a name only that node holds
    prefix: str  # the start all the names above share

    def path(self, node: str, name: str) -> str:
        return str(self.root / node / "exec" / "netns" / name)

    def inode(self, node: str, name: str) -> int:
        return os.stat(self.path(node, name)).st_ino

    @property
    def env(self) -> dict[str, str]:
        return {"NETNS_SHELL_PATH": ":".join(str(self.root / n / "exec" / "netns") for n in NODES)}


def _ip_json(path: str, *args: str) -> list:
    out = subprocess.check_output(["nsenter", f"--net={path}", "ip", "-j", *args], text=True)
    return json.loads(out)


@pytest.fixture
def nodes(tmpdir_clean: Path) -> Iterator[Nodes]:
    tag = secrets.token_hex(3)  # unique per run: the files are visible host-wide
    found = Nodes(
        tmpdir_clean,
        overlay=f"1-{tag}ov01",
        sandbox=f"1-{tag}sb",
        own={node: f"1-{tag}only{node}" for node in NODES},
        prefix=f"1-{tag}",
    )
    for k, node in enumerate(NODES):
        directory = tmpdir_clean / node / "exec" / "netns"
        directory.mkdir(parents=True)
        for name in (found.overlay, found.sandbox, found.own[node]):
            (directory / name).touch()
            subprocess.run(["unshare", f"--net={directory / name}", "true"], check=True)
        overlay, sandbox = found.path(node, found.overlay), found.path(node, found.sandbox)
        script = (
            "link add br0 type bridge\n"
            "link set br0 up\n"
            f"link add veth0 master br0 type veth peer name eth0 netns {sandbox}\n"
            "link set veth0 up\n"
        )
        subprocess.run(["nsenter", f"--net={overlay}", "ip", "-batch", "-"], input=script,
                       text=True, check=True)  # fmt: skip
        subprocess.run(
            ["nsenter", f"--net={sandbox}", "ip", "addr", "add", "10.213.0.2/24", "dev", "eth0"],
            check=True,
        )
        # the same ifindex on every node (a fresh namespace each time): pairing by ifindex
        # alone would wire node 1's overlay to node 3's sandbox
        assert _ip_json(sandbox, "link", "show", "eth0")[0]["ifindex"] == 2, k
    yield found


def _ns(nodes: Nodes, *more: str) -> list[dict]:
    run = netns_shell("--json", *more, "-c", "ns", env=nodes.env)
    assert run.status == 0, run.stderr
    return run.json


def test_ns_keeps_each_copy_apart_and_qualifies_its_name(nodes):
    records = _ns(nodes)
    names = [r["name"] for r in records]
    assert len(names) == len(set(names)), "every namespace has a name of its own"
    by_inode = {r["inode"]: r for r in records}
    for node in NODES:
        for shared in (nodes.overlay, nodes.sandbox):
            record = by_inode[nodes.inode(node, shared)]
            assert record["name"] == f"{node}:{shared}"
            assert record["paths"] == [nodes.path(node, shared)]
        only = by_inode[nodes.inode(node, nodes.own[node])]
        assert only["name"] == nodes.own[node]  # not shared: not qualified


@pytest.mark.parametrize("node", NODES)
def test_use_accepts_the_qualified_name_and_the_path(nodes, node):
    inode = nodes.inode(node, nodes.overlay)
    for target in (f"{node}:{nodes.overlay}", nodes.path(node, nodes.overlay)):
        current = [r for r in _ns(nodes, target) if r["current"]]
        assert [r["inode"] for r in current] == [inode], target
    # a qualifier is a run of whole directory components, so a longer one works too
    current = [r for r in _ns(nodes, f"{node}/exec:{nodes.overlay}") if r["current"]]
    assert [r["inode"] for r in current] == [inode]
    # and it still works for a name only one directory holds
    own = nodes.own[node]
    current = [r for r in _ns(nodes, f"{node}:{own}") if r["current"]]
    assert [r["inode"] for r in current] == [nodes.inode(node, own)]


def test_a_shared_name_is_never_picked_silently(nodes):
    for target in (nodes.overlay, nodes.overlay[:-2]):  # the exact name, then a prefix of it
        run = netns_shell("-c", f"use {target}", env=nodes.env)
        assert run.status != 0
        assert "matches 3 namespaces" in run.stderr, run.stderr
        for node in NODES:
            assert f"{node}:{nodes.overlay}" in run.stderr
    # each candidate the message names is accepted as it is written there
    run = netns_shell("-c", f"use {nodes.overlay}", env=nodes.env)
    listed = re.search(r"namespaces: (.*); give more", run.stderr).group(1).split(", ")
    assert len(listed) == 3
    for candidate in listed:
        again = netns_shell("-c", f"use {candidate}", env=nodes.env)
        assert again.status == 0, again.stderr


def test_many_matches_are_all_counted_and_the_rest_announced(nodes):
    run = netns_shell("-c", f"use {nodes.prefix}", env=nodes.env)
    assert run.status != 0
    assert "matches 9 namespaces" in run.stderr, run.stderr  # 3 nodes x 3 names
    for node in NODES:
        for name in (f"{node}:{nodes.overlay}", f"{node}:{nodes.sandbox}", nodes.own[node]):
            assert name in run.stderr
    # a fourth directory: 12 matches, 10 named and the rest counted
    extra = nodes.root / "n4" / "exec" / "netns"
    extra.mkdir(parents=True)
    for name in (nodes.overlay, nodes.sandbox, nodes.own["n1"]):
        (extra / name).touch()
        subprocess.run(["unshare", f"--net={extra / name}", "true"], check=True)
    env = {"NETNS_SHELL_PATH": nodes.env["NETNS_SHELL_PATH"] + f":{extra}"}
    run = netns_shell("-c", f"use {nodes.prefix}", env=env)
    assert "matches 12 namespaces" in run.stderr, run.stderr
    assert "and 2 more" in run.stderr


def test_find_names_each_copy(nodes):
    run = netns_shell("--json", "-c", "find 10.213.0.2", env=nodes.env)
    assert run.status == 0, run.stderr
    mine = [r for r in run.json if r["table"] == "address" and nodes.prefix in r["netns"]]
    assert sorted(r["netns"] for r in mine) == [f"{n}:{nodes.sandbox}" for n in NODES]


def test_topology_wires_each_node_to_its_own_sandbox(nodes):
    run = netns_shell("--json", "-c", "topology", env=nodes.env)
    assert run.status == 0, run.stderr
    veths = [r for r in run.json if r["kind"] == "veth" and nodes.prefix in r["netns"]]
    pairs = {(r["netns"], r.get("peer_netns")) for r in veths}
    expected = set()
    for node in NODES:
        overlay, sandbox = f"{node}:{nodes.overlay}", f"{node}:{nodes.sandbox}"
        expected |= {(overlay, sandbox), (sandbox, overlay)}
    assert pairs == expected
    dot = netns_shell("-c", "topology --dot", env=nodes.env)
    assert dot.status == 0, dot.stderr
    for node in NODES:
        # one cluster per copy, and the bold veth edge inside the node
        assert f'label="{node}:{nodes.overlay}"' in dot.stdout
        assert f'"{node}:{nodes.overlay}/veth0" -- "{node}:{nodes.sandbox}/eth0"' in dot.stdout


def test_api_resolves_through_the_catalogue(nodes, monkeypatch):
    from netns_shell import api
    from netns_shell.errors import NamespaceError

    monkeypatch.setenv("NETNS_SHELL_PATH", nodes.env["NETNS_SHELL_PATH"])
    for node in NODES:
        with api.open_namespace(f"{node}:{nodes.overlay}", docker=False, cri=False) as ns:
            assert ns.inode == nodes.inode(node, nodes.overlay)
    with pytest.raises(NamespaceError, match="matches 3 namespaces"):
        api.open_namespace(nodes.overlay, docker=False, cri=False)
    names = {r["name"] for r in api.namespaces(details=False, docker=False, cri=False)}
    assert {f"{n}:{nodes.overlay}" for n in NODES} <= names


def test_directory_tags():
    from netns_shell.discovery import _directory_tags

    assert _directory_tags(["/run/s/n1/exec/netns", "/run/s/n2/exec/netns"]) == ["n1", "n2"]
    # the shortest part no other directory has; among those as short, the nearest the file
    assert _directory_tags(["/a/x/y/netns", "/a/z/netns"]) == ["y", "z"]
    assert _directory_tags(["/var/run/docker/netns", "/var/run/netns"]) == ["docker", "run/netns"]
    # another swarm's n1 beside ours: n1 alone names neither, the swarm's directory does
    two_swarms = ["/r/s1/n1/exec/netns", "/r/s1/n2/exec/netns", "/r/s2/n1/exec/netns"]
    assert _directory_tags(two_swarms) == ["s1/n1", "n2", "s2"]
    # nothing in /a/netns that /b/a/netns lacks: its full path must name it
    assert _directory_tags(["/a/netns", "/b/a/netns"]) == [None, "b"]
    assert _directory_tags(["/a:b/netns", "/c/netns"]) == [None, "c"]


@pytest.fixture
def suffixed() -> Iterator[tuple[str, list[str]]]:
    """Three named namespaces: `nsx-<t>-a<t>`, `nsx-<t>-b<t>` and `nsy-<t>-b<t>`."""
    token = secrets.token_hex(4)
    names = [f"nsx-{token}-a{token}", f"nsx-{token}-b{token}", f"nsy-{token}-b{token}"]
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
        yield token, names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)


def test_use_takes_a_unique_last_part_of_a_name(suffixed):
    """`use c1` enters nsdemo-4201-c71ded-c1 as it would a unique prefix; a last part
    several names end with is refused with each of them named, like a prefix."""
    token, names = suffixed
    inode = os.stat(f"/var/run/netns/{names[0]}").st_ino
    run = netns_shell("--json", "-c", f"use a{token}; ns")
    assert run.status == 0, run.stderr
    assert [r["inode"] for r in run.json if r["current"]] == [inode]
    run = netns_shell("--json", "-c", f"use nsx-{token}-b{token}; ns")  # the whole name
    assert [r["name"] for r in run.json if r["current"]] == [names[1]]
    run = netns_shell("--json", "-c", f"use {token}-b{token}")
    assert run.status != 0
    assert f"'{token}-b{token}' matches 2 namespaces" in run.stderr
    assert names[1] in run.stderr and names[2] in run.stderr
    run = netns_shell("-c", f"use x-{token}-b{token}")  # whole parts only: not nsx-'s x
    assert run.status != 0 and "no namespace named" in run.stderr
