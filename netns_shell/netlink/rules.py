"""Policy routing rules (RTM_GETRULE), as `ip -j rule show` prints them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .constants import (
    BE64,
    FIB_RULE_HDR,
    FIB_RULE_IIF_DETACHED,
    FIB_RULE_INVERT,
    FIB_RULE_OIF_DETACHED,
    FIB_RULE_UNRESOLVED,
    FR_ACT_GOTO,
    FR_ACT_NOP,
    FR_ACT_TO_TBL,
    FRA_DPORT_RANGE,
    FRA_DST,
    FRA_FLOW,
    FRA_FWMARK,
    FRA_FWMASK,
    FRA_GOTO,
    FRA_IIFNAME,
    FRA_IP_PROTO,
    FRA_L3MDEV,
    FRA_OIFNAME,
    FRA_PRIORITY,
    FRA_PROTOCOL,
    FRA_SPORT_RANGE,
    FRA_SRC,
    FRA_SUPPRESS_IFGROUP,
    FRA_SUPPRESS_PREFIXLEN,
    FRA_TABLE,
    FRA_TUN_ID,
    FRA_UID_RANGE,
    RTM_GETRULE,
    RTM_NEWRULE,
    RTN_NAT,
    RTPROT_KERNEL,
    U16_PAIR,
    U32,
    U32_PAIR,
)
from .core import NetlinkSocket, dump_with_retry, kstr, parse_attrs, robust
from .names import ds_field, format_address, rt_protocol, rt_table, rt_type

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["RuleRecord", "list_rules", "parse_rule"]

RuleRecord = dict[str, Any]

#: iproute2's inet_proto_n2a names (it falls back to "ipproto-N")
_IP_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 33: "dccp"}


def _u32(buf: bytes, span: tuple[int, int]) -> int:
    return U32.unpack_from(buf, span[0])[0]


def _port_range(rec: RuleRecord, key: str, buf: bytes, span: tuple[int, int]) -> None:
    start, end = U16_PAIR.unpack_from(buf, span[0])
    if start == end:
        rec[key] = start
    else:
        rec[f"{key}_start"], rec[f"{key}_end"] = start, end


@robust("rule")
def parse_rule(buf: bytes, start: int, end: int) -> RuleRecord:
    """One RTM_NEWRULE as `ip -j rule show` prints it (same keys, order and conditions)."""
    family, dst_len, src_len, tos, hdr_table, _r1, _r2, action, flags = FIB_RULE_HDR.unpack_from(
        buf, start
    )
    a = parse_attrs(buf, start + FIB_RULE_HDR.size, end)
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
        rec["uid_start"], rec["uid_end"] = U32_PAIR.unpack_from(buf, a[FRA_UID_RANGE][0])
    if FRA_IP_PROTO in a:
        proto = buf[a[FRA_IP_PROTO][0]]
        rec["ipproto"] = _IP_PROTOCOLS.get(proto, f"ipproto-{proto}")
    if FRA_SPORT_RANGE in a:
        _port_range(rec, "sport", buf, a[FRA_SPORT_RANGE])
    if FRA_DPORT_RANGE in a:
        _port_range(rec, "dport", buf, a[FRA_DPORT_RANGE])
    if FRA_TUN_ID in a:
        rec["tun_id"] = BE64.unpack_from(buf, a[FRA_TUN_ID][0])[0]
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
    body = FIB_RULE_HDR.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
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
