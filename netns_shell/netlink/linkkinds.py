"""Link kinds: one decoder per kind of IFLA_INFO_DATA (vxlan, bridge, vlan) and port kind.

Each turns the kind's nested attributes, read by their uapi names (see
constants.py), into the keys iproute2's `ip -j -d link` prints under
`linkinfo.info_data` / `info_slave_data`, in its order and on its conditions.
A new kind is a decoder here and a row in KIND_DECODERS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .constants import (
    BE16,
    BE16_PAIR,
    BE32,
    IFLA_BR_AGEING_TIME,
    IFLA_BR_BRIDGE_ID,
    IFLA_BR_FORWARD_DELAY,
    IFLA_BR_GC_TIMER,
    IFLA_BR_GROUP_ADDR,
    IFLA_BR_GROUP_FWD_MASK,
    IFLA_BR_HELLO_TIME,
    IFLA_BR_HELLO_TIMER,
    IFLA_BR_MAX_AGE,
    IFLA_BR_MCAST_HASH_ELASTICITY,
    IFLA_BR_MCAST_HASH_MAX,
    IFLA_BR_MCAST_IGMP_VERSION,
    IFLA_BR_MCAST_LAST_MEMBER_CNT,
    IFLA_BR_MCAST_LAST_MEMBER_INTVL,
    IFLA_BR_MCAST_MEMBERSHIP_INTVL,
    IFLA_BR_MCAST_MLD_VERSION,
    IFLA_BR_MCAST_QUERIER,
    IFLA_BR_MCAST_QUERIER_INTVL,
    IFLA_BR_MCAST_QUERY_INTVL,
    IFLA_BR_MCAST_QUERY_RESPONSE_INTVL,
    IFLA_BR_MCAST_QUERY_USE_IFADDR,
    IFLA_BR_MCAST_ROUTER,
    IFLA_BR_MCAST_SNOOPING,
    IFLA_BR_MCAST_STARTUP_QUERY_CNT,
    IFLA_BR_MCAST_STARTUP_QUERY_INTVL,
    IFLA_BR_MCAST_STATS_ENABLED,
    IFLA_BR_MULTI_BOOLOPT,
    IFLA_BR_NF_CALL_ARPTABLES,
    IFLA_BR_NF_CALL_IP6TABLES,
    IFLA_BR_NF_CALL_IPTABLES,
    IFLA_BR_PRIORITY,
    IFLA_BR_ROOT_ID,
    IFLA_BR_ROOT_PATH_COST,
    IFLA_BR_ROOT_PORT,
    IFLA_BR_STP_STATE,
    IFLA_BR_TCN_TIMER,
    IFLA_BR_TOPOLOGY_CHANGE,
    IFLA_BR_TOPOLOGY_CHANGE_DETECTED,
    IFLA_BR_TOPOLOGY_CHANGE_TIMER,
    IFLA_BR_VLAN_DEFAULT_PVID,
    IFLA_BR_VLAN_FILTERING,
    IFLA_BR_VLAN_PROTOCOL,
    IFLA_BR_VLAN_STATS_ENABLED,
    IFLA_BR_VLAN_STATS_PER_PORT,
    IFLA_BRPORT_BCAST_FLOOD,
    IFLA_BRPORT_BRIDGE_ID,
    IFLA_BRPORT_CONFIG_PENDING,
    IFLA_BRPORT_COST,
    IFLA_BRPORT_DESIGNATED_COST,
    IFLA_BRPORT_DESIGNATED_PORT,
    IFLA_BRPORT_FAST_LEAVE,
    IFLA_BRPORT_FORWARD_DELAY_TIMER,
    IFLA_BRPORT_GROUP_FWD_MASK,
    IFLA_BRPORT_GUARD,
    IFLA_BRPORT_HOLD_TIMER,
    IFLA_BRPORT_ID,
    IFLA_BRPORT_ISOLATED,
    IFLA_BRPORT_LEARNING,
    IFLA_BRPORT_LOCKED,
    IFLA_BRPORT_MCAST_FLOOD,
    IFLA_BRPORT_MCAST_TO_UCAST,
    IFLA_BRPORT_MESSAGE_AGE_TIMER,
    IFLA_BRPORT_MODE,
    IFLA_BRPORT_MULTICAST_ROUTER,
    IFLA_BRPORT_NEIGH_SUPPRESS,
    IFLA_BRPORT_NO,
    IFLA_BRPORT_PRIORITY,
    IFLA_BRPORT_PROTECT,
    IFLA_BRPORT_PROXYARP,
    IFLA_BRPORT_PROXYARP_WIFI,
    IFLA_BRPORT_ROOT_ID,
    IFLA_BRPORT_STATE,
    IFLA_BRPORT_TOPOLOGY_CHANGE_ACK,
    IFLA_BRPORT_UNICAST_FLOOD,
    IFLA_BRPORT_VLAN_TUNNEL,
    IFLA_INFO_DATA,
    IFLA_INFO_KIND,
    IFLA_INFO_SLAVE_DATA,
    IFLA_INFO_SLAVE_KIND,
    IFLA_VLAN_FLAGS,
    IFLA_VLAN_ID,
    IFLA_VLAN_PROTOCOL,
    IFLA_VXLAN_AGEING,
    IFLA_VXLAN_COLLECT_METADATA,
    IFLA_VXLAN_DF,
    IFLA_VXLAN_GBP,
    IFLA_VXLAN_GPE,
    IFLA_VXLAN_GROUP,
    IFLA_VXLAN_GROUP6,
    IFLA_VXLAN_ID,
    IFLA_VXLAN_L2MISS,
    IFLA_VXLAN_L3MISS,
    IFLA_VXLAN_LABEL,
    IFLA_VXLAN_LEARNING,
    IFLA_VXLAN_LIMIT,
    IFLA_VXLAN_LINK,
    IFLA_VXLAN_LOCAL,
    IFLA_VXLAN_LOCAL6,
    IFLA_VXLAN_PORT,
    IFLA_VXLAN_PORT_RANGE,
    IFLA_VXLAN_PROXY,
    IFLA_VXLAN_REMCSUM_RX,
    IFLA_VXLAN_REMCSUM_TX,
    IFLA_VXLAN_RSC,
    IFLA_VXLAN_TOS,
    IFLA_VXLAN_TTL,
    IFLA_VXLAN_TTL_INHERIT,
    IFLA_VXLAN_UDP_CSUM,
    IFLA_VXLAN_UDP_ZERO_CSUM6_RX,
    IFLA_VXLAN_UDP_ZERO_CSUM6_TX,
    IFLA_VXLAN_VNIFILTER,
    U16,
    U32,
    U32_PAIR,
    U64,
)
from .core import kstr, parse_attrs
from .core import span_bytes as _addr
from .core import span_u8 as _u8
from .core import span_u32 as _u32
from .names import format_address, format_mac

__all__ = [
    "KIND_DECODERS",
    "SLAVE_KIND_DECODERS",
    "decode_bridge",
    "decode_bridge_port",
    "decode_linkinfo",
    "decode_vlan",
    "decode_vxlan",
]


def _is_multicast(raw: bytes) -> bool:
    return 224 <= raw[0] <= 239 if len(raw) == 4 else raw[0] == 0xFF


def decode_vxlan(buf: bytes, start: int, end: int, names: dict[int, str]) -> dict[str, Any]:
    """IFLA_VXLAN_* as iproute2's vxlan_print_opt keys (same order and conditions)."""
    a = parse_attrs(buf, start, end)
    data: dict[str, Any] = {}
    if IFLA_VXLAN_COLLECT_METADATA in a and _u8(buf, a[IFLA_VXLAN_COLLECT_METADATA]):
        data["external"] = True
    if IFLA_VXLAN_VNIFILTER in a and _u8(buf, a[IFLA_VXLAN_VNIFILTER]):
        data["vnifilter"] = True
    if IFLA_VXLAN_ID in a and a[IFLA_VXLAN_ID][1] - a[IFLA_VXLAN_ID][0] >= 4:
        data["id"] = _u32(buf, a[IFLA_VXLAN_ID])
    if IFLA_VXLAN_GROUP in a:
        raw = _addr(buf, a[IFLA_VXLAN_GROUP])
        if any(raw):
            data["group" if _is_multicast(raw) else "remote"] = format_address(raw)
    elif IFLA_VXLAN_GROUP6 in a:
        raw = _addr(buf, a[IFLA_VXLAN_GROUP6])
        if any(raw):
            data["group6" if _is_multicast(raw) else "remote6"] = format_address(raw)
    if IFLA_VXLAN_LOCAL in a:
        raw = _addr(buf, a[IFLA_VXLAN_LOCAL])
        if any(raw):
            data["local"] = format_address(raw)
    elif IFLA_VXLAN_LOCAL6 in a:
        raw = _addr(buf, a[IFLA_VXLAN_LOCAL6])
        if any(raw):
            data["local6"] = format_address(raw)
    if IFLA_VXLAN_LINK in a and _u32(buf, a[IFLA_VXLAN_LINK]):
        link = _u32(buf, a[IFLA_VXLAN_LINK])
        data["link"] = names.get(link, f"if{link}")
    if IFLA_VXLAN_PORT_RANGE in a:
        low, high = BE16_PAIR.unpack_from(buf, a[IFLA_VXLAN_PORT_RANGE][0])
        data["port_range"] = {"low": low, "high": high}
    if IFLA_VXLAN_PORT in a:
        data["port"] = BE16.unpack_from(buf, a[IFLA_VXLAN_PORT][0])[0]
    if IFLA_VXLAN_LEARNING in a:
        data["learning"] = bool(_u8(buf, a[IFLA_VXLAN_LEARNING]))
    for attr, key in (
        (IFLA_VXLAN_PROXY, "proxy"),
        (IFLA_VXLAN_RSC, "rsc"),
        (IFLA_VXLAN_L2MISS, "l2miss"),
        (IFLA_VXLAN_L3MISS, "l3miss"),
    ):
        if attr in a and _u8(buf, a[attr]):
            data[key] = True
    if IFLA_VXLAN_TOS in a and _u8(buf, a[IFLA_VXLAN_TOS]):
        data["tos"] = f"{_u8(buf, a[IFLA_VXLAN_TOS]):#x}"
    if IFLA_VXLAN_TTL_INHERIT in a and _u8(buf, a[IFLA_VXLAN_TTL_INHERIT]):
        pass  # ttl inherit: iproute2 prints no ttl key
    elif IFLA_VXLAN_TTL in a:
        data["ttl"] = _u8(buf, a[IFLA_VXLAN_TTL])
    if IFLA_VXLAN_DF in a:
        df = _u8(buf, a[IFLA_VXLAN_DF])
        data["df"] = ("unset", "set", "inherit")[df] if df < 3 else str(df)
    if IFLA_VXLAN_LABEL in a and _u32(buf, a[IFLA_VXLAN_LABEL]):
        data["label"] = f"{BE32.unpack_from(buf, a[IFLA_VXLAN_LABEL][0])[0]:#x}"
    if IFLA_VXLAN_AGEING in a:
        data["ageing"] = _u32(buf, a[IFLA_VXLAN_AGEING])
    if IFLA_VXLAN_LIMIT in a and _u32(buf, a[IFLA_VXLAN_LIMIT]):
        data["limit"] = _u32(buf, a[IFLA_VXLAN_LIMIT])
    for attr, key in (
        (IFLA_VXLAN_UDP_CSUM, "udp_csum"),
        (IFLA_VXLAN_UDP_ZERO_CSUM6_TX, "udp_zero_csum6_tx"),
        (IFLA_VXLAN_UDP_ZERO_CSUM6_RX, "udp_zero_csum6_rx"),
    ):
        if attr in a:
            data[key] = bool(_u8(buf, a[attr]))
    for attr, key in ((IFLA_VXLAN_REMCSUM_TX, "remcsum_tx"), (IFLA_VXLAN_REMCSUM_RX, "remcsum_rx")):
        if attr in a and _u8(buf, a[attr]):
            data[key] = True
    if IFLA_VXLAN_GBP in a:
        data["gbp"] = True
    if IFLA_VXLAN_GPE in a:
        data["gpe"] = True
    return data


