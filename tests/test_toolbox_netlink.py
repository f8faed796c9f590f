"""`rule` and `links -s` / `stats` against iproute2 run inside a real test namespace
(`nsenter --net=FILE ip -j rule`, `ip -s -s -j link`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import netns_shell, unique

RULES_V4 = (
    "from 10.0.0.0/8 to 192.168.1.0/24 table 100 pref 100",
    "fwmark 0x10/0xff lookup 200 pref 200",
    "not iif lo oif nosuchdev prohibit pref 300",
    "ipproto tcp dport 80 sport 1000-2000 tos 0x10 goto 100 pref 90",
    "from all lookup main suppress_prefixlength 0 pref 400",
    "uidrange 1000-2000 table 5 protocol static pref 500",
    "iif lo blackhole pref 510",
    "to 172.16.0.0/12 unreachable pref 520",
)


def _nsenter_json(path: str, *argv: str, missing_ok: bool = False) -> list:
    proc = subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True)
    if missing_ok and b"does not exist" in proc.stderr:
        return []  # iproute2 refuses a table with no route yet; netns-shell shows it empty
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or b"[]")


def _mine(path: str, command: str) -> list:
    run = netns_shell("--net", path, "--json", "-c", command)
    assert run.status == 0, run.stderr
    return run.json


def test_rule_matches_ip_rule(netns):
    path = f"/var/run/netns/{netns}"
    for spec in RULES_V4:
        subprocess.run(["ip", "-n", netns, "rule", "add", *spec.split()], check=True)
    subprocess.run(
        ["ip", "-n", netns, "-6", "rule", "add", "from", "fd00::/8", "table", "300", "pref", "7"],
        check=True,
    )
    mine = _mine(path, "rule")
    for family, flag in (("inet", "-4"), ("inet6", "-6")):
        ref = _nsenter_json(path, "ip", "-j", flag, "rule", "show")
        got = [
            {k: v for k, v in r.items() if k not in ("family", "table_id")}
            for r in mine
            if r["family"] == family
        ]
        assert got == ref
    assert len([r for r in mine if r["family"] == "inet"]) == len(RULES_V4) + 3
    # every table a rule names is a table `routes` accepts (empty ones too)
    for table in {r["table"] for r in mine if "table" in r}:
        run = netns_shell("--net", path, "--json", "-c", f"routes table {table}")
        assert run.status == 0, (table, run.stderr)
        ref = [
            route
            for family in ("-4", "-6")
            for route in _nsenter_json(
                path, "ip", "-j", family, "route", "show", "table", table, missing_ok=True
            )
        ]
        # netns-shell names the table in each route of a table other than main
        assert [{k: v for k, v in r.items() if k != "table"} for r in run.json] == ref


def test_rule_table_shows_selector_and_action(netns):
    subprocess.run(
        ["ip", "-n", netns, "rule", "add", "fwmark", "0x10/0xff", "lookup", "200", "pref", "200"],
        check=True,
    )
    run = netns_shell("--net", f"/var/run/netns/{netns}", "-c", "rule -4")
    assert run.status == 0, run.stderr
    line = next(li for li in run.stdout.splitlines() if li.startswith("200 "))
    assert "fwmark 0x10/0xff" in line and "lookup 200" in line


@pytest.fixture
def pinged_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth, IPv6 off (no background traffic), 5 pings sent."""
    a, b = unique("nst-sa"), unique("nst-sb")
    try:
        for name in (a, b):
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(
                ["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                check=True,
            )
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    name,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
                check=True,
            )
        subprocess.run(
            ["ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "vb", "netns", b],
            check=True,
        )
        for name, dev, ip in ((a, "va", "10.77.0.1/24"), (b, "vb", "10.77.0.2/24")):
            subprocess.run(["ip", "-n", name, "addr", "add", ip, "dev", dev], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        subprocess.run(
            ["ip", "netns", "exec", a, "busybox", "ping", "-q", "-c", "5", "-W", "2", "10.77.0.2"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        yield a, b
    finally:
        for name in (a, b):
            subprocess.run(["ip", "netns", "del", name], check=False)


def test_links_stats_match_ip_s_link(pinged_pair):
    a, _ = pinged_pair
    path = f"/var/run/netns/{a}"
    for _attempt in range(3):  # a stray packet between the two reads: read again
        mine = _mine(path, "links -s")
        ref = _nsenter_json(path, "ip", "-s", "-s", "-j", "link", "show")
        if [m["stats64"] for m in mine] == [r["stats64"] for r in ref]:
            break
    assert [m["ifname"] for m in mine] == [r["ifname"] for r in ref]
    assert [m["stats64"] for m in mine] == [r["stats64"] for r in ref]
    va = next(m for m in mine if m["ifname"] == "va")["stats64"]
    assert va["tx"]["packets"] >= 5 and va["rx"]["packets"] >= 5  # the pings and replies
    one = _mine(path, "stats va")
    assert [r["ifname"] for r in one] == ["va"]


def test_stats_table_has_counters(pinged_pair):
    a, _ = pinged_pair
    for _attempt in range(5):  # an ARP probe between the two reads: read again
        run = netns_shell("--net", f"/var/run/netns/{a}", "-c", "links -s va")
        assert run.status == 0, run.stderr
        header, row = run.stdout.splitlines()[:2]
        ref = _nsenter_json(f"/var/run/netns/{a}", "ip", "-s", "-j", "link", "show", "va")[0]
        if str(ref["stats64"]["tx"]["bytes"]) in row.split():
            break
    assert "RX-DROPPED" in header and "TX-ERRORS" in header
    assert str(ref["stats64"]["tx"]["bytes"]) in row.split()
