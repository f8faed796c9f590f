"""The streaming fast paths stay exact: thousands of rows of each table against iproute2.

The tables mix what the template caches must keep apart (gateways, devices,
protocols, metrics, tables, states, flags, VTEPs, ports, VNIs, IPv6 with
cache info, multipath) and run once more with tiny caches, so evictions
happen mid-dump.
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from netns_shell.lab import settle_ipv6, wait_settled
from netns_shell.namespace import NetNamespace
from netns_shell.netlink import neighbours, routes
from netns_shell.netlink.neighbours import list_fdb, list_neighbours
from netns_shell.netlink.routes import list_routes
from tests.conftest import bridge_json, ip_json, unique

N = 3000


def _batch(argv: list[str], lines) -> None:
    subprocess.run(argv, input="\n".join(lines) + "\n", text=True, check=True)


@pytest.fixture(scope="module")
def big():
    name = unique("nst-big")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        settle_ipv6(f"/var/run/netns/{name}")
        ip = ["ip", "-n", name, "-batch", "-"]
        devices = ["br0", "br1", "br2"]
        _batch(
            ip,
            ["link set lo up"]
            + [
                line
                for i, dev in enumerate(devices)
                for line in (
                    f"link add {dev} type bridge",
                    f"link set {dev} up",
                    f"addr add 10.25{i}.0.1/16 dev {dev}",
                    f"addr add fd0{i}::1/64 dev {dev} nodad",
                )
            ]
            + [
                "link add vxlan0 type vxlan id 77 dstport 4789 local 10.250.0.1 nolearning",
                "link set vxlan0 master br0 up",
            ],
        )
        protos = ["static", "bgp", "kernel", "boot", "250"]
        _batch(
            ip,
            (
                f"route add 10.{i >> 8 & 255}.{i & 255}.0/{24 + i % 9} "
                f"via 10.25{i % 3}.0.{2 + i % 40} "
                f"dev {devices[i % 3]} proto {protos[i % 5]} metric {i % 7}"
                + (" table 100" if i % 11 == 0 else "")
                for i in range(N)
            ),
        )
        _batch(
            ip,
            [
                "route add 172.16.0.0/12 nexthop via 10.250.0.7 dev br0 "
                "nexthop via 10.251.0.9 dev br1",
                "route add blackhole 172.20.0.0/16",
                "route add unreachable 172.21.0.0/16 metric 9",
            ]
            + [
                f"route add fd0{i % 3}:{i:x}::/64 via fd0{i % 3}::{2 + i % 5} dev {devices[i % 3]}"
                for i in range(300)
            ],
        )
        states = ["permanent", "stale", "noarp", "reachable"]
        _batch(
            ip,
            (
                f"neigh add 10.25{i % 3}.{i >> 8 & 255}.{i & 255} "
                f"lladdr 02:03:00:00:{i >> 8 & 255:02x}:{i & 255:02x} "
                f"dev {devices[i % 3]} nud {states[i % 4]}" + (" router" if i % 13 == 0 else "")
                for i in range(N)
            ),
        )
        _batch(
            ip,
            (
                f"neigh add fd01::{i:x} lladdr 02:04:00:00:00:{i & 255:02x} dev br1 nud stale"
                for i in range(1, 200)
            ),
        )
        _batch(
            ["bridge", "-n", name, "-batch", "-"],
            (
                f"fdb add 02:05:00:00:{i >> 8 & 255:02x}:{i & 255:02x} dev vxlan0 "
                f"dst 192.0.{i % 50}.{1 + i % 7} self permanent"
                + (f" port {4790 + i % 3}" if i % 17 == 0 else "")
                + (f" vni {100 + i % 5}" if i % 19 == 0 else "")
                for i in range(N)
            ),
        )
        _batch(
            ["bridge", "-n", name, "-batch", "-"],
            (
                f"fdb add 02:06:00:00:{i >> 8 & 255:02x}:{i & 255:02x} dev vxlan0 master static"
                for i in range(500)
            ),
        )
        wait_settled([f"/var/run/netns/{name}"], carriers=False)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _ours(name, func, **kwargs):
    with NetNamespace.open_path(f"/var/run/netns/{name}") as ns:
        return list(func(ns, **kwargs))


def _check_all(name):
    assert _ours(name, list_routes, table=0) == ip_json(
        "-n", name, "-4", "route", "show", "table", "all"
    ) + ip_json("-n", name, "-6", "route", "show", "table", "all")
    assert _ours(name, list_routes, family=socket.AF_INET) == ip_json(
        "-n", name, "-4", "route", "show"
    )
    assert _ours(name, list_neighbours) == ip_json("-n", name, "neigh", "show")
    assert _ours(name, list_neighbours, show_all=True) == ip_json(
        "-n", name, "neigh", "show", "nud", "all"
    )
    assert _ours(name, list_fdb) == bridge_json("-n", name, "fdb", "show")


def test_thousands_of_rows_match_iproute2(big):
    assert len(_ours(big, list_routes, table=0)) > N
    _check_all(big)


def test_exact_with_tiny_template_caches(big, monkeypatch):
    monkeypatch.setattr(routes, "_TEMPLATE_LIMIT", 3)
    monkeypatch.setattr(neighbours, "_TEMPLATE_LIMIT", 3)
    _check_all(big)


def test_cli_plain_output_has_one_line_per_row(big):
    from tests.conftest import netns_shell

    run = netns_shell(big, "-c", "routes -4")
    assert run.status == 0, run.stderr
    lines = run.stdout.splitlines()
    expected = ip_json("-n", big, "-4", "route", "show")
    assert len(lines) == len(expected) + 1  # the header
    header = lines[0].split()
    assert header[:3] == ["DST", "GATEWAY", "DEV"]
    for line, route in zip(lines[1:], expected, strict=True):
        assert line.split()[0] in (route["dst"], route.get("type"))