def _bridge_id(buf: bytes, span: tuple[int, int]) -> str:
    """iproute2's br_dump_bridge_id: '8000.2:42:ac:11:0:2' (MAC bytes in %x)."""
    raw = _addr(buf, span)
    return f"{raw[0]:02x}{raw[1]:02x}." + ":".join(f"{b:x}" for b in raw[2:8])


def _timer(buf: bytes, span: tuple[int, int]) -> float:
    centis = U64.unpack_from(buf, span[0])[0]
    return round(centis / 100, 2)


def _hex_or_zero(value: int) -> str:
    return f"{value:#x}" if value else "0"


_PORT_STATES = ("disabled", "listening", "learning", "forwarding", "blocking")


def _port_state(state: int) -> str:
    return _PORT_STATES[state] if state < len(_PORT_STATES) else str(state)


_VALUE_READERS = {
    "u8": _u8,
    "u16": lambda buf, span: U16.unpack_from(buf, span[0])[0],
    "u32": _u32,
    "u64": lambda buf, span: U64.unpack_from(buf, span[0])[0],
    "bool": lambda buf, span: bool(_u8(buf, span)),
    # print_0xhex: "%#llx", which prints 0 as "0"
    "hex16": lambda buf, span: f"{U16.unpack_from(buf, span[0])[0]:#x}",
    "0xhex16": lambda buf, span: _hex_or_zero(U16.unpack_from(buf, span[0])[0]),
    "hexstr16": lambda buf, span: f"0x{U16.unpack_from(buf, span[0])[0]:x}",
    "mac": lambda buf, span: format_mac(_addr(buf, span)),
    "bridge_id": _bridge_id,
    "timer": _timer,
    "proto": lambda buf, span: {0x8100: "802.1Q", 0x88A8: "802.1ad"}.get(
        BE16.unpack_from(buf, span[0])[0], f"{BE16.unpack_from(buf, span[0])[0]:#x}"
    ),
    "port_state": lambda buf, span: _port_state(_u8(buf, span)),
}
# (IFLA_BR_* attribute, iproute2 key, reader), in bridge_print_opt order
_BRIDGE_ATTRS = (
    (IFLA_BR_FORWARD_DELAY, "forward_delay", "u32"),
    (IFLA_BR_HELLO_TIME, "hello_time", "u32"),
    (IFLA_BR_MAX_AGE, "max_age", "u32"),
    (IFLA_BR_AGEING_TIME, "ageing_time", "u32"),
    (IFLA_BR_STP_STATE, "stp_state", "u32"),
    (IFLA_BR_PRIORITY, "priority", "u16"),
    (IFLA_BR_VLAN_FILTERING, "vlan_filtering", "u8"),
    (IFLA_BR_VLAN_PROTOCOL, "vlan_protocol", "proto"),
    (IFLA_BR_BRIDGE_ID, "bridge_id", "bridge_id"),
    (IFLA_BR_ROOT_ID, "root_id", "bridge_id"),
    (IFLA_BR_ROOT_PORT, "root_port", "u16"),
    (IFLA_BR_ROOT_PATH_COST, "root_path_cost", "u32"),
    (IFLA_BR_TOPOLOGY_CHANGE, "topology_change", "u8"),
    (IFLA_BR_TOPOLOGY_CHANGE_DETECTED, "topology_change_detected", "u8"),
    (IFLA_BR_HELLO_TIMER, "hello_timer", "timer"),
    (IFLA_BR_TCN_TIMER, "tcn_timer", "timer"),
    (IFLA_BR_TOPOLOGY_CHANGE_TIMER, "topology_change_timer", "timer"),
    (IFLA_BR_GC_TIMER, "gc_timer", "timer"),
    (IFLA_BR_VLAN_DEFAULT_PVID, "vlan_default_pvid", "u16"),
    (IFLA_BR_VLAN_STATS_ENABLED, "vlan_stats_enabled", "u8"),
    (IFLA_BR_VLAN_STATS_PER_PORT, "vlan_stats_per_port", "u8"),
    (IFLA_BR_GROUP_FWD_MASK, "group_fwd_mask", "0xhex16"),
    (IFLA_BR_GROUP_ADDR, "group_addr", "mac"),
    (IFLA_BR_MCAST_SNOOPING, "mcast_snooping", "u8"),
    (IFLA_BR_MCAST_ROUTER, "mcast_router", "u8"),
    (IFLA_BR_MCAST_QUERY_USE_IFADDR, "mcast_query_use_ifaddr", "u8"),
    (IFLA_BR_MCAST_QUERIER, "mcast_querier", "u8"),
    (IFLA_BR_MCAST_HASH_ELASTICITY, "mcast_hash_elasticity", "u32"),
    (IFLA_BR_MCAST_HASH_MAX, "mcast_hash_max", "u32"),
    (IFLA_BR_MCAST_LAST_MEMBER_CNT, "mcast_last_member_cnt", "u32"),
    (IFLA_BR_MCAST_STARTUP_QUERY_CNT, "mcast_startup_query_cnt", "u32"),
    (IFLA_BR_MCAST_LAST_MEMBER_INTVL, "mcast_last_member_intvl", "u64"),
    (IFLA_BR_MCAST_MEMBERSHIP_INTVL, "mcast_membership_intvl", "u64"),
    (IFLA_BR_MCAST_QUERIER_INTVL, "mcast_querier_intvl", "u64"),
    (IFLA_BR_MCAST_QUERY_INTVL, "mcast_query_intvl", "u64"),
    (IFLA_BR_MCAST_QUERY_RESPONSE_INTVL, "mcast_query_response_intvl", "u64"),
    (IFLA_BR_MCAST_STARTUP_QUERY_INTVL, "mcast_startup_query_intvl", "u64"),
    (IFLA_BR_MCAST_STATS_ENABLED, "mcast_stats_enabled", "u8"),
    (IFLA_BR_MCAST_IGMP_VERSION, "mcast_igmp_version", "u8"),
    (IFLA_BR_MCAST_MLD_VERSION, "mcast_mld_version", "u8"),
    (IFLA_BR_NF_CALL_IPTABLES, "nf_call_iptables", "u8"),
    (IFLA_BR_NF_CALL_IP6TABLES, "nf_call_ip6tables", "u8"),
    (IFLA_BR_NF_CALL_ARPTABLES, "nf_call_arptables", "u8"),
)
# (IFLA_BRPORT_* attribute, iproute2 key, reader) for bridge ports
_BRIDGE_PORT_ATTRS = (
    (IFLA_BRPORT_STATE, "state", "port_state"),
    (IFLA_BRPORT_PRIORITY, "priority", "u16"),
    (IFLA_BRPORT_COST, "cost", "u32"),
    (IFLA_BRPORT_MODE, "hairpin", "bool"),
    (IFLA_BRPORT_GUARD, "guard", "bool"),
    (IFLA_BRPORT_PROTECT, "root_block", "bool"),
    (IFLA_BRPORT_FAST_LEAVE, "fastleave", "bool"),
    (IFLA_BRPORT_LEARNING, "learning", "bool"),
    (IFLA_BRPORT_UNICAST_FLOOD, "flood", "bool"),
    (IFLA_BRPORT_ID, "id", "hex16"),
    (IFLA_BRPORT_NO, "no", "hex16"),
    (IFLA_BRPORT_DESIGNATED_PORT, "designated_port", "u16"),
    (IFLA_BRPORT_DESIGNATED_COST, "designated_cost", "u16"),
    (IFLA_BRPORT_BRIDGE_ID, "bridge_id", "bridge_id"),
    (IFLA_BRPORT_ROOT_ID, "root_id", "bridge_id"),
    (IFLA_BRPORT_HOLD_TIMER, "hold_timer", "timer"),
    (IFLA_BRPORT_MESSAGE_AGE_TIMER, "message_age_timer", "timer"),
    (IFLA_BRPORT_FORWARD_DELAY_TIMER, "forward_delay_timer", "timer"),
    (IFLA_BRPORT_TOPOLOGY_CHANGE_ACK, "topology_change_ack", "u8"),
    (IFLA_BRPORT_CONFIG_PENDING, "config_pending", "u8"),
    (IFLA_BRPORT_PROXYARP, "proxy_arp", "bool"),
    (IFLA_BRPORT_PROXYARP_WIFI, "proxy_arp_wifi", "bool"),
    (IFLA_BRPORT_MULTICAST_ROUTER, "multicast_router", "u8"),
    (IFLA_BRPORT_MCAST_FLOOD, "mcast_flood", "bool"),
    (IFLA_BRPORT_BCAST_FLOOD, "bcast_flood", "bool"),
    (IFLA_BRPORT_MCAST_TO_UCAST, "mcast_to_unicast", "bool"),
    (IFLA_BRPORT_NEIGH_SUPPRESS, "neigh_suppress", "bool"),
    (IFLA_BRPORT_GROUP_FWD_MASK, "group_fwd_mask", "0xhex16"),
    (IFLA_BRPORT_GROUP_FWD_MASK, "group_fwd_mask_str", "hexstr16"),
    (IFLA_BRPORT_VLAN_TUNNEL, "vlan_tunnel", "bool"),
    (IFLA_BRPORT_ISOLATED, "isolated", "bool"),
    (IFLA_BRPORT_LOCKED, "locked", "bool"),
)
_VLAN_FLAGS = (
    (1, "REORDER_HDR"),
    (2, "GVRP"),
    (4, "LOOSE_BINDING"),
    (8, "MVRP"),
    (16, "BRIDGE_BINDING"),
)


