"""links / neigh / fdb / routes / bridges against iproute2's own JSON, on a real lab.

The lab has a bridge, a vxlan device with remote VTEP FDB entries, veths into
three container namespaces, permanent neighbours, IPv6, and a second table.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.conftest import bridge_json, ip_json, netns_shell

# keys whose values change from one read to the next
VOLATILE = {
    "gc_timer",
    "hello_timer",
    "tcn_timer",
    "topology_change_timer",
    "hold_timer",
    "message_age_timer",
    "forward_delay_timer",
    "tentative",
}
DESIGN_LINK_KEYS = (
    "ifindex",
    "ifname",
    "flags",
    "mtu",
    "operstate",
    "address",
    "master",
    "link_type",
)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _json(path: str, command: str):
    run = netns_shell("--net", path, "--json", "-c", command)
    assert run.status == 0, run.stderr
    assert run.stderr == ""
    return run.json


@pytest.mark.parametrize("role", ["ovl", "c1", "ul"])
def test_links_match_ip_addr_show_detail(lab, role):
    mine = _json(lab.path(role), "links -d")
    ref = ip_json("-n", lab.name(role), "-d", "addr", "show")
    assert [m["ifindex"] for m in mine] == [r["ifindex"] for r in ref]
    for m, r in zip(mine, ref, strict=True):
        for key in DESIGN_LINK_KEYS:
            assert m.get(key) == r.get(key), (r["ifname"], key)
        assert m.get("linkinfo", {}).get("info_kind") == r.get("linkinfo", {}).get("info_kind")
        for a, b in zip(m["addr_info"], r["addr_info"], strict=True):
            assert (a["family"], a["local"], a["prefixlen"]) == (
                b["family"],
                b["local"],
                b["prefixlen"],
            )
        # beyond the contract: every key iproute2 prints has iproute2's value
        for key, value in _strip(r).items():
            assert _strip(m).get(key) == value, (r["ifname"], key)


def test_vxlan_details_match(lab):
    mine = {m["ifname"]: m for m in _json(lab.entry_path, "links -d")}
    ref = {r["ifname"]: r for r in ip_json("-n", lab.overlay, "-d", "link", "show")}
    data, expected = mine["vxlan0"]["linkinfo"]["info_data"], ref["vxlan0"]["linkinfo"]["info_data"]
    for key in ("id", "port", "local"):
        assert data[key] == expected[key]
    assert data["id"] == lab.vni and data["port"] == 4789 and data["local"] == "192.0.2.1"


def test_veth_peers_named_with_namespace_and_ifname(lab):
    records = _json(lab.entry_path, "links -d")
    peers = {
        r["ifname"]: (r.get("peer_netns"), r.get("peer_ifname"))
        for r in records
        if r.get("linkinfo", {}).get("info_kind") == "veth"
    }
    assert peers == {m.bridge_port: (lab.name(m.role), "eth0") for m in lab.members}
    # and from the container side, the peer is the bridge port in the overlay namespace
    inner = _json(lab.path("c2"), "links -d")
    eth0 = next(r for r in inner if r["ifname"] == "eth0")
    assert (eth0["peer_netns"], eth0["peer_ifname"]) == (lab.overlay, lab.members[1].bridge_port)


def test_links_detail_human_output_names_peer_and_vni(lab):
    run = netns_shell("--net", lab.entry_path, "-c", "links -d")
    assert run.status == 0, run.stderr
    lines = {line.split()[1].split("@")[0]: line for line in run.stdout.splitlines()[1:]}
    assert f"peer eth0 in {lab.name('c1')}" in lines["veth0"]
    assert f"vni {lab.vni}" in lines["vxlan0"] and "local 192.0.2.1" in lines["vxlan0"]


@pytest.mark.parametrize("role", ["ovl", "c1"])
def test_neigh_matches_ip_neigh(lab, role):
    ref, mine = _read_while_still(
        lambda: ip_json("-n", lab.name(role), "neigh", "show"), lab.path(role), "neigh"
    )
    key = lambda r: (r.get("dev", ""), r["dst"])  # noqa: E731
    assert sorted(mine, key=key) == sorted(ref, key=key)
    assert mine, "the lab has permanent neighbours"


def test_neigh_filters_match(lab):
    ref, mine = _read_while_still(
        lambda: ip_json("-n", lab.overlay, "-4", "neigh", "show", "dev", "vxlan0"),
        lab.entry_path,
        "neigh -4 dev vxlan0",
    )
    assert [{k: v for k, v in m.items() if k != "dev"} for m in mine] == ref
    assert {m["dst"] for m in mine} >= {r.ip for r in lab.remotes}
    assert all(m["dst"].count(":") == 0 for m in _json(lab.entry_path, "neigh -4"))
    assert all(":" in m["dst"] for m in _json(lab.entry_path, "neigh -6"))


def test_fdb_matches_bridge_fdb(lab):
    ref, mine = _read_while_still(
        lambda: bridge_json("-n", lab.overlay, "fdb", "show"), lab.entry_path, "fdb"
    )
    assert mine == ref


def test_fdb_filters_match(lab):
    ref, mine = _read_while_still(
        lambda: bridge_json("-n", lab.overlay, "fdb", "show", "br", "br0"),
        lab.entry_path,
        "fdb br br0",
    )
    assert mine == ref
    ref, mine = _read_while_still(
        lambda: bridge_json("-n", lab.overlay, "fdb", "show", "dev", "vxlan0"),
        lab.entry_path,
        "fdb dev vxlan0",
    )
    assert [{k: v for k, v in m.items() if k != "ifname"} for m in mine] == ref
    vteps = {m["mac"]: m["dst"] for m in mine if "dst" in m}
    assert vteps == {r.mac: r.vtep for r in lab.remotes}


def test_routes_table_all_matches(lab):
    for role in ("ovl", "c1"):
        name = lab.name(role)
        mine = _json(lab.path(role), "routes table all")
        ref = ip_json("-n", name, "-4", "route", "show", "table", "all") + ip_json(
            "-n", name, "-6", "route", "show", "table", "all"
        )
        assert mine == ref


def test_routes_default_is_main_table_both_families(lab):
    mine = _json(lab.entry_path, "routes")
    ref = ip_json("-n", lab.overlay, "-4", "route", "show") + ip_json(
        "-n", lab.overlay, "-6", "route", "show"
    )
    assert mine == ref
    assert _json(lab.entry_path, "routes -4") == ip_json("-n", lab.overlay, "route", "show")


def test_routes_second_table(lab):
    mine = _json(lab.entry_path, "routes -4 table 100")
    ref = ip_json("-n", lab.overlay, "-4", "route", "show", "table", "100")
    assert [{k: v for k, v in m.items() if k != "table"} for m in mine] == ref
    assert {m["dst"] for m in mine} == {"172.31.0.0/16", "172.30.0.0/16"}
    assert all(m["table"] == "100" for m in mine)


def test_routes_dev_filter(lab):
    mine = _json(lab.path("c1"), "routes -4 dev eth0")
    ref = ip_json("-n", lab.name("c1"), "route", "show", "dev", "eth0")
    assert [{k: v for k, v in m.items() if k != "dev"} for m in mine] == ref


def test_bridges_lists_ports(lab):
    (br0,) = _json(lab.entry_path, "bridges")
    ports = {p["ifname"] for p in br0["ports"]}
    links = ip_json("-n", lab.overlay, "link", "show", "master", "br0")
    assert br0["ifname"] == "br0"
    assert ports == {link["ifname"] for link in links}


def test_several_commands_give_several_json_documents(lab):
    run = netns_shell("--net", lab.entry_path, "--json", "-c", "neigh -4 dev br0; fdb dev vxlan0")
    assert run.status == 0
    neigh, fdb = run.json_documents
    assert {n["dst"] for n in neigh} == {m.ip for m in lab.members}
    assert {f["mac"] for f in fdb} >= {r.mac for r in lab.remotes}


def _read_while_still(oracle, path: str, command: str, seconds: float = 30):
    """(oracle's rows, ours) read while the table stood still: the same oracle rows before
    and after ours. A fresh namespace keeps changing for a moment (IPv6 multicast entries,
    MACs the bridge learns from a peer's router solicitations), and so do neighbours that
    age (REACHABLE -> STALE) after traffic an earlier test of the shared lab sent."""
    return _while_still(oracle, lambda: _json(path, command), seconds)


def _while_still(oracle, read, seconds: float = 30):
    """(oracle(), read()) from a moment when oracle() gave the same rows before and after."""
    deadline = time.monotonic() + seconds
    while True:
        before = oracle()
        mine = read()
        if oracle() == before:
            return before, mine
        assert time.monotonic() < deadline, f"the table kept changing for {seconds} s"
        time.sleep(0.2)


def test_fdb_of_every_kernel_layout_matches_bridge_fdb(netns):
    """vxlan entries over IPv4 and IPv6 with port / vni / via / src_vni, a default (all-zero)
    entry with two remotes, bridge entries static / learned / extern_learn, and each
    device's own addresses: hundreds of each, so that rows share templates across chunks."""
    subprocess.run(
        ["ip", "-n", netns, "-batch", "-"],
        input="\n".join(
            [
                "link add br0 type bridge",
                "link add vx4 type vxlan id 100 dstport 4789 local 127.0.0.1 nolearning",
                "link add vx6 type vxlan id 200 dstport 4789 local ::1 nolearning",
                "link add vxm type vxlan external dstport 4790 nolearning",
                "link add va type veth peer name vb",
                "link set va master br0",
                "link set vx4 master br0",
                *(f"link set {dev} up" for dev in ("br0", "va", "vb", "vx4", "vx6", "vxm")),
            ]
        )
        + "\n",
        text=True,
        check=True,
    )
    lines = [
        "fdb add 00:00:00:00:00:00 dev vx4 dst 192.0.2.9 self permanent",
        "fdb append 00:00:00:00:00:00 dev vx4 dst 192.0.2.10 self permanent",
        "fdb add 02:00:00:00:01:02 dev vx4 dst 192.0.2.2 port 4790 self permanent",
        "fdb add 02:00:00:00:01:03 dev vx4 dst 192.0.2.3 vni 300 self permanent",
        "fdb add 02:00:00:00:01:04 dev vx4 dst 192.0.2.4 via lo self permanent",
        "fdb add 02:00:00:00:02:02 dev vx6 dst 2001:db8::2 port 9999 vni 7 self permanent",
        "fdb add 02:00:00:00:04:01 dev vxm dst 192.0.2.7 vni 42 src_vni 43 self permanent",
        "fdb add 02:00:00:00:03:04 dev va master extern_learn",
        "fdb add 02:00:00:00:03:05 dev vx4 master static",
    ]
    for i in range(300):
        lines += [
            f"fdb add 02:10:00:00:{i >> 8:02x}:{i & 255:02x} dev vx4 dst 192.0.{i >> 4}.{i & 15} "
            "self permanent",
            f"fdb add 02:20:00:00:{i >> 8:02x}:{i & 255:02x} dev vx6 dst 2001:db8::{i:x} "
            f"vni {1000 + i % 3} self permanent",
            f"fdb add 02:30:00:00:{i >> 8:02x}:{i & 255:02x} dev va master static",
        ]
    subprocess.run(
        ["bridge", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True
    )
    # a learned entry: a frame from vb's side reaches the bridge port va
    subprocess.run(
        ["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", "-I", "vb", "10.255.255.1"],
        capture_output=True,
    )
    path = f"/var/run/netns/{netns}"
    ref, mine = _read_while_still(lambda: bridge_json("-n", netns, "fdb", "show"), path, "fdb")
    assert len(ref) > 900
    assert mine == ref
    ref_br0, mine = _read_while_still(
        lambda: bridge_json("-n", netns, "fdb", "show", "br", "br0"), path, "fdb br br0"
    )
    assert mine == ref_br0
    ref, plain = _while_still(
        lambda: bridge_json("-n", netns, "fdb", "show"), lambda: netns_shell(path, "-c", "fdb")
    )
    assert plain.status == 0, plain.stderr
    rows = plain.stdout.splitlines()[1:]
    assert len(rows) == len(ref)
    by_mac = {}
    for row in rows:
        by_mac.setdefault(row.split()[0], []).append(row)
    for entry in ref:
        if "dst" in entry:
            remote = " ".join(
                [
                    entry["dst"],
                    *(f"{k} {entry[k]}" for k in ("port", "vni", "src_vni", "viaIf") if k in entry),
                ]
            )
            assert any(remote in row for row in by_mac[entry["mac"]]), entry
