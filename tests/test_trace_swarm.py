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
import os
import subprocess

import pytest

from netns_shell.engine_view import overlay_mac
from tests.conftest import netns_shell
from tests.swarmenv import (
    engine_oracle,
    fdb_oracle,
    in_overlay,
    interrupted_check,
    neigh_oracle,
    nodes_option,
    remote_tasks,
    run_check,
)
from tests.test_trace import tcpdump

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("swarm")]


@pytest.fixture
def swarm(docker_swarm):
    docker_swarm.wait_converged()
    yield docker_swarm
    docker_swarm.wait_converged()


def env_of(swarm) -> dict[str, str]:
    return {"NETNS_SHELL_PATH": ":".join(n.netns_dir for n in swarm.nodes)}


def trace(swarm, dest: str, *extra: str, nodes: str | None = None, source: str = "n1"):
    """`trace --json` from the container pinned on node `source` (c1 on n1 by default)."""
    env = env_of(swarm)
    nodes = nodes or nodes_option(swarm)
    line = " ".join(["trace", "--from", swarm.containers[source], dest, "--nodes", nodes, *extra])
    run = netns_shell("--json", "-c", line, env=env, timeout=60)
    assert run.stdout, run.stderr
    return run, run.json


def container(swarm, node) -> tuple[str, str]:
    """(IP on the overlay, sandbox file name) of the container pinned on `node`."""
    ip, key = sandbox(swarm, node)
    return ip, key.rsplit("/", 1)[-1]


def sandbox(swarm, node) -> tuple[str, str]:
    """(IP on the overlay, sandbox path) of the container pinned on `node` (docker inspect)."""
    info = json.loads(node.docker("inspect", swarm.containers[node.name]))[0]
    net = info["NetworkSettings"]["Networks"][swarm.network]
    return net["IPAddress"], info["NetworkSettings"]["SandboxKey"]


def in_ns(path: str, *argv: str, check: bool = True) -> str:
    """A host program run in the namespace file `path` (nsenter --net); its stdout."""
    return subprocess.run(
        ["nsenter", f"--net={path}", *argv], capture_output=True, text=True, check=check
    ).stdout


def ip_j(path: str, *argv: str) -> list:
    return json.loads(in_ns(path, "ip", "-j", *argv) or "[]")


def probe(swarm, dest: str, *extra: str, source: str = "n1"):
    """`trace --probe`; the hops, each with `seen`, and the probe's summary on the last."""
    run, hops = trace(swarm, dest, *extra, "--probe", source=source)
    assert "probe" in hops[-1], run.stdout
    return run, hops


def seen(hops: list[dict]) -> list:
    return [h.get("seen") for h in hops]


