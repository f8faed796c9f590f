"""`trace` on the single-host lab: each fault planted for real, the hop and reason named.

The lab (netns_shell.lab): containers c1..c3 on veths into the overlay
namespace's bridge br0, vxlan0 with remote VTEPs whose UDP socket lives in
the underlay namespace `ul`.  Each test plants one fault with iproute2 /
iptables / sysctl and checks the named hop against an independent oracle
(`ip -j route get`, `ip -j neigh`, `bridge -j fdb`, `iptables-save -c` and a
real ping whose fate the kernel decides).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import bridge_json, ip_json, netns_shell


def trace(lab, *args: str):
    run = netns_shell("--json", "-c", " ".join(["trace", "--from", lab.name("c1"), *args]))
    assert run.status in (0, 1, 2), run.stderr
    hops = run.json
    assert hops and hops[-1]["hop"] == len(hops), run.stdout
    return run, hops


def in_ns(lab, role: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nsenter", f"--net={lab.path(role)}", *argv], capture_output=True, text=True, check=check
    )


def route_get(lab, role: str, *args: str) -> tuple[list, str]:
    """`ip -j route get ...` in the namespace: (records, error text)."""
    done = subprocess.run(
        ["ip", "-n", lab.name(role), "-j", "route", "get", *args], capture_output=True, text=True
    )
    return (json.loads(done.stdout) if done.returncode == 0 else []), done.stderr.strip()


def ping(lab, role: str, dst: str, *extra: str) -> subprocess.CompletedProcess:
    return in_ns(lab, role, "ping", "-c", "1", "-W", "1", *extra, dst, check=False)


def last(hops: list[dict]) -> dict:
    return hops[-1]


def seen(hops: list[dict]) -> list:
    return [h.get("seen") for h in hops]


def test_healthy_path_is_delivered_with_no_false_alarm(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    run, hops = trace(lab, c2.ip)
    assert run.status == 0, run.stdout
    assert [h["verdict"] for h in hops] == ["forwarded", "forwarded", "delivered"]
    assert not any(h.get("reason") for h in hops)
    assert [h["netns"] for h in hops] == [lab.name("c1"), lab.name("ovl"), lab.name("c2")]
    # the oracle: the kernel's own route and neighbour in c1, the bridge's FDB in ovl
    [oracle] = route_get(lab, "c1", c2.ip)[0]
    assert hops[0]["oif"] == oracle["dev"] and hops[0]["src"] == oracle["prefsrc"]
    neigh = {n["dst"]: n for n in ip_json("-n", lab.name("c1"), "neigh", "show", "dev", "eth0")}
    assert hops[0]["lladdr"] == neigh[c2.ip]["lladdr"]
    fdb = {e["mac"]: e for e in bridge_json("-n", lab.name("ovl"), "fdb", "show", "br", "br0")}
    assert hops[1]["oif"] == fdb[c2.mac]["ifname"] == c2.bridge_port
    assert ping(lab, "c1", c2.ip).returncode == 0
    text = netns_shell("-c", f"trace --from {lab.name('c1')} {c2.ip}")
    assert text.status == 0
    assert text.stdout.strip().splitlines()[-1].startswith(f"delivered to {lab.name('c2')}")


def test_blackhole_route_in_the_source(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    subprocess.run(["ip", "-n", lab.name("c1"), "route", "add", "blackhole", c2.ip], check=True)
    assert route_get(lab, "c1", c2.ip)[1] == "RTNETLINK answers: Invalid argument"
    assert [r["dst"] for r in ip_json("-n", lab.name("c1"), "route", "show", "type", "blackhole")]
    run, hops = trace(lab, c2.ip)
    assert run.status == 1
    assert len(hops) == 1
    assert (last(hops)["netns"], last(hops)["reason"]) == (lab.name("c1"), "blackhole")
    assert f"blackhole {c2.ip}" in last(hops)["evidence"]
    run, hops = trace(lab, c2.ip, "--probe")
    assert seen(hops) == [False] and last(hops)["probe_agrees"]
    assert "send refused: Invalid argument; seen nowhere" in last(hops)["probe"]


def test_neighbour_to_a_wrong_mac(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    wrong = "02:42:0a:00:09:99"
    subprocess.run(["ip", "-n", lab.name("c1"), "neigh", "replace", c2.ip, "lladdr", wrong,
                    "dev", "eth0", "nud", "permanent"], check=True)  # fmt: skip
    neigh = {n["dst"]: n for n in ip_json("-n", lab.name("c1"), "neigh", "show", "dev", "eth0")}
    assert neigh[c2.ip]["lladdr"] == wrong
    macs = {e["mac"] for e in bridge_json("-n", lab.name("ovl"), "fdb", "show", "br", "br0")}
    assert wrong not in macs
    assert ping(lab, "c1", c2.ip).returncode != 0  # the kernel agrees: it dies
    run, hops = trace(lab, c2.ip)
    assert run.status == 1
    # named at the hop whose neighbour it is: the entry, the MAC it holds, c2's real one
    dead = last(hops)
    assert (dead["hop"], dead["netns"], dead["step"], dead["reason"], dead["lladdr"]) == (
        1, lab.name("c1"), "route", "neigh-wrong-mac", wrong,
    )  # fmt: skip
    evidence = dead["evidence"]
    assert f"neighbour entry {c2.ip} lladdr {wrong} dev eth0 in {lab.name('c1')}" in evidence
    assert f"{c2.ip} is on eth0 in {lab.name('c2')}, MAC {c2.mac}" in evidence
    # the kernel still sends it to ovl's bridge, which has no port for that MAC
    [past] = dead["beyond"]
    assert (past["netns"], past["step"], past["verdict"]) == (lab.name("ovl"), "bridge", "dropped")
    run, hops = trace(lab, c2.ip, "--probe")
    assert seen(hops) == [True] and last(hops)["probe_agrees"]
    assert last(hops)["beyond"][0]["seen"]
    assert f"it dies inside local {lab.name('ovl')} (hop 2, bridge)" in last(hops)["probe"]
    assert "NO_TX_TARGET at vxlan_xmit" in last(hops)["kfree_skb"]  # flooded to vxlan0


def test_deleted_fdb_entry_of_a_remote_endpoint(fresh_lab):
    lab = fresh_lab
    remote = lab.remotes[0]
    _run, before = trace(lab, remote.ip)
    assert any(h["step"] == "vxlan" and h.get("vtep") == remote.vtep for h in before)
    subprocess.run(["bridge", "-n", lab.name("ovl"), "fdb", "del", remote.mac, "dev", "vxlan0",
                    "dst", remote.vtep, "self"], check=True)  # fmt: skip
    fdb = bridge_json("-n", lab.name("ovl"), "fdb", "show", "dev", "vxlan0")
    assert remote.mac not in {e["mac"] for e in fdb}
    run, hops = trace(lab, remote.ip)
    assert run.status == 1
    assert (last(hops)["netns"], last(hops)["reason"]) == (lab.name("ovl"), "no-fdb")
    assert remote.mac in last(hops)["evidence"]
    run, hops = trace(lab, remote.ip, "--probe")
    assert seen(hops) == [True, True] and last(hops)["probe_agrees"]
    assert "NO_TX_TARGET at vxlan_xmit" in last(hops)["kfree_skb"]


def test_deleted_local_fdb_entry_is_flooded_and_still_delivered(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    # no learning on the port, or the kernel learns the MAC again from c2's own packets
    subprocess.run(["bridge", "-n", lab.name("ovl"), "link", "set", "dev", c2.bridge_port,
                    "learning", "off"], check=True)  # fmt: skip
    subprocess.run(["bridge", "-n", lab.name("ovl"), "fdb", "del", c2.mac, "dev", c2.bridge_port,
                    "master"], check=True)  # fmt: skip
    fdb = bridge_json("-n", lab.name("ovl"), "fdb", "show", "br", "br0")
    assert c2.mac not in {e["mac"] for e in fdb}
    run, hops = trace(lab, c2.ip)
    assert run.status == 0, run.stdout
    assert "flooded" in hops[1]["match"] and hops[1]["oif"] == c2.bridge_port
    assert ping(lab, "c1", c2.ip).returncode == 0


def test_fdb_entry_to_an_unreachable_vtep(fresh_lab):
    lab = fresh_lab
    remote = lab.remotes[0]
    subprocess.run(["bridge", "-n", lab.name("ovl"), "fdb", "replace", remote.mac, "dev",
                    "vxlan0", "dst", "198.51.100.7", "self", "permanent"], check=True)  # fmt: skip
    assert route_get(lab, "ul", "198.51.100.7")[1] == "RTNETLINK answers: Network is unreachable"
    run, hops = trace(lab, remote.ip)
    assert run.status == 1
    dead = last(hops)
    assert (dead["netns"], dead["step"], dead["reason"]) == (
        lab.name("ul"),
        "underlay",
        "vtep-unreachable",
    )
    assert hops[-2]["vtep"] == "198.51.100.7"
    run, hops = trace(lab, remote.ip, "--probe")
    assert seen(hops) == [True, True, True, False] and last(hops)["probe_agrees"]
    assert f"first missing at hop 4 (local {lab.name('ul')})" in last(hops)["probe"]
    assert "IP_OUTNOROUTES at vxlan_xmit_one" in last(hops)["kfree_skb"]


def test_link_down_along_the_path(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    subprocess.run(["ip", "-n", lab.name("ovl"), "link", "set", c2.bridge_port, "down"], check=True)
    [link] = ip_json("-n", lab.name("ovl"), "link", "show", c2.bridge_port)
    assert "UP" not in link["flags"]
    assert ping(lab, "c1", c2.ip).returncode != 0
    run, hops = trace(lab, c2.ip)
    assert run.status == 1
    dead = last(hops)
    assert (dead["netns"], dead["reason"], dead["oif"]) == (
        lab.name("ovl"),
        "link-down",
        c2.bridge_port,
    )


def test_iptables_drop_in_the_source_output(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    in_ns(lab, "c1", "iptables", "-w", "-A", "OUTPUT", "-d", c2.ip, "-j", "DROP")
    assert ping(lab, "c1", c2.ip).returncode != 0
    saved = in_ns(lab, "c1", "iptables-save", "-c").stdout
    assert f"-A OUTPUT -d {c2.ip}/32 -j DROP" in saved and "[1:84] -A OUTPUT" in saved
    run, hops = trace(lab, c2.ip)
    assert run.status == 1
    assert len(hops) == 1
    dead = last(hops)
    assert (dead["netns"], dead["reason"]) == (lab.name("c1"), "netfilter")
    assert f"-A OUTPUT -d {c2.ip}/32 -j DROP [1 pkts, 84 B]" in dead["evidence"]


def test_iptables_drop_in_the_destination_input(fresh_lab):
    lab = fresh_lab
    c1, c2 = lab.members[0], lab.members[1]
    in_ns(lab, "c2", "iptables", "-w", "-A", "INPUT", "-s", c1.ip, "-p", "icmp", "-j", "DROP")
    assert ping(lab, "c1", c2.ip).returncode != 0
    run, hops = trace(lab, c2.ip)
    assert run.status == 1
    dead = last(hops)
    assert (dead["netns"], dead["step"], dead["reason"]) == (lab.name("c2"), "deliver", "netfilter")
    assert "-A INPUT -s 10.0.9.2/32 -p icmp -j DROP [1 pkts, 84 B]" in dead["evidence"]
    run, hops = trace(lab, c2.ip, "--probe")
    assert seen(hops) == [True, True, True] and last(hops)["probe_agrees"]  # captured, then INPUT
    assert "NETFILTER_DROP" in last(hops)["kfree_skb"]
    # udp to the same host is not matched by an icmp rule: no false alarm
    run, hops = trace(lab, c2.ip, "--proto", "udp", "--port", "53")
    assert run.status == 0, run.stdout


def test_underlay_mtu_1400_with_size_1450(fresh_lab):
    lab = fresh_lab
    remote = lab.remotes[0]
    subprocess.run(["ip", "-n", lab.name("ul"), "link", "set", "ul0", "mtu", "1400"], check=True)
    [ul0] = ip_json("-n", lab.name("ul"), "link", "show", "ul0")
    assert ul0["mtu"] == 1400
    run, hops = trace(lab, remote.ip, "--size", "1450")
    assert run.status == 1
    dead = last(hops)
    assert (dead["netns"], dead["step"], dead["reason"], dead["mtu"]) == (
        lab.name("ul"),
        "underlay",
        "mtu",
        1400,
    )
    assert "1500 B > MTU 1400 of ul0" in dead["evidence"]
    # too big for the container's own link: dropped in the source, as ping -M do says
    [eth0] = ip_json("-n", lab.name("c1"), "link", "show", "eth0")
    run, hops = trace(lab, remote.ip, "--size", str(eth0["mtu"] + 1))
    assert (last(hops)["netns"], last(hops)["reason"], last(hops)["mtu"]) == (
        lab.name("c1"),
        "mtu",
        eth0["mtu"],
    )
    said = ping(lab, "c1", remote.ip, "-M", "do", "-s", str(eth0["mtu"] + 1 - 28))
    assert f"mtu={eth0['mtu']}" in said.stdout + said.stderr


def test_forwarding_disabled_where_it_is_needed(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    routed = "10.0.99.5"
    subprocess.run(["ip", "-n", lab.name("c2"), "addr", "add", f"{routed}/32", "dev", "lo"],
                   check=True)  # fmt: skip
    subprocess.run(["ip", "-n", lab.name("ovl"), "route", "add", "10.0.99.0/24", "via", c2.ip],
                   check=True)  # fmt: skip
    in_ns(lab, "ovl", "sysctl", "-qw", "net.ipv4.ip_forward=0")
    error = route_get(lab, "ovl", routed, "from", lab.members[0].ip, "iif", "br0")[1]
    assert error == "RTNETLINK answers: No route to host"
    run, hops = trace(lab, routed)
    assert run.status == 1
    dead = last(hops)
    assert (dead["netns"], dead["step"], dead["reason"]) == (
        lab.name("ovl"),
        "forward",
        "forwarding-disabled",
    )
    assert "net.ipv4.conf.br0.forwarding = 0" in dead["evidence"]
    run, hops = trace(lab, routed, "--probe")
    assert seen(hops) == [True, True, True] and last(hops)["probe_agrees"]
    assert "IP_INADDRERRORS at ip_error" in last(hops)["kfree_skb"]
    in_ns(lab, "ovl", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    run, hops = trace(lab, routed)
    assert run.status == 0, run.stdout
    assert last(hops)["netns"] == lab.name("c2")
    assert ping(lab, "c1", routed).returncode == 0


@contextmanager
def tcpdump(path: str, expression: str) -> Iterator[list[str]]:
    """tcpdump -i any in the namespace file `path` during the block (the oracle of what was
    really sent); afterwards the list holds one line per packet it captured."""
    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, "oracle.pcap")
        proc = subprocess.Popen(
            ["nsenter", f"--net={path}", "tcpdump", "-i", "any", "-nn", "-U",
             "--immediate-mode", "-w", pcap, expression],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        packets: list[str] = []
        try:
            assert proc.stderr is not None
            for said in proc.stderr:  # "data link type ...", then "listening on ..."
                if "listening on" in said:
                    break
            yield packets
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        read = subprocess.run(["tcpdump", "-nn", "-r", pcap], capture_output=True,
                              text=True, check=True)  # fmt: skip
        packets += read.stdout.splitlines()


def test_usage_errors_exit_2(lab):
    run = netns_shell("-c", f"trace --from {lab.name('c1')} 10.0.9.3 --port 80")
    assert run.status == 2 and "--port needs --proto" in run.stderr


def test_bad_input_exits_2_with_one_line_never_1_dropped(lab):
    """1 means "dropped": a trace that cannot even start says why in one line and exits 2."""
    c1 = lab.name("c1")
    cases = {
        "trace --from no-such-ns-4711 10.0.9.3": "no namespace named 'no-such-ns-4711'",
        f"trace --from {c1} 999.1.1.1": "'999.1.1.1' is not an IP address",
        f"trace --from {c1} 10.0.9": "'10.0.9' is not an IP address",
        f"trace --from {c1} no-such-container-4711": "no namespace named 'no-such-container",
    }
    for line, said in cases.items():
        run = netns_shell("-c", line)
        assert run.status == 2, (line, run.stderr)
        assert run.stdout == "" and said in run.stderr, (line, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert run.stderr.startswith("netns-shell: trace: "), run.stderr
    run = netns_shell("--json", "-c", line)
    assert run.status == 2 and run.stdout == ""


def test_read_only_refuses_probe_but_traces(lab):
    """--probe sends packets: refused under --read-only (tcpdump in c1 sees none); the
    static trace sends nothing and still works."""
    c2 = lab.members[1]
    with tcpdump(lab.path("c1"), f"icmp and host {c2.ip}") as sent:
        run = netns_shell("--read-only", "-c", f"trace --from {lab.name('c1')} {c2.ip} --probe")
    assert run.status == 2 and run.stdout == "", run.stdout
    assert run.stderr.strip() == (
        "netns-shell: trace --probe: disabled in --read-only mode (it sends packets)"
    )
    assert sent == []
    with tcpdump(lab.path("c1"), f"icmp and host {c2.ip}") as sent:
        run = netns_shell("--read-only", "-c", f"trace --from {lab.name('c1')} {c2.ip}")
    assert run.status == 0 and "delivered to" in run.stdout, run.stderr
    assert sent == []
    # the oracle sees a probe when one is sent (outside --read-only)
    with tcpdump(lab.path("c1"), f"icmp and host {c2.ip}") as sent:
        run = netns_shell("-c", f"trace --from {lab.name('c1')} {c2.ip} --probe")
    assert run.status == 0 and len([p for p in sent if "echo request" in p]) >= 2, sent


def test_udp_4789_dropped_leaving_the_underlay(fresh_lab):
    lab = fresh_lab
    remote = lab.remotes[0]
    in_ns(lab, "ul", "iptables", "-w", "-A", "OUTPUT", "-p", "udp", "--dport", "4789", "-j", "DROP")
    ping(lab, "c1", remote.ip)
    saved = in_ns(lab, "ul", "iptables-save", "-c").stdout
    assert "[1:134] -A OUTPUT -p udp -m udp --dport 4789 -j DROP" in saved  # 84 B + 50 B VXLAN
    run, hops = trace(lab, remote.ip)
    assert run.status == 1
    dead = last(hops)
    assert (dead["netns"], dead["step"], dead["reason"]) == (
        lab.name("ul"),
        "underlay",
        "netfilter",
    )
    assert "-A OUTPUT -p udp -m udp --dport 4789 -j DROP [1 pkts, 134 B]" in dead["evidence"]
    run, hops = trace(lab, remote.ip, "--probe")
    assert seen(hops) == [True, True, True, False] and last(hops)["probe_agrees"]
    assert f"first missing at hop 4 (local {lab.name('ul')})" in last(hops)["probe"]
    assert "NETFILTER_DROP" in last(hops)["kfree_skb"]


def test_probe_healthy_path_is_seen_at_every_hop(fresh_lab):
    lab = fresh_lab
    run, hops = trace(lab, lab.members[1].ip, "--probe")
    assert run.status == 0, run.stdout
    assert [h["seen"] for h in hops] == [True, True, True]
    assert "seen at every hop" in hops[-1]["probe"]
    assert hops[-1]["kfree_skb"].startswith("kfree_skb")


def test_probe_underlay_mtu_last_seen_and_first_missing(fresh_lab):
    lab = fresh_lab
    subprocess.run(["ip", "-n", lab.name("ul"), "link", "set", "ul0", "mtu", "1400"], check=True)
    run, hops = trace(lab, lab.remotes[0].ip, "--size", "1450", "--probe")
    assert run.status == 1
    assert [h["seen"] for h in hops] == [True, True, True, False]
    assert f"last seen at hop 3 (local {lab.name('ovl')})" in hops[-1]["probe"]
    assert f"first missing at hop 4 (local {lab.name('ul')})" in hops[-1]["probe"]


def test_probe_source_output_drop_is_seen_nowhere(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    in_ns(lab, "c1", "iptables", "-w", "-A", "OUTPUT", "-d", c2.ip, "-j", "DROP")
    run, hops = trace(lab, c2.ip, "--probe")
    assert run.status == 1 and hops[-1]["reason"] == "netfilter"
    assert hops[0]["seen"] is False
    assert "send refused: Operation not permitted" in hops[-1]["probe"]
    assert "seen nowhere" in hops[-1]["probe"]
    counted = in_ns(lab, "c1", "iptables-save", "-c").stdout
    assert "[2:168] -A OUTPUT" in counted  # both probes died on that rule


def test_probe_link_down_first_missing_in_the_destination(fresh_lab):
    lab = fresh_lab
    c2 = lab.members[1]
    subprocess.run(["ip", "-n", lab.name("ovl"), "link", "set", c2.bridge_port, "down"], check=True)
    run, hops = trace(lab, c2.ip, "--probe")
    assert run.status == 1 and hops[-1]["reason"] == "link-down"
    assert [h["seen"] for h in hops] == [True, True]
    assert "seen at every hop" in hops[-1]["probe"]  # it dies leaving ovl: c2 is not on the path
