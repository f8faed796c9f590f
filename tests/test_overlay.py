"""find, overlay, topology, watch and probes on hand-built labs (no Docker needed)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from netns_shell.lab import Lab
from tests.conftest import netns_shell


@pytest.fixture(scope="module")
def bad_lab():
    """A lab with the planted inconsistencies `overlay` must flag."""
    with Lab(prefix="nst", inconsistent=True) as built:
        yield built


def _json(*args: str):
    run = netns_shell(*args)
    assert run.status == 0, run.stderr
    return run.json


def test_overlay_flags_exactly_the_planted_inconsistencies(bad_lab):
    rows = {r["mac"]: r for r in _json("--net", bad_lab.entry_path, "--json", "-c", "overlay")}
    flagged = {mac: r["flags"] for mac, r in rows.items() if r["flags"]}
    assert flagged == {
        bad_lab.orphan_neighbour.mac: ["neigh-without-fdb"],
        bad_lab.orphan_fdb.mac: ["fdb-without-neigh"],
        bad_lab.unrouted.mac: ["vtep-unreachable"],
        bad_lab.duplicate.mac: ["two-ports"],
    }


def test_overlay_joins_port_ip_vtep_and_container(bad_lab):
    rows = {r["mac"]: r for r in _json("--net", bad_lab.entry_path, "--json", "-c", "overlay")}
    for member in bad_lab.members:
        row = rows[member.mac]
        assert member.bridge_port in row["ports"]
        assert member.ip in row["ip"]
        assert row["container"] == bad_lab.name(member.role)
        assert row["location"] == "local"
    for remote in bad_lab.remotes:
        row = rows[remote.mac]
        assert row["vtep"] == [remote.vtep] and remote.ip in row["ip"]
        assert row["container"] == "remote" and row["ports"] == ["vxlan0"]


def test_overlay_is_clean_on_a_consistent_lab(lab):
    rows = _json("--net", lab.entry_path, "--json", "-c", "overlay")
    assert rows and not any(r["flags"] for r in rows)


def test_overlay_outside_an_overlay_namespace_is_one_line(lab):
    run = netns_shell("--net", lab.path("c1"), "-c", "overlay")
    assert run.status == 1
    assert run.stderr.count("\n") == 1 and "no vxlan device" in run.stderr


def test_find_ip_mac_and_ifname_across_namespaces(lab):
    member = lab.members[1]
    hits = _json("--json", "-c", f"find {member.ip}")
    places = {(h["netns"], h["table"]) for h in hits}
    assert (lab.name(member.role), "address") in places  # the container's own address
    assert (lab.overlay, "neigh") in places  # the overlay's neighbour entry
    hits = _json("--json", "-c", f"find {member.mac}")
    places = {(h["netns"], h["table"], h["dev"]) for h in hits}
    assert (lab.name(member.role), "link", "eth0") in places
    assert (lab.overlay, "fdb", member.bridge_port) in places
    remote = lab.remotes[0]
    hits = _json("--json", "-c", f"find {remote.vtep}")
    assert {(h["netns"], h["table"]) for h in hits} >= {(lab.overlay, "fdb")}
    hits = _json("--json", "-c", "find vxlan0")
    assert lab.overlay in {h["netns"] for h in hits if h["table"] == "link"}


def test_find_rejects_what_is_not_an_address_or_name():
    run = netns_shell("-c", "find not/an/address")
    assert run.status == 2 and "is not an IP address" in run.stderr


def test_topology_tree_and_dot(lab):
    run = netns_shell("-c", "topology")
    assert run.status == 0, run.stderr
    block = run.stdout.split(f"{lab.overlay}\n", 1)[1].split("\n\n", 1)[0]
    assert "br0 (bridge) 10.0.9.1/24" in block
    for member in lab.members:
        assert f"{member.bridge_port} (veth) == eth0 @ {lab.name(member.role)}" in block
    assert f"vxlan0 (vxlan) vni {lab.vni} -> VTEPs" in block
    dot = netns_shell("-c", "topology --dot").stdout
    assert dot.startswith("graph topology {") and dot.rstrip().endswith("}")
    assert (
        f'"{lab.overlay}/veth0" -- "{lab.name("c1")}/eth0"' in dot
        or f'"{lab.name("c1")}/eth0" -- "{lab.overlay}/veth0"' in dot
    )
    edges = _json("--json", "-c", "topology")
    veth0 = next(e for e in edges if e["netns"] == lab.overlay and e["ifname"] == "veth0")
    assert (veth0["peer_netns"], veth0["peer_ifname"], veth0["master"]) == (
        lab.name("c1"),
        "eth0",
        "br0",
    )


def test_watch_fdb_prints_an_added_and_a_learned_mac(fresh_lab):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netns_shell",
            "--net",
            fresh_lab.entry_path,
            "-c",
            "watch -c 2 --duration 60 fdb",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "watching fdb" in proc.stderr.readline()  # said once subscribed
        subprocess.run(
            [
                "bridge",
                "-n",
                fresh_lab.overlay,
                "fdb",
                "add",
                "02:99:00:00:00:01",
                "dev",
                "vxlan0",
                "dst",
                "192.0.2.77",
                "self",
                "permanent",
            ],
            check=True,
        )
        # a frame from a new MAC in c3: the bridge learns it on veth2
        subprocess.run(
            [
                "ip",
                "-n",
                fresh_lab.name("c3"),
                "link",
                "set",
                "eth0",
                "address",
                "02:99:00:00:00:02",
            ],
            check=True,
        )
        netns_shell("--net", fresh_lab.path("c3"), "-c", f"ping -c 1 -W 1 {fresh_lab.gateway_ip}")
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lines = [re.sub(r"^\[[0-9T:.-]+\] ", "", line) for line in out.splitlines()]  # the time
    assert lines[0] == "[FDB] 02:99:00:00:00:01 dev vxlan0 dst 192.0.2.77 self permanent"
    assert lines[1].startswith("[FDB] 02:99:00:00:00:02 dev veth2 master br0")


def test_watch_survives_enobufs_and_resyncs(fresh_lab):
    from netns_shell.namespace import NetNamespace
    from netns_shell.netlink.monitor import Lost, watch_events

    with NetNamespace.open_path(fresh_lab.entry_path) as ns:
        events = watch_events(ns, ("neigh",), rcvbuf=4096, duration=60)
        subprocess.run(
            ["ip", "-n", fresh_lab.overlay, "-batch", "-"],
            text=True,
            check=True,
            input="".join(
                f"neigh add 10.0.9.{100 + i} lladdr 02:98:00:00:00:{i:02x} dev br0 nud permanent\n"
                for i in range(120)
            ),
        )
        expected = {f"10.0.9.{100 + i}" for i in range(120)}
        lost, synced = 0, set()
        for event in events:  # ends after 60 s at the latest
            if isinstance(event, Lost):
                lost += 1
            elif event["event"] == "sync":
                synced.add(event["dst"])
                if expected <= synced:
                    break
        events.close()
    assert lost >= 1  # 120 events do not fit a 4 KiB buffer
    assert expected <= synced  # the resync shows them all


def test_ping_and_arping_from_inside_fill_the_neighbour_table(fresh_lab):
    c2 = fresh_lab.members[1]
    subprocess.run(["ip", "-n", fresh_lab.name("c1"), "neigh", "flush", "all"], check=True)
    run = netns_shell("--net", fresh_lab.path("c1"), "-c", f"ping -c 2 {c2.ip}")
    assert run.status == 0, run.stderr
    assert run.stdout.count(f"bytes from {c2.ip}: icmp_seq=") == 2
    assert "2 sent, 2 received, 0% loss" in run.stdout
    neigh = _json("--net", fresh_lab.path("c1"), "--json", "-c", "neigh -4")
    assert any(n["dst"] == c2.ip and n.get("lladdr") == c2.mac for n in neigh)
    run = netns_shell("--net", fresh_lab.path("c1"), "--json", "-c", f"arping -c 1 {c2.ip}")
    assert run.status == 0, run.stderr
    (reply,) = run.json
    assert (reply["from"], reply["lladdr"], reply["dev"]) == (c2.ip, c2.mac, "eth0")
    run = netns_shell("--net", fresh_lab.path("c1"), "-c", "ping -c 1 -W 0.3 10.0.9.200")
    assert run.status == 1 and "0 received, 100% loss" in run.stdout
    v6 = netns_shell("--net", fresh_lab.path("c1"), "-c", f"ping -c 1 {c2.ip6}")
    assert v6.status == 0 and f"bytes from {c2.ip6}" in v6.stdout