def ping_from_c1(swarm, ip: str, source: str = "n1") -> int:
    node = next(n for n in swarm.nodes if n.name == source)
    done = subprocess.run(
        ["docker", "-H", node.endpoint, "exec", swarm.containers[source], "ping", "-c", "1",
         "-W", "1", ip], capture_output=True, text=True, timeout=30,
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
    # names from each node's own engine: the containers, and the network of the overlay
    names = {h["netns"]: h["name"] for h in hops}
    assert names[container(swarm, n1)[1]] == swarm.containers["n1"]
    assert names[sandbox] == swarm.containers["n2"]
    overlay = os.path.basename(swarm.overlay_ns(n2))
    assert names[overlay] == json.loads(n2.docker("network", "inspect", swarm.network))[0]["Name"]
    text = netns_shell("-c", f"trace --from {swarm.containers['n1']} {ip} --nodes "
                       f"{nodes_option(swarm)}", env=env_of(swarm))  # fmt: skip
    assert f"{sandbox} ({swarm.containers['n2']})" in text.stdout
    # --probe: seen in every namespace of the path, on both nodes
    run, hops = probe(swarm, ip)
    assert run.status == 0, run.stdout
    assert seen(hops) == [True] * 8
    assert "seen at every hop" in hops[-1]["probe"] and "probe_agrees" not in hops[-1]


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
        # past the verdict, the kernel sends it to n3, where it dies (no port for c2's MAC)
        beyond = dead["beyond"]
        assert beyond[0]["step"] == "underlay" and beyond[0]["vtep"] == n3.addr
        assert {h["node"] for h in beyond[1:]} == {"n3"}
        assert beyond[-1]["verdict"] == "dropped" and beyond[-1]["reason"] == "wrong-vtep"
        assert f"places {mac} at VTEP {n2.addr}" in beyond[-1]["evidence"]
        # --probe, with tcpdump on n3 as the oracle: the probes arrive there, encapsulated
        outer = f"udp port 4789 and src host {n1.addr} and dst host {n3.addr}"
        with tcpdump(n3.netns_path, outer) as on_n3:
            run, hops = probe(swarm, ip)
        arrived = [p for p in on_n3 if f"> {ip}: ICMP echo request" in p]
        assert len(arrived) >= 2, on_n3
        dead = hops[-1]
        assert run.status == 1 and seen(hops) == [True, True, True] and dead["probe_agrees"]
        assert all(h["seen"] for h in dead["beyond"]), dead["beyond"]
        end = dead["beyond"][-1]
        said = dead["probe"]
        assert f"last seen at hop {end['hop']} (n3 {end['netns']}), past hop 3" in said
        assert f"it dies inside n3 {end['netns']} (hop {end['hop']}, bridge): wrong-vtep" in said
        assert "it dies inside n1" not in said
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
        run, hops = probe(swarm, ip)
        assert run.status == 1 and hops[-1]["probe_agrees"], run.stdout
        if side == "receiver":  # captured on n2's eth0 before INPUT drops it
            assert seen(hops) == [True] * 5
            assert f"it dies inside n2 {n2.netns} (hop 5)" in hops[-1]["probe"]
        else:  # OUTPUT drops it before it reaches n1's eth0
            assert seen(hops) == [True, True, True, False]
            assert f"first missing at hop 4 (n1 {n1.netns})" in hops[-1]["probe"]
        assert "NETFILTER_DROP" in hops[-1]["kfree_skb"]
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


def test_ctrl_c_stops_a_trace_waiting_for_a_frozen_node(swarm):
    """n3 frozen (its engine takes the connection and never answers): SIGINT while trace
    waits for it ends `-c` with 130 at once, not at the --timeout."""
    n2, n3 = swarm.nodes[1], swarm.nodes[2]
    ip, _ = container(swarm, n2)
    line = f"trace --from {swarm.containers['n1']} {ip} --nodes {nodes_option(swarm)} --timeout 15"
    thaw = swarm.freeze(n3)
    try:
        status, took, err = interrupted_check(line, 3.0, env=env_of(swarm))
    finally:
        thaw()
    assert status == 130 and "Traceback" not in err, err
    assert took < 2.5, (took, err)


def test_blackhole_route_in_the_source_container(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, _ = sandbox(swarm, n2)
    _, c1 = sandbox(swarm, n1)
    in_ns(c1, "ip", "route", "add", "blackhole", ip)
    try:
        assert ip in [r["dst"] for r in ip_j(c1, "route", "show", "type", "blackhole")]
        assert ping_from_c1(swarm, ip) != 0
        run, hops = trace(swarm, ip)
        assert run.status == 1 and len(hops) == 1, run.stdout
        dead = hops[-1]
        assert (dead["node"], dead["netns"], dead["name"], dead["step"], dead["reason"]) == (
            "n1", os.path.basename(c1), swarm.containers["n1"], "route", "blackhole",
        )  # fmt: skip
        assert f"blackhole {ip} table main" in dead["evidence"]
        run, hops = probe(swarm, ip)
        assert seen(hops) == [False] and hops[-1]["probe_agrees"]
        assert "send refused: Invalid argument; seen nowhere" in hops[-1]["probe"]
    finally:
        in_ns(c1, "ip", "route", "del", "blackhole", ip, check=False)


def test_neighbour_to_a_wrong_mac_in_the_source_container(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, _ = sandbox(swarm, n2)
    _, c1 = sandbox(swarm, n1)
    wrong = "02:42:0a:ff:00:99"
    in_ns(c1, "ip", "neigh", "replace", ip, "lladdr", wrong, "dev", "eth0", "nud", "permanent")
    try:
        assert {n["dst"]: n["lladdr"] for n in ip_j(c1, "neigh", "show", "dev", "eth0")}[
            ip
        ] == wrong
        assert wrong not in {e["mac"] for e in fdb_oracle(swarm, n1)}
        assert ping_from_c1(swarm, ip) != 0
        run, hops = trace(swarm, ip)
        assert run.status == 1, run.stdout
        dead = hops[-1]
        overlay = os.path.basename(swarm.overlay_ns(n1))
        assert (dead["node"], dead["netns"], dead["step"], dead["reason"], dead["lladdr"]) == (
            "n1", os.path.basename(c1), "route", "neigh-wrong-mac", wrong,
        )  # fmt: skip
        assert f"neighbour entry {ip} lladdr {wrong} dev eth0" in dead["evidence"]
        assert f"the engine of n1 gives {ip}" in dead["evidence"]
        assert f"MAC {overlay_mac(ip)}" in dead["evidence"]
        [past] = dead["beyond"]  # the kernel still sends it to n1's overlay bridge
        assert (past["netns"], past["step"], past["verdict"]) == (overlay, "bridge", "dropped")
        run, hops = probe(swarm, ip)
        assert seen(hops) == [True] and hops[-1]["probe_agrees"]
        assert f"it dies inside n1 {overlay} (hop 2, bridge)" in hops[-1]["probe"]
        assert "NO_TX_TARGET at vxlan_xmit" in hops[-1]["kfree_skb"]  # flooded to vxlan0
    finally:
        in_ns(c1, "ip", "neigh", "del", ip, "dev", "eth0", check=False)


def test_fdb_entry_deleted_on_the_source_node(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, _ = sandbox(swarm, n2)
    mac = overlay_mac(ip)
    in_overlay(swarm, n1, "bridge", "fdb", "del", mac, "dev", "vxlan0", "dst", n2.addr, "self")
    try:
        assert mac not in {e["mac"] for e in fdb_oracle(swarm, n1)}
        assert remote_tasks(swarm, n1)[ip] == n2.addr  # the engine still places it at n2
        assert ping_from_c1(swarm, ip) != 0
        run, hops = trace(swarm, ip)
        assert run.status == 1, run.stdout
        dead = hops[-1]
        overlay = os.path.basename(swarm.overlay_ns(n1))
        assert (dead["node"], dead["netns"], dead["step"], dead["reason"]) == (
            "n1", overlay, "vxlan", "no-fdb",
        )  # fmt: skip
        assert f"no FDB entry for {mac}" in dead["evidence"]
        run, hops = probe(swarm, ip)
        assert seen(hops) == [True, True, True] and hops[-1]["probe_agrees"]
        assert "NO_TX_TARGET at vxlan_xmit" in hops[-1]["kfree_skb"]
    finally:
        in_overlay(swarm, n1, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst", n2.addr,
                   "self", "permanent")  # fmt: skip


def test_destination_port_down_on_the_remote_node(swarm):
    n2 = swarm.nodes[1]
    ip, c2 = sandbox(swarm, n2)
    overlay = swarm.overlay_ns(n2)
    [eth0] = ip_j(c2, "link", "show", "eth0")
    port = next(
        link["ifname"] for link in ip_j(overlay, "link") if link["ifindex"] == eth0["link_index"]
    )
    in_ns(overlay, "ip", "link", "set", port, "down")
    try:
        [link] = ip_j(overlay, "link", "show", port)
        assert "UP" not in link["flags"]
        assert ping_from_c1(swarm, ip) != 0
        run, hops = trace(swarm, ip)
        assert run.status == 1, run.stdout
        dead = hops[-1]
        assert (dead["node"], dead["netns"], dead["step"], dead["reason"], dead["oif"]) == (
            "n2", os.path.basename(overlay), "bridge", "link-down", port,
        )  # fmt: skip
        run, hops = probe(swarm, ip)
        assert seen(hops) == [True] * 7 and hops[-1]["probe_agrees"]
        assert f"it dies inside n2 {os.path.basename(overlay)} (hop 7)" in hops[-1]["probe"]
    finally:
        in_ns(overlay, "ip", "link", "set", port, "up", check=False)


def test_iptables_drop_in_the_source_output(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, _ = sandbox(swarm, n2)
    _, c1 = sandbox(swarm, n1)
    rule = ["OUTPUT", "-d", ip, "-j", "DROP"]
    in_ns(c1, "iptables", "-w", "-A", *rule)
    try:
        assert ping_from_c1(swarm, ip) != 0
        assert f"[1:84] -A OUTPUT -d {ip}/32 -j DROP" in in_ns(c1, "iptables-save", "-c")
        run, hops = trace(swarm, ip)
        assert run.status == 1 and len(hops) == 1, run.stdout
        dead = hops[-1]
        assert (dead["node"], dead["netns"], dead["reason"]) == (
            "n1",
            os.path.basename(c1),
            "netfilter",
        )
        assert f"-A OUTPUT -d {ip}/32 -j DROP [1 pkts, 84 B]" in dead["evidence"]
        run, hops = probe(swarm, ip)
        assert seen(hops) == [False] and hops[-1]["probe_agrees"]
        assert "send refused: Operation not permitted; seen nowhere" in hops[-1]["probe"]
        assert "NETFILTER_DROP" in hops[-1]["kfree_skb"]
        assert f"[3:252] -A OUTPUT -d {ip}/32" in in_ns(c1, "iptables-save", "-c")
    finally:
        in_ns(c1, "iptables", "-w", "-D", *rule, check=False)


def test_iptables_drop_in_the_destination_input(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, c2 = sandbox(swarm, n2)
    src, _ = sandbox(swarm, n1)
    rule = ["INPUT", "-s", src, "-p", "icmp", "-j", "DROP"]
    in_ns(c2, "iptables", "-w", "-A", *rule)
    try:
        assert ping_from_c1(swarm, ip) != 0
        assert f"[1:84] -A INPUT -s {src}/32 -p icmp -j DROP" in in_ns(c2, "iptables-save", "-c")
        run, hops = trace(swarm, ip)
        assert run.status == 1, run.stdout
        dead = hops[-1]
        assert (dead["node"], dead["netns"], dead["name"], dead["step"], dead["reason"]) == (
            "n2", os.path.basename(c2), swarm.containers["n2"], "deliver", "netfilter",
        )  # fmt: skip
        assert f"-A INPUT -s {src}/32 -p icmp -j DROP [1 pkts, 84 B]" in dead["evidence"]
        run, hops = probe(swarm, ip)
        # captured in c2 before INPUT drops it: seen on every hop, dies inside c2
        assert seen(hops) == [True] * 8 and hops[-1]["probe_agrees"]
        assert "NETFILTER_DROP" in hops[-1]["kfree_skb"]
        run, hops = trace(swarm, ip, "--proto", "udp", "--port", "53")
        assert run.status == 0, run.stdout  # the icmp rule does not match udp: no false alarm
    finally:
        in_ns(c2, "iptables", "-w", "-D", *rule, check=False)


def test_underlay_mtu_1400_with_size_1450(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, _ = sandbox(swarm, n2)
    _, c1 = sandbox(swarm, n1)
    in_ns(n1.netns_path, "ip", "link", "set", "eth0", "mtu", "1400")
    try:
        [eth0] = ip_j(n1.netns_path, "link", "show", "eth0")
        assert eth0["mtu"] == 1400
        run, hops = trace(swarm, ip, "--size", "1450")
        assert run.status == 1, run.stdout
        dead = hops[-1]
        assert (dead["node"], dead["netns"], dead["step"], dead["reason"], dead["mtu"]) == (
            "n1", n1.netns, "underlay", "mtu", 1400,
        )  # fmt: skip
        assert "1500 B > MTU 1400 of eth0" in dead["evidence"]
        run, hops = probe(swarm, ip, "--size", "1450")
        assert seen(hops) == [True, True, True, False] and hops[-1]["probe_agrees"]
        assert f"first missing at hop 4 (n1 {n1.netns})" in hops[-1]["probe"]
        # the kernel agrees: the vxlan device sent c1 frag-needed, c1 now refuses 1450 B with DF
        said = subprocess.run(
            ["docker", "-H", n1.endpoint, "exec", swarm.containers["n1"], "ping", "-c", "1",
             "-W", "1", "-M", "do", "-s", "1422", ip], capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert said.returncode != 0
    finally:
        in_ns(n1.netns_path, "ip", "link", "set", "eth0", "mtu", "1500", check=False)
        in_ns(c1, "ip", "route", "flush", "cache", check=False)  # forget the learnt path MTU


def test_forwarding_off_everywhere_on_the_overlay_path_is_no_alarm(swarm):
    """The overlay path is bridged (br0, vxlan0) and the VXLAN socket is local on each node:
    no namespace on it routes between interfaces, so forwarding is not needed there."""
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, c2 = sandbox(swarm, n2)
    _, c1 = sandbox(swarm, n1)
    places = [c1, swarm.overlay_ns(n1), n1.netns_path, n2.netns_path, swarm.overlay_ns(n2), c2]
    before = {p: in_ns(p, "sysctl", "-n", "net.ipv4.ip_forward").strip() for p in places}
    try:
        for path in places:
            in_ns(path, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        assert {in_ns(p, "sysctl", "-n", "net.ipv4.ip_forward").strip() for p in places} == {"0"}
        assert ping_from_c1(swarm, ip) == 0
        run, hops = trace(swarm, ip)
        assert run.status == 0 and not any(h.get("reason") for h in hops), run.stdout
        run, hops = probe(swarm, ip)
        assert run.status == 0 and seen(hops) == [True] * 8
    finally:
        for path, value in before.items():
            in_ns(path, "sysctl", "-qw", f"net.ipv4.ip_forward={value}", check=False)


def test_vxlan_neighbour_to_a_wrong_mac_is_named(swarm):
    """n2's vxlan0 answers ARP for c1 with a wrong MAC: the verdict names that entry, the
    MAC it holds and the one the engine gives c1, at the hop whose neighbour it is."""
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, _ = sandbox(swarm, n1)
    _, c2 = sandbox(swarm, n2)
    right = overlay_mac(ip)
    wrong = right[:-2] + ("99" if not right.endswith("99") else "98")
    overlay = os.path.basename(swarm.overlay_ns(n2))
    in_overlay(swarm, n2, "ip", "neigh", "replace", ip, "lladdr", wrong, "dev", "vxlan0",
               "nud", "permanent")  # fmt: skip
    in_ns(c2, "ip", "neigh", "del", ip, "dev", "eth0", check=False)  # c2 asks ARP afresh
    try:
        assert neigh_oracle(swarm, n2)[ip]["lladdr"] == wrong
        info = json.loads(n1.docker("inspect", swarm.containers["n1"]))[0]
        assert info["NetworkSettings"]["Networks"][swarm.network]["MacAddress"] == right
        checked = run_check(swarm, first=n2)
        assert ("mac-ip-mismatch", ip, wrong) in [(f["kind"], f.get("ip"), f.get("mac"))
                                                   for f in checked.json]  # fmt: skip
        run, hops = trace(swarm, ip, source="n2")
        assert run.status == 1, run.stdout
        dead = hops[-1]
        assert (dead["node"], dead["netns"], dead["step"], dead["reason"], dead["lladdr"]) == (
            "n2", os.path.basename(c2), "route", "neigh-wrong-mac", wrong,
        )  # fmt: skip
        evidence = dead["evidence"]
        assert f"neighbour entry {ip} lladdr {wrong} dev vxlan0 in {overlay}" in evidence
        assert f"the engine of n2 gives {ip}" in evidence and f"MAC {right}" in evidence
        # the kernel agrees: c2's ping dies, and its ARP learnt the wrong MAC from vxlan0
        assert ping_from_c1(swarm, ip, source="n2") != 0
        assert {n["dst"]: n.get("lladdr") for n in ip_j(c2, "neigh", "show", "dev", "eth0")}[
            ip
        ] == wrong
        run, hops = trace(swarm, ip, source="n2")  # now c2's own entry holds the wrong MAC
        assert hops[-1]["reason"] == "neigh-wrong-mac" and wrong in hops[-1]["evidence"]
        assert f"{ip} lladdr {wrong} dev vxlan0 in {overlay}" in hops[-1]["evidence"]
        # past hop 1 the kernel sends it into n2's overlay, where nothing has that MAC
        beyond = hops[-1]["beyond"]
        assert (beyond[-1]["node"], beyond[-1]["netns"], beyond[-1]["verdict"]) == (
            "n2", overlay, "dropped",
        )  # fmt: skip
        with tcpdump(swarm.overlay_ns(n2), f"icmp and dst host {ip}") as in_overlay_ns:
            run, hops = probe(swarm, ip, source="n2")
        assert len([p for p in in_overlay_ns if "echo request" in p]) >= 2, in_overlay_ns
        dead = hops[-1]
        assert seen(hops) == [True] and dead["probe_agrees"]
        assert f"it dies inside n2 {overlay}" in dead["probe"]
    finally:
        in_overlay(swarm, n2, "ip", "neigh", "replace", ip, "lladdr", right, "dev", "vxlan0",
                   "nud", "permanent")  # fmt: skip
        in_ns(c2, "ip", "neigh", "del", ip, "dev", "eth0", check=False)


def test_a_remote_mac_the_control_plane_programmed_is_no_false_alarm(swarm):
    """An engine that gives c2 a MAC not derived from its address (as it would with random
    MACs) programs it in both the neighbour and the FDB entry: the trace delivers, as the
    kernel does, although the MAC is not 02:42 + the address."""
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, c2 = sandbox(swarm, n2)
    _, c1 = sandbox(swarm, n1)
    derived, other = overlay_mac(ip), "02:42:0a:c7:aa:bb"
    [eth0] = ip_j(c2, "link", "show", "eth0")
    assert eth0["address"] == derived
    in_ns(c2, "ip", "link", "set", "eth0", "address", other)
    in_overlay(swarm, n1, "bridge", "fdb", "replace", other, "dev", "vxlan0", "dst", n2.addr,
               "self", "permanent")  # fmt: skip
    in_overlay(swarm, n1, "ip", "neigh", "replace", ip, "lladdr", other, "dev", "vxlan0",
               "nud", "permanent")  # fmt: skip
    in_ns(c1, "ip", "neigh", "del", ip, "dev", "eth0", check=False)
    try:
        assert ping_from_c1(swarm, ip) == 0  # the kernel delivers it
        assert {n["dst"]: n.get("lladdr") for n in ip_j(c1, "neigh", "show", "dev", "eth0")}[
            ip
        ] == other
        run, hops = trace(swarm, ip)
        assert run.status == 0 and not any(h.get("reason") for h in hops), run.stdout
        assert hops[0]["lladdr"] == other and hops[-1]["node"] == "n2"
    finally:
        in_ns(c2, "ip", "link", "set", "eth0", "address", derived, check=False)
        in_overlay(swarm, n1, "ip", "neigh", "replace", ip, "lladdr", derived, "dev", "vxlan0",
                   "nud", "permanent")  # fmt: skip
        in_overlay(swarm, n1, "bridge", "fdb", "del", other, "dev", "vxlan0", "dst", n2.addr,
                   "self")  # fmt: skip
        in_ns(c1, "ip", "neigh", "del", ip, "dev", "eth0", check=False)


def test_the_kernel_delivering_overrules_the_engine(swarm):
    """c2's MAC is one the engine does not give it and n1 reaches it only through a default
    FDB entry (no entry names that MAC): the engine's view says "wrong MAC", the kernel
    delivers it (ping), and the trace says delivered, with the engine's word as a note."""
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip, c2 = sandbox(swarm, n2)
    _, c1 = sandbox(swarm, n1)
    derived, other = overlay_mac(ip), "02:42:0a:c7:aa:bc"
    zero = "00:00:00:00:00:00"
    in_ns(c2, "ip", "link", "set", "eth0", "address", other)
    in_overlay(swarm, n1, "bridge", "fdb", "append", zero, "dev", "vxlan0", "dst", n2.addr,
               "self", "permanent")  # fmt: skip
    in_ns(c1, "ip", "neigh", "replace", ip, "lladdr", other, "dev", "eth0", "nud", "permanent")
    try:
        assert other not in {e["mac"] for e in fdb_oracle(swarm, n1)}
        run, hops = trace(swarm, ip)  # before the ping: its answer teaches vxlan0 the MAC
        assert run.status == 0, run.stdout
        assert hops[-1]["verdict"] == "delivered" and hops[-1]["node"] == "n2"
        assert hops[0]["note"].startswith("not neigh-wrong-mac: ") and derived in hops[0]["note"]
        assert ping_from_c1(swarm, ip) == 0  # the kernel delivers it
    finally:
        in_ns(c1, "ip", "neigh", "del", ip, "dev", "eth0", check=False)
        in_ns(c2, "ip", "link", "set", "eth0", "address", derived, check=False)
        in_overlay(swarm, n1, "bridge", "fdb", "del", zero, "dev", "vxlan0", "dst", n2.addr,
                   "self")  # fmt: skip
