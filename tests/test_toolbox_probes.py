"""ping -M/-s/-I, tcping and traceroute through a real routed path of three namespaces
(A - R - B, the R-B link with MTU 1400), checked against traceroute(8), `ip route get`
(the path MTU the kernel learnt) and the listener's own view."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import netns_shell, unique, wait_listening


def _ip(ns: str, *args: str) -> None:
    subprocess.run(["ip", "-n", ns, *args], check=True)


@pytest.fixture(scope="module")
def routed() -> Iterator[dict[str, str]]:
    names = {role: unique(f"nst-p{role}") for role in ("a", "r", "b")}
    a, r, b = names["a"], names["r"], names["b"]
    server = None
    try:
        for ns in names.values():
            subprocess.run(["ip", "netns", "add", ns], check=True)
            _ip(ns, "link", "set", "lo", "up")
        _ip(a, "link", "add", "ar", "type", "veth", "peer", "ra", "netns", r)
        _ip(r, "link", "add", "vrb", "type", "veth", "peer", "vbr", "netns", b)
        for ns, dev, addr in (
            (a, "ar", "10.81.1.1/24"),
            (r, "ra", "10.81.1.2/24"),
            (r, "vrb", "10.81.2.1/24"),
            (b, "vbr", "10.81.2.2/24"),
        ):
            _ip(ns, "addr", "add", addr, "dev", dev)
            _ip(ns, "link", "set", dev, "up")
        _ip(r, "link", "set", "vrb", "mtu", "1400")
        _ip(b, "link", "set", "vbr", "mtu", "1400")
        _ip(a, "route", "add", "default", "via", "10.81.1.2")
        _ip(b, "route", "add", "default", "via", "10.81.2.1")
        _ip(r, "route", "add", "prohibit", "10.81.9.0/24")
        subprocess.run(
            ["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True
        )
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                r,
                "nft",
                "add table inet f; add chain inet f fw { type filter hook forward priority 0; }; "
                "add rule inet f fw tcp dport 8082 drop",
            ],
            check=True,
        )
        listener = (
            "import socket, time; s = socket.socket(); s.bind(('0.0.0.0', 8080)); "
            "s.listen(64); time.sleep(600)"  # the kernel completes handshakes: no accept()
        )
        server = subprocess.Popen(["ip", "netns", "exec", b, "python3", "-c", listener])
        wait_listening(b, 8080)  # tcping's "open" needs it
        yield names
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _run(ns: str, command: str):
    return netns_shell("--net", f"/var/run/netns/{ns}", "--json", "-c", command)


def test_traceroute_matches_traceroute_tool(routed):
    run = _run(routed["a"], "traceroute -q 1 -w 1 10.81.2.2")
    assert run.status == 0, run.stderr
    mine = [hop["address"] for hop in run.json]
    ref = subprocess.check_output(
        [
            "nsenter",
            f"--net=/var/run/netns/{routed['a']}",
            "traceroute",
            "-n",
            "-q",
            "1",
            "-w",
            "1",
            "10.81.2.2",
        ],
        text=True,
    )
    hops = [re.split(r"\s+", line.strip())[1] for line in ref.splitlines()[1:]]
    assert mine == hops == ["10.81.1.2", "10.81.2.2"]
    assert run.json[-1]["reached"] is True and run.json[0]["reached"] is False
    blocked = _run(routed["a"], "traceroute -q 1 -w 1 -m 3 10.81.9.9")
    assert blocked.status == 1
    assert blocked.json[0]["address"] == "10.81.1.2" and blocked.json[0]["marks"] == ["!X"]


def test_tcping_open_refused_timeout_unreachable(routed):
    a = routed["a"]
    results = {}
    for port_or_host, command in (
        ("open", "tcping -c 2 10.81.2.2 8080"),
        ("refused", "tcping -c 1 10.81.2.2 8081"),
        ("timeout", "tcping -c 1 -W 0.5 10.81.2.2 8082"),
        ("unreachable", "tcping -c 1 10.81.9.9 80"),
    ):
        run = _run(a, command)
        results[port_or_host] = run
        assert {r["result"] for r in run.json} == {port_or_host}, (command, run.json)
    assert results["open"].status == 0 and all(r["time_ms"] > 0 for r in results["open"].json)
    assert results["refused"].status == 1 and results["refused"].json[0]["time_ms"] > 0
    assert results["timeout"].json[0]["time_ms"] is None


def test_ping_path_mtu(routed):
    a = routed["a"]
    # DF set and too big for the R-B link: R says "fragmentation needed, mtu 1400" ...
    run = _run(a, "ping -c 2 -W 0.5 -M do -s 1450 10.81.2.2")
    assert run.status == 1
    assert [r.get("mtu") for r in run.json] == [1400, 1400]
    assert run.json[0].get("error_from") == "10.81.1.2" or "path MTU" in run.json[0]["error"]
    # ... which the kernel of A now knows, as `ip route get` shows (the oracle)
    got = subprocess.check_output(["ip", "-n", a, "route", "get", "10.81.2.2"], text=True)
    assert "mtu 1400" in got
    fits = _run(a, "ping -c 1 -M do -s 1372 10.81.2.2")
    assert fits.status == 0 and fits.json[0]["bytes"] == 1380
    fragmented = _run(a, "ping -c 1 -M dont -s 1450 10.81.2.2")
    assert fragmented.status == 0 and fragmented.json[0]["bytes"] == 1458
    bound = _run(a, "ping -c 1 -I ar 10.81.2.2")
    assert bound.status == 0
    wrong = _run(a, "ping -c 1 -W 0.3 -I lo 10.81.2.2")
    assert wrong.status == 1
