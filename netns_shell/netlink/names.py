"""Names iproute2 gives to numbers: route tables, protocols, scopes, types, states.

Tables, protocols, scopes and groups are read from the rt_* files iproute2
reads (/etc/iproute2 and /usr/share/iproute2 + .d directories), so records
print the same names `ip` prints on this host.
"""

from __future__ import annotations

import functools
import os
import socket

__all__ = [
    "address_family",
    "format_address",
    "format_mac",
    "ifindex_names",
    "rt_protocol",
    "rt_scope",
    "rt_table",
    "rt_type",
    "table_id",
]

_CONF_DIRS = ("/etc/iproute2", "/usr/lib/iproute2", "/usr/share/iproute2")

_PROTOCOLS = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    17: "mrouted",
    18: "keepalived",
    42: "babel",
    99: "openr",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}
_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_TABLES = {0: "unspec", 253: "default", 254: "main", 255: "local"}
_TYPES = {
    0: "none",
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
    10: "nat",
    11: "xresolve",
}


def _read_names(base: str, builtin: dict[int, str]) -> dict[int, str]:
    names = dict(builtin)
    for directory in _CONF_DIRS:
        paths = [os.path.join(directory, base)]
        extra = os.path.join(directory, base + ".d")
        try:
            paths += sorted(
                os.path.join(extra, f) for f in os.listdir(extra) if f.endswith(".conf")
            )
        except OSError:
            pass
        for path in paths:
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        fields = line.split("#", 1)[0].split()
                        if len(fields) >= 2:
                            try:
                                names[int(fields[0], 0)] = fields[1]
                            except ValueError:
                                continue
            except OSError:
                continue
    return names


@functools.cache
def _tables() -> dict[int, str]:
    return _read_names("rt_tables", _TABLES)


@functools.cache
def _protocols() -> dict[int, str]:
    return _read_names("rt_protos", _PROTOCOLS)


@functools.cache
def _scopes() -> dict[int, str]:
    names = _read_names("rt_scopes", _SCOPES)
    names[0] = "global"
    return names


def rt_table(table: int) -> str:
    """iproute2's name for a routing table: 'main', 'local', or the number as text."""
    return _tables().get(table, str(table))


def table_id(name: str) -> int | None:
    """The numeric id of a table given by name or number, or None if unknown."""
    try:
        value = int(name, 0)
    except ValueError:
        for number, known in _tables().items():
            if known == name:
                return number
        return None
    return value if 0 <= value < 2**32 else None


@functools.cache
def _dsfields() -> dict[int, str]:
    return _read_names("rt_dsfield", {})


def ds_field(tos: int) -> str:
    """iproute2's rtnl_dsfield_n2a: a name from rt_dsfield, else '0x%02x'."""
    return _dsfields().get(tos, f"0x{tos:02x}")


def rt_protocol(proto: int) -> str:
    return _protocols().get(proto, str(proto))


def rt_scope(scope: int) -> str:
    return _scopes().get(scope, str(scope))


def rt_type(kind: int) -> str:
    return _TYPES.get(kind, str(kind))


def address_family(family: int) -> str:
    return {socket.AF_INET: "inet", socket.AF_INET6: "inet6", 7: "bridge", 28: "mpls"}.get(
        family, str(family)
    )


def format_mac(raw: bytes) -> str:
    return raw.hex(":")


def format_address(raw: bytes) -> str:
    """An IPv4/IPv6 address as text; other lengths as a MAC-like hex string."""
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return format_mac(raw)


def ifindex_names(links: dict[int, str], index: int) -> str:
    """iproute2's ll_index_to_name: the name, or 'if<N>' when unknown."""
    return links.get(index) or f"if{index}"