def _decode_table(buf: bytes, start: int, end: int, table: tuple) -> dict[str, Any]:
    a = parse_attrs(buf, start, end)
    return {key: _VALUE_READERS[reader](buf, a[attr]) for attr, key, reader in table if attr in a}


def decode_bridge(buf: bytes, start: int, end: int) -> dict[str, Any]:
    data = _decode_table(buf, start, end, _BRIDGE_ATTRS)
    a = parse_attrs(buf, start, end)
    if IFLA_BR_MULTI_BOOLOPT in a:  # struct br_boolopt_multi {optval, optmask}
        value, mask = U32_PAIR.unpack_from(buf, a[IFLA_BR_MULTI_BOOLOPT][0])
        for bit, key in ((0, "no_linklocal_learn"), (1, "mcast_vlan_snooping")):
            if mask & (1 << bit):
                data[key] = (value >> bit) & 1
    return data


def decode_vlan(buf: bytes, start: int, end: int) -> dict[str, Any]:
    a = parse_attrs(buf, start, end)
    data: dict[str, Any] = {}
    if IFLA_VLAN_PROTOCOL in a:
        data["protocol"] = _VALUE_READERS["proto"](buf, a[IFLA_VLAN_PROTOCOL])
    if IFLA_VLAN_ID in a:
        data["id"] = U16.unpack_from(buf, a[IFLA_VLAN_ID][0])[0]
    if IFLA_VLAN_FLAGS in a:  # struct ifla_vlan_flags {flags, mask}
        flags = U32.unpack_from(buf, a[IFLA_VLAN_FLAGS][0])[0]
        data["flags"] = [name for bit, name in _VLAN_FLAGS if flags & bit]
    return data


