"""The connection tracking table (ctnetlink dump over NETLINK_NETFILTER).

Records, one per tracked connection, as `conntrack -L -o extended` shows it:

    {"family": "ipv4", "proto": "tcp", "protonum": 6, "timeout": 431999,
     "state": "ESTABLISHED",
     "original": {"src", "dst", "sport", "dport", "packets", "bytes"},
     "reply": {...}, "flags": ["ASSURED"], "mark": 0, "zone": 0, "use": 1, "id": ...}

ICMP tuples carry "type", "code", "id" instead of ports.  `nat` says which
side was rewritten (SNAT/DNAT), read from the status bits.  Counters are
present only when `net.netfilter.nf_conntrack_acct` is on in the namespace.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .constants import (
    CTA_COUNTERS_BYTES,
    CTA_COUNTERS_ORIG,
    CTA_COUNTERS_PACKETS,
    CTA_COUNTERS_REPLY,
    CTA_ID,
    CTA_IP_V4_DST,
    CTA_IP_V4_SRC,
    CTA_IP_V6_DST,
    CTA_IP_V6_SRC,
    CTA_MARK,
    CTA_PROTO_DST_PORT,
    CTA_PROTO_ICMP_CODE,
    CTA_PROTO_ICMP_ID,
    CTA_PROTO_ICMP_TYPE,
    CTA_PROTO_ICMPV6_CODE,
    CTA_PROTO_ICMPV6_ID,
    CTA_PROTO_ICMPV6_TYPE,
    CTA_PROTO_NUM,
    CTA_PROTO_SRC_PORT,
    CTA_PROTOINFO,
    CTA_PROTOINFO_SCTP,
    CTA_PROTOINFO_TCP,
    CTA_STATUS,
    CTA_TIMEOUT,
    CTA_TUPLE_IP,
    CTA_TUPLE_ORIG,
    CTA_TUPLE_PROTO,
    CTA_TUPLE_REPLY,
    CTA_USE,
    CTA_ZONE,
    IPCTNL_MSG_CT_GET,
    IPCTNL_MSG_CT_NEW,
    IPS_ASSURED,
    IPS_DST_NAT,
    IPS_HW_OFFLOAD,
    IPS_OFFLOAD,
    IPS_SEEN_REPLY,
    IPS_SRC_NAT,
    IPS_UNTRACKED,
    NETLINK_NETFILTER,
    NFGENMSG,
    NFNL_SUBSYS_CTNETLINK,
)
from .core import NetlinkSocket, dump_with_retry, iter_attrs, parse_attrs, robust
from .names import format_address

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["ConntrackRecord", "list_conntrack", "matches", "parse_conntrack"]

ConntrackRecord = dict[str, Any]

_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}
_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 33: "dccp", 136: "udplite"}
_PROTO_NUMBERS = {name: number for number, name in _PROTOCOLS.items()} | {"ipv6-icmp": 58}
_TCP_STATES = (
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
)
_SCTP_STATES = (
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
)
# status bits conntrack(8) prints in brackets, in its order
_FLAGS = (
    (IPS_OFFLOAD, "OFFLOAD"),
    (IPS_HW_OFFLOAD, "HW_OFFLOAD"),
    (IPS_ASSURED, "ASSURED"),
    (IPS_UNTRACKED, "UNTRACKED"),
)


_TUPLE_IP_KEYS = {
    CTA_IP_V4_SRC: "src",
    CTA_IP_V4_DST: "dst",
    CTA_IP_V6_SRC: "src",
    CTA_IP_V6_DST: "dst",
}
_TUPLE_PROTO_KEYS = {
    CTA_PROTO_SRC_PORT: "sport",
    CTA_PROTO_DST_PORT: "dport",
    CTA_PROTO_ICMP_ID: "id",
    CTA_PROTO_ICMP_TYPE: "type",
    CTA_PROTO_ICMP_CODE: "code",
    CTA_PROTO_ICMPV6_ID: "id",
    CTA_PROTO_ICMPV6_TYPE: "type",
    CTA_PROTO_ICMPV6_CODE: "code",
}


def _be(buf: bytes, span: tuple[int, int]) -> int:
    return int.from_bytes(buf[span[0] : span[1]], "big")


def _tuple(buf: bytes, start: int, end: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    a = parse_attrs(buf, start, end)
    if CTA_TUPLE_IP in a:
        for kind, vs, ve in iter_attrs(buf, *a[CTA_TUPLE_IP]):
            key = _TUPLE_IP_KEYS.get(kind)
            if key:
                out[key] = format_address(bytes(buf[vs:ve]))
    if CTA_TUPLE_PROTO in a:
        for kind, vs, ve in iter_attrs(buf, *a[CTA_TUPLE_PROTO]):
            key = _TUPLE_PROTO_KEYS.get(kind)
            if key:
                out[key] = _be(buf, (vs, ve))
    return out


def _counters(buf: bytes, start: int, end: int) -> dict[str, int]:
    a = parse_attrs(buf, start, end)
    out = {}
    for attr, key in ((CTA_COUNTERS_PACKETS, "packets"), (CTA_COUNTERS_BYTES, "bytes")):
        if attr in a:
            out[key] = _be(buf, a[attr])
    return out


def _protonum(buf: bytes, start: int, end: int) -> int | None:
    a = parse_attrs(buf, start, end)
    if CTA_TUPLE_PROTO in a:
        for kind, vs, _ve in iter_attrs(buf, *a[CTA_TUPLE_PROTO]):
            if kind == CTA_PROTO_NUM:
                return buf[vs]
    return None


@robust("conntrack")
def parse_conntrack(buf: bytes, start: int, end: int) -> ConntrackRecord:
    family = buf[start]
    a = parse_attrs(buf, start + NFGENMSG.size, end)
    protonum = _protonum(buf, *a[CTA_TUPLE_ORIG]) if CTA_TUPLE_ORIG in a else None
    rec: ConntrackRecord = {
        "family": _FAMILIES.get(family, str(family)),
        "proto": _PROTOCOLS.get(protonum, str(protonum)),
        "protonum": protonum,
    }
    if CTA_TIMEOUT in a:
        rec["timeout"] = _be(buf, a[CTA_TIMEOUT])
    if CTA_PROTOINFO in a:
        for kind, vs, ve in iter_attrs(buf, *a[CTA_PROTOINFO]):
            states = {CTA_PROTOINFO_TCP: _TCP_STATES, CTA_PROTOINFO_SCTP: _SCTP_STATES}.get(kind)
            inner = parse_attrs(buf, vs, ve)
            if states and 1 in inner:
                number = buf[inner[1][0]]
                rec["state"] = states[number] if number < len(states) else str(number)
    for attr, counters, key in (
        (CTA_TUPLE_ORIG, CTA_COUNTERS_ORIG, "original"),
        (CTA_TUPLE_REPLY, CTA_COUNTERS_REPLY, "reply"),
    ):
        side = _tuple(buf, *a[attr]) if attr in a else {}
        if counters in a:
            side.update(_counters(buf, *a[counters]))
        rec[key] = side
    status = _be(buf, a[CTA_STATUS]) if CTA_STATUS in a else 0
    flags = [] if status & IPS_SEEN_REPLY else ["UNREPLIED"]
    flags += [name for bit, name in _FLAGS if status & bit]
    rec["flags"] = flags
    nat = [name for bit, name in ((IPS_SRC_NAT, "SNAT"), (IPS_DST_NAT, "DNAT")) if status & bit]
    if nat:
        rec["nat"] = nat
    for attr, key in ((CTA_MARK, "mark"), (CTA_ZONE, "zone"), (CTA_USE, "use"), (CTA_ID, "id")):
        if attr in a:
            rec[key] = _be(buf, a[attr])
    return rec


def protocol_number(name: str) -> int:
    """A protocol given by name (tcp, udp, icmp, ...) or number."""
    if name.isdigit():
        return int(name)
    try:
        return _PROTO_NUMBERS[name.lower()]
    except KeyError:
        raise ValueError(name) from None


def matches(rec: ConntrackRecord, *, proto: int | None, address: str | None, port: int | None):
    """Whether a record passes the filters (an address or port on either side)."""
    if proto is not None and rec["protonum"] != proto:
        return False
    sides = (rec.get("original", {}), rec.get("reply", {}))
    if address is not None and not any(address in (s.get("src"), s.get("dst")) for s in sides):
        return False
    return port is None or any(port in (s.get("sport"), s.get("dport")) for s in sides)


def _dump(sock: NetlinkSocket, family: int) -> Iterator[ConntrackRecord]:
    msg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
    body = NFGENMSG.pack(family, 0, 0)
    for kind, buf, start, end in sock.dump(msg_type, body, what="conntrack"):
        if kind & 0xFF == IPCTNL_MSG_CT_NEW:
            yield parse_conntrack(buf, start, end)


def list_conntrack(
    namespace: NetNamespace | None,
    *,
    proto: int | None = None,
    address: str | None = None,
    port: int | None = None,
) -> Iterator[ConntrackRecord]:
    """Stream the conntrack entries of a namespace (IPv4 then IPv6), filtered."""
    sock = NetlinkSocket(namespace, NETLINK_NETFILTER, strict=False)
    try:
        for family in (socket.AF_INET, socket.AF_INET6):
            for rec in dump_with_retry(lambda family=family: _dump(sock, family)):
                if matches(rec, proto=proto, address=address, port=port):
                    yield rec
    finally:
        sock.close()
