"""topology pairs veths by the peer's netnsid, never by ifindex coincidence.

Two unrelated veth pairs are built with the same ifindex numbers (A:4000 <->
B:4001 and C:4001 <-> D:4000): A's veth and C's veth then look like each
other's peer by ifindex alone.  With every namespace read, each veth pairs with
its real peer (checked against `ip -j -d link`, whose link_netnsid names the
peer's namespace); with B not read at all, A's veth has no peer rather than C's.
"""

from __future__ import annotations

import subprocess

from netns_shell.discovery import discover
from netns_shell.topology import collect_topology
from tests.conftest import ip_json, unique


def _peers(topo, name: str) -> dict[str, tuple[str, str] | None]:
    return {p.ifname: p.peer for p in topo.ports.get(name, []) if p.kind == "veth"}


def test_veths_with_coinciding_ifindexes_in_unrelated_namespaces_pair_by_netnsid():
    a, b, c, d = (unique(f"tp{role}") for role in "abcd")
    try:
        for name in (a, b, c, d):
            subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(
            ["ip", "-n", a, "link", "add", "va", "index", "4000", "type", "veth",
             "peer", "name", "vb", "index", "4001", "netns", b],
            check=True,
        )  # fmt: skip
        subprocess.run(
            ["ip", "-n", c, "link", "add", "vc", "index", "4001", "type", "veth",
             "peer", "name", "vd", "index", "4000", "netns", d],
            check=True,
        )  # fmt: skip
        # the oracle: ifindexes really coincide, and iproute2 knows the peer's netnsid
        va = ip_json("-n", a, "-d", "link", "show", "va")[0]
        vc = ip_json("-n", c, "-d", "link", "show", "vc")[0]
        assert (va["ifindex"], va["link_index"]) == (4000, 4001)
        assert (vc["ifindex"], vc["link_index"]) == (4001, 4000)
        assert "link_netnsid" in va and "link_netnsid" in vc

        entries = [e for e in discover(details=False) if e.name in (a, b, c, d)]
        assert len(entries) == 4
        topo = collect_topology(entries)
        assert _peers(topo, a) == {"va": (b, "vb")}
        assert _peers(topo, b) == {"vb": (a, "va")}
        assert _peers(topo, c) == {"vc": (d, "vd")}
        assert _peers(topo, d) == {"vd": (c, "vc")}

        # B is not read (not discovered, not usable): A's veth has no known peer; by
        # ifindex alone C's vc (4001, peer 4000) would have looked like it
        without_b = collect_topology([e for e in entries if e.name != b])
        assert _peers(without_b, a) == {"va": None}
        assert _peers(without_b, c) == {"vc": (d, "vd")}
        assert _peers(without_b, d) == {"vd": (c, "vc")}
    finally:
        for name in (a, b, c, d):
            subprocess.run(["ip", "netns", "del", name], check=False, stderr=subprocess.DEVNULL)
