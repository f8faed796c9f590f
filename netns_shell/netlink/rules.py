"""Policy routing rules (RTM_GETRULE), as `ip -j rule show` prints them."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .core import NetlinkSocket, dump_with_retry, parse_attrs, robust
from .links import kstr
from .names import ds_field, format_address, rt_protocol, rt_table, rt_type

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["RuleRecord", "list_rules", "parse_rule"]

RuleRecord = dict[str, Any]

RTM_NEWRULE, RTM_GETRULE = 32, 34
_FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")
_U32 = struct.Struct("=I")

FRA_DST, FRA_SRC, FRA_IIFNAME, FRA_GOTO, FRA_PRIORITY = 1, 2, 3, 4, 6
FRA_FWMARK, FRA_FLOW, FRA_TUN_ID, FRA_SUPPRESS_IFGROUP, FRA_SUPPRESS_PREFIXLEN = 10, 11, 12, 13, 14
FRA_TABLE, FRA_FWMASK, FRA_OIFNAME, FRA_L3MDEV, FRA_UID_RANGE = 15, 16, 17, 19, 20
FRA_PROTOCOL, FRA_IP_PROTO, FRA_SPORT_RANGE, FRA_DPORT_RANGE = 21, 22, 23, 24

FR_ACT_TO_TBL, FR_ACT_GOTO, FR_ACT_NOP = 1, 2, 3
FIB_RULE_INVERT, FIB_RULE_UNRESOLVED = 0x2, 0x4
FIB_RULE_IIF_DETACHED, FIB_RULE_OIF_DETACHED = 0x8, 0x10
RTPROT_KERNEL = 2
RTN_NAT = 10

#: iproute2's inet_proto_n2a names (it falls back to "ipproto-N")
_IP_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 33: "dccp"}


def _u32(buf: bytes, span: tuple[int, int]) -> int:
    return _U32.unpack_from(buf, span[0])[0]


def _port_range(rec: RuleRecord, key: str, buf: bytes, span: tuple[int, int]) -> None:
    start, end = struct.unpack_from("=HH", buf, span[0])
    if start == end:
        rec[key] = start
    else:
        rec[f"{key}_start"], rec[f"{key}_end"] = start, end


@robust("rule")
def parse_rule(buf: bytes, start: int, end: int) -> RuleRecord:
    """One RTM_NEWRULE as `ip -j rule show` prints it (same keys, order and conditions)."""
    family, dst_len, src_len, tos, hdr_table, _r1, _r2, action, flags = _FIB_RULE_HDR.unpack_from(
        buf, start
    )
    a = parse_attrs(buf, start + _FIB_RULE_HDR.size, end)
    host_len = 32 if family == socket.AF_INET else 128
    rec: RuleRecord = {}
    if family == socket.AF_INET6:
        rec["family"] = "inet6"  # extra key: `rule` shows both families in one list
    elif family == socket.AF_INET:
        rec["family"] = "inet"
    rec["priority"] = _u32(buf, a[FRA_PRIORITY]) if FRA_PRIORITY in a else 0
    if flags & FIB_RULE_INVERT:
        rec["not"] = None
    for attr, key, length in ((FRA_SRC, "src", src_len), (FRA_DST, "dst", dst_len)):
        if attr in a:
            rec[key] = format_address(bytes(buf[a[attr][0] : a[attr][1]]))
            if length != host_len:
                rec[f"{key}len"] = length
        elif length:
            rec[key], rec[f"{key}len"] = "0", length
        elif key == "src":
            rec[key] = "all"
    if tos:
        rec["tos"] = ds_field(tos)
    if FRA_FWMARK in a or FRA_FWMASK in a:
        mark = _u32(buf, a[FRA_FWMARK]) if FRA_FWMARK in a else 0
        mask = _u32(buf, a[FRA_FWMASK]) if FRA_FWMASK in a else 0xFFFFFFFF
        rec["fwmark"] = f"{mark:#x}"
        if mask != 0xFFFFFFFF:
            rec["fwmask"] = f"{mask:#x}"
    if FRA_IIFNAME in a:
        rec["iif"] = kstr(buf, *a[FRA_IIFNAME])
        if flags & FIB_RULE_IIF_DETACHED:
            rec["iif_detached"] = None
    if FRA_OIFNAME in a:
        rec["oif"] = kstr(buf, *a[FRA_OIFNAME])
        if flags & FIB_RULE_OIF_DETACHED:
            rec["oif_detached"] = None
    if FRA_L3MDEV in a and buf[a[FRA_L3MDEV][0]]:
        rec["l3mdev"] = None
    if FRA_UID_RANGE in a:
        rec["uid_start"], rec["uid_end"] = struct.unpack_from("=II", buf, a[FRA_UID_RANGE][0])
    if FRA_IP_PROTO in a:
        proto = buf[a[FRA_IP_PROTO][0]]
        rec["ipproto"] = _IP_PROTOCOLS.get(proto, f"ipproto-{proto}")
    if FRA_SPORT_RANGE in a:
        _port_range(rec, "sport", buf, a[FRA_SPORT_RANGE])
    if FRA_DPORT_RANGE in a:
        _port_range(rec, "dport", buf, a[FRA_DPORT_RANGE])
    if FRA_TUN_ID in a:
        rec["tun_id"] = struct.unpack_from("!Q", buf, a[FRA_TUN_ID][0])[0]
    table = _u32(buf, a[FRA_TABLE]) if FRA_TABLE in a else hdr_table
    if table:
        rec["table"] = rt_table(table)
        if FRA_SUPPRESS_PREFIXLEN in a:
            length = _u32(buf, a[FRA_SUPPRESS_PREFIXLEN])
            if length != 0xFFFFFFFF:
                rec["suppress_prefixlen"] = length
        if FRA_SUPPRESS_IFGROUP in a:
            group = _u32(buf, a[FRA_SUPPRESS_IFGROUP])
            if group != 0xFFFFFFFF:
                rec["suppress_ifgroup"] = "default" if group == 0 else str(group)
    if FRA_FLOW in a:
        realm = _u32(buf, a[FRA_FLOW])
        source, destination = realm >> 16, realm & 0xFFFF
        rec["flow_from" if source else "realms"] = str(source or destination)
        if source:
            rec["flow_to"] = str(destination)
    if action == FR_ACT_GOTO:
        rec["goto"] = _u32(buf, a[FRA_GOTO]) if FRA_GOTO in a else "none"
        if flags & FIB_RULE_UNRESOLVED:
            rec["unresolved"] = None
    elif action == FR_ACT_NOP:
        rec["action"] = "nop"
    elif action != FR_ACT_TO_TBL:
        rec["action"] = "nat" if action == RTN_NAT else rt_type(action)
    if FRA_PROTOCOL in a:
        proto = buf[a[FRA_PROTOCOL][0]]
        if proto and proto != RTPROT_KERNEL:
            rec["protocol"] = rt_protocol(proto)
    rec["table_id"] = table  # extra key: the number behind a table name
    return rec


def _rules(sock: NetlinkSocket, family: int) -> Iterator[RuleRecord]:
    body = _FIB_RULE_HDR.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    for kind, buf, start, end in sock.dump(RTM_GETRULE, body, what="rule"):
        if kind == RTM_NEWRULE:
            yield parse_rule(buf, start, end)


def list_rules(
    namespace: NetNamespace | None,
    *,
    family: int = socket.AF_UNSPEC,
    sock: NetlinkSocket | None = None,
) -> Iterator[RuleRecord]:
    """Stream the policy routing rules of a namespace: IPv4 then IPv6 (or one family)."""
    own = sock is None
    sock = sock or NetlinkSocket(namespace)
    try:
        families = (socket.AF_INET, socket.AF_INET6) if family == socket.AF_UNSPEC else (family,)
        for fam in families:
            yield from dump_with_retry(lambda fam=fam: _rules(sock, fam))
    finally:
        if own:
            sock.close()
