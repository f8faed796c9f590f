"""`conntrack` against `conntrack -L -o extended` in a real namespace, after real traffic:
a TCP connection through a DNAT rule, a UDP datagram and an ICMP echo."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.conftest import netns_shell, unique, wait_listening

_PAIR = re.compile(r"(\w+)=(\S+)")


def _parse_extended(text: str) -> list[dict]:
    """conntrack(8)'s extended lines as (proto, state, original, reply, flags) records."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 5 or words[0] not in ("ipv4", "ipv6"):
            continue
        proto = words[2]
        state = words[5] if "=" not in words[5] else None
        pairs = _PAIR.findall(line)
        sides: list[dict] = [{}, {}]
        side = -1
        for key, value in pairs:
            if key == "src":
                side += 1
            if key in ("mark", "use", "zone") or side > 1:
                continue
            sides[side][key] = value if key in ("src", "dst") else int(value)
        flags = re.findall(r"\[(\w+)\]", line)
        out.append(
            {
                "proto": proto,
                "state": state,
                "original": sides[0],
                "reply": sides[1],
                "flags": flags,
            }
        )
    return out


def _comparable(rec: dict) -> tuple:
    return (
        rec["proto"],
        rec.get("state"),
        tuple(sorted(rec["original"].items())),
        tuple(sorted(rec["reply"].items())),
        tuple(sorted(set(rec["flags"]))),
    )


@pytest.fixture
def tracked_pair() -> Iterator[str]:
    """Namespace A (conntrack on, counters on, a DNAT rule) talking to namespace B."""
    a, b = unique("nst-ca"), unique("nst-cb")
    server = None
    try:
        for name in (a, b):
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "-n", a, *f"link add va type veth peer vb netns {b}".split()], check=True
        )
        for name, dev, ip in ((a, "va", "10.78.0.1/24"), (b, "vb", "10.78.0.2/24")):
            subprocess.run(["ip", "-n", name, "addr", "add", ip, "dev", dev], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        inside = ["ip", "netns", "exec", a]
        subprocess.run([*inside, "sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"], check=True)
        subprocess.run(
            [
                *inside,
                "nft",
                "add table ip t; "
                "add chain ip t out { type nat hook output priority -100; }; "
                "add rule ip t out tcp dport 9090 dnat to 10.78.0.2:8080",
            ],
            check=True,
        )
        server = subprocess.Popen(
            ["ip", "netns", "exec", b, "busybox", "nc", "-l", "-p", "8080"],
            stdout=subprocess.DEVNULL,
        )
        wait_listening(b, 8080)  # else the connection is refused: a SYN and a RST only
        subprocess.run(
            [*inside, "busybox", "nc", "-w", "2", "10.78.0.7", "9090"],
            input=b"hello\n",
            check=False,
            timeout=10,
        )
        subprocess.run(
            [*inside, "busybox", "ping", "-c", "1", "-W", "2", "10.78.0.2"],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        udp = "import socket; socket.socket(2, 2).sendto(b'x', ('10.78.0.2', 5353))"
        subprocess.run([*inside, "python3", "-c", udp], check=True)
        yield a
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for name in (a, b):
            subprocess.run(["ip", "netns", "del", name], check=False)


def _both(path: str, command: str, oracle: list[str]) -> tuple[list, list]:
    run = netns_shell("--net", path, "--json", "-c", command)
    assert run.status == 0, run.stderr
    ref = subprocess.run(
        ["nsenter", f"--net={path}", "conntrack", "-L", "-o", "extended", *oracle],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return run.json, _parse_extended(ref)


def test_conntrack_matches_conntrack_tool(tracked_pair):
    path = f"/var/run/netns/{tracked_pair}"
    deadline = time.monotonic() + 30
    while True:  # a connection's state may move between the two reads (the server's FIN)
        mine, ref = _both(path, "conntrack", [])
        if sorted(map(_comparable, mine)) == sorted(map(_comparable, ref)):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(map(_comparable, mine)) == sorted(map(_comparable, ref))
    assert {r["proto"] for r in mine} >= {"tcp", "udp", "icmp"}
    tcp = next(r for r in mine if r["proto"] == "tcp")
    # the DNAT rule: the reply comes from the real server, not the address dialled
    assert tcp["original"]["dst"] == "10.78.0.7" and tcp["original"]["dport"] == 9090
    assert tcp["reply"]["src"] == "10.78.0.2" and tcp["reply"]["sport"] == 8080
    assert tcp["nat"] == ["DNAT"]
    assert tcp["original"]["packets"] >= 3 and tcp["original"]["bytes"] > 0


def test_conntrack_filters_match_conntrack_tool(tracked_pair):
    path = f"/var/run/netns/{tracked_pair}"
    mine, ref = _both(path, "conntrack -p udp", ["-p", "udp"])
    assert [r["proto"] for r in mine] == ["udp"] == [r["proto"] for r in ref]
    assert sorted(map(_comparable, mine)) == sorted(map(_comparable, ref))
    mine, _ = _both(path, "conntrack -p tcp port 8080", ["-p", "tcp"])
    assert len(mine) == 1 and mine[0]["reply"]["sport"] == 8080
    mine, _ = _both(path, "conntrack 10.78.0.7", [])
    assert [r["proto"] for r in mine] == ["tcp"]
    assert _both(path, "conntrack -p sctp", [])[0] == []


def test_conntrack_table_shows_nat(tracked_pair):
    run = netns_shell("--net", f"/var/run/netns/{tracked_pair}", "-c", "conntrack -p tcp")
    assert run.status == 0, run.stderr
    assert "10.78.0.1:" in run.stdout and "-> 10.78.0.7:9090" in run.stdout
    assert "DNAT" in run.stdout