def decode_bridge_port(buf: bytes, start: int, end: int) -> dict[str, Any]:
    """IFLA_BRPORT_* (a bridge port's IFLA_INFO_SLAVE_DATA) as iproute2's keys."""
    return _decode_table(buf, start, end, _BRIDGE_PORT_ATTRS)


#: link kind -> decoder of its IFLA_INFO_DATA (buf, start, end, ifindex names), for the
#: kinds iproute2 prints info_data of ({} when the kernel sent none); other kinds get no
#: key.  A veth has none in a dump: the kernel fills VETH_INFO_PEER only in requests, and
#: the peer is found from IFLA_LINK + IFLA_LINK_NETNSID (see peers.py).
KIND_DECODERS: dict[str, Callable[[bytes, int, int, dict[int, str]], dict[str, Any]]] = {
    "vxlan": decode_vxlan,
    "bridge": lambda buf, start, end, names: decode_bridge(buf, start, end),
    "vlan": lambda buf, start, end, names: decode_vlan(buf, start, end),
}
#: port (slave) kind -> decoder of its IFLA_INFO_SLAVE_DATA
SLAVE_KIND_DECODERS: dict[str, Callable[[bytes, int, int], dict[str, Any]]] = {
    "bridge": decode_bridge_port,
}


def decode_linkinfo(buf: bytes, start: int, end: int, names: dict[int, str]) -> dict[str, Any]:
    """IFLA_LINKINFO as iproute2's `linkinfo` object: the kind, then its decoded data."""
    info: dict[str, Any] = {}
    spans = parse_attrs(buf, start, end)
    if IFLA_INFO_KIND in spans:
        kind = kstr(buf, *spans[IFLA_INFO_KIND])
        info["info_kind"] = kind
        decoder = KIND_DECODERS.get(kind)
        if decoder is not None:
            data = spans.get(IFLA_INFO_DATA)
            info["info_data"] = decoder(buf, *data, names) if data else {}
    if IFLA_INFO_SLAVE_KIND in spans:
        slave_kind = kstr(buf, *spans[IFLA_INFO_SLAVE_KIND])
        info["info_slave_kind"] = slave_kind
        decoder = SLAVE_KIND_DECODERS.get(slave_kind)
        if decoder is not None:
            data = spans.get(IFLA_INFO_SLAVE_DATA)
            info["info_slave_data"] = decoder(buf, *data) if data else {}
    return info
