"""Links and their addresses (RTM_GETLINK / RTM_GETADDR), as `ip -j -d addr show` prints them."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .core import NetlinkSocket, dump_with_retry, iter_attrs, parse_attrs, robust
from .names import address_family, format_address, format_mac, rt_scope

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = [
    "LinkRecord",
    "LinkTable",
    "count_links",
    "kstr",
    "link_names",
    "link_request",
    "link_table",
    "list_addresses",
    "list_links",
    "parse_address",
    "parse_link",
]

LinkRecord = dict[str, Any]

RTM_GETLINK = 18
RTM_NEWLINK = 16
RTM_GETADDR = 22

_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBi")
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
_BE16 = struct.Struct("!H")
_CACHEINFO = struct.Struct("=IIII")

IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_QDISC = 1, 2, 3, 4, 5, 6
IFLA_MASTER, IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKMODE, IFLA_LINKINFO = 10, 13, 16, 17, 18
IFLA_IFALIAS, IFLA_GROUP, IFLA_EXT_MASK, IFLA_PROMISCUITY = 20, 27, 29, 30
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES, IFLA_CARRIER = 31, 32, 33
IFLA_LINK_NETNSID, IFLA_MIN_MTU, IFLA_MAX_MTU, IFLA_PROP_LIST, IFLA_ALT_IFNAME = 37, 50, 51, 52, 53
IFLA_PERM_ADDRESS, IFLA_ALLMULTI = 54, 61
IFLA_STATS64, IFLA_CARRIER_CHANGES = 23, 35
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND = 1, 2, 4
RTEXT_FILTER_SKIP_STATS = 1 << 3

IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_ANYCAST, IFA_CACHEINFO = 1, 2, 3, 4, 5, 6
IFA_FLAGS = 8

_IFF_NAMES = (
    (0x8, "LOOPBACK"),
    (0x2, "BROADCAST"),
    (0x10, "POINTOPOINT"),
    (0x1000, "MULTICAST"),
    (0x80, "NOARP"),
    (0x200, "ALLMULTI"),
    (0x100, "PROMISC"),
    (0x400, "MASTER"),
    (0x800, "SLAVE"),
    (0x4, "DEBUG"),
    (0x8000, "DYNAMIC"),
    (0x4000, "AUTOMEDIA"),
    (0x2000, "PORTSEL"),
    (0x20, "NOTRAILERS"),
    (0x1, "UP"),
    (0x10000, "LOWER_UP"),
    (0x20000, "DORMANT"),
    (0x40000, "ECHO"),
)
_IFF_UP, _IFF_RUNNING = 0x1, 0x40
_OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
_LINK_TYPES = {
    1: "ether",
    2: "eether",
    3: "ax25",
    4: "pronet",
    5: "chaos",
    6: "ieee802",
    7: "arcnet",
    8: "appletlk",
    15: "dlci",
    19: "atm",
    23: "metricom",
    24: "ieee1394",
    27: "eui64",
    32: "infiniband",
    256: "slip",
    257: "cslip",
    258: "slip6",
    259: "cslip6",
    260: "rsrvd",
    264: "adapt",
    270: "rose",
    271: "x25",
    272: "hwx25",
    280: "can",
    512: "ppp",
    513: "cisco",
    516: "lapb",
    517: "ddcmp",
    518: "rawhdlc",
    768: "ipip",
    769: "tunnel6",
    770: "frad",
    771: "skip",
    772: "loopback",
    773: "localtlk",
    774: "fddi",
    775: "bif",
    776: "sit",
    777: "ip/ddp",
    778: "gre",
    779: "pimreg",
    780: "hippi",
    781: "ash",
    782: "econet",
    783: "irda",
    784: "fcpp",
    785: "fcal",
    786: "fcpl",
    787: "fcfb0",
    800: "tr",
    801: "tr",
    802: "fddi",
    803: "ieee802.11/radiotap",
    804: "ieee802.15.4",
    805: "ieee802.15.4/monitor",
    806: "phonet",
    807: "phonet_pipe",
    808: "caif",
    820: "ip6gre",
    823: "gre6",
    824: "netlink",
    825: "6lowpan",
    826: "vsockmon",
    0xFFFE: "none",
    0xFFFF: "void",
}
# IFA_F_* -> iproute2's JSON key, in print_ifa_flags order: (bit, key, IPv6 only)
_IFA_F_PERMANENT = 0x80
_IFA_FLAGS = (
    (0x01, "secondary", False),
    (0x01, "temporary", True),
    (0x02, "nodad", True),
    (0x04, "optimistic", True),
    (0x08, "dadfailed", True),
    (0x10, "home", True),
    (0x20, "deprecated", True),
    (0x40, "tentative", True),
    (_IFA_F_PERMANENT, "dynamic", True),
    (0x100, "mngtmpaddr", True),
    (0x200, "noprefixroute", False),
    (0x400, "autojoin", False),
    (0x800, "stable-privacy", True),
)


def kstr(buf: bytes, start: int, end: int) -> str:
    """A NUL-terminated kernel string; undecodable bytes survive as surrogates."""
    raw = bytes(buf[start:end])
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return raw.decode("utf-8", "surrogateescape")


def link_flags(flags: int) -> list[str]:
    """iproute2's print_link_flags as a list (NO-CARRIER first, M-DOWN never here)."""
    names = ["NO-CARRIER"] if flags & _IFF_UP and not flags & _IFF_RUNNING else []
    for bit, name in _IFF_NAMES:
        if flags & bit:
            names.append(name)
    rest = flags & ~(_IFF_RUNNING | sum(bit for bit, _ in _IFF_NAMES))
    if rest:
        names.append(f"{rest:x}")
    return names


def _u32(buf: bytes, span: tuple[int, int]) -> int:
    return _U32.unpack_from(buf, span[0])[0]


def _u8(buf: bytes, span: tuple[int, int]) -> int:
    return buf[span[0]]


def _addr(buf: bytes, span: tuple[int, int]) -> bytes:
    return bytes(buf[span[0] : span[1]])


def _is_multicast(raw: bytes) -> bool:
    return 224 <= raw[0] <= 239 if len(raw) == 4 else raw[0] == 0xFF


def _decode_vxlan(buf: bytes, start: int, end: int, names: dict[int, str]) -> dict[str, Any]:
    """IFLA_VXLAN_* as iproute2's vxlan_print_opt keys (same order and conditions)."""
    a = parse_attrs(buf, start, end)
    data: dict[str, Any] = {}
    if 25 in a and _u8(buf, a[25]):  # COLLECT_METADATA
        data["external"] = True
    if 30 in a and _u8(buf, a[30]):  # VNIFILTER
        data["vnifilter"] = True
    if 1 in a and a[1][1] - a[1][0] >= 4:
        data["id"] = _u32(buf, a[1])
    if 2 in a:  # GROUP (IPv4)
        raw = _addr(buf, a[2])
        if any(raw):
            data["group" if _is_multicast(raw) else "remote"] = format_address(raw)
    elif 16 in a:  # GROUP6
        raw = _addr(buf, a[16])
        if any(raw):
            data["group6" if _is_multicast(raw) else "remote6"] = format_address(raw)
    if 4 in a:
        raw = _addr(buf, a[4])
        if any(raw):
            data["local"] = format_address(raw)
    elif 17 in a:
        raw = _addr(buf, a[17])
        if any(raw):
            data["local6"] = format_address(raw)
    if 3 in a and _u32(buf, a[3]):
        data["link"] = names.get(_u32(buf, a[3]), f"if{_u32(buf, a[3])}")
    if 10 in a:
        low, high = struct.unpack_from("!HH", buf, a[10][0])
        data["port_range"] = {"low": low, "high": high}
    if 15 in a:
        data["port"] = _BE16.unpack_from(buf, a[15][0])[0]
    if 7 in a:
        data["learning"] = bool(_u8(buf, a[7]))
    for attr, key in ((11, "proxy"), (12, "rsc"), (13, "l2miss"), (14, "l3miss")):
        if attr in a and _u8(buf, a[attr]):
            data[key] = True
    if 6 in a and _u8(buf, a[6]):
        data["tos"] = f"{_u8(buf, a[6]):#x}"
    if 28 in a and _u8(buf, a[28]):  # TTL_INHERIT: no ttl key
        pass
    elif 5 in a:
        data["ttl"] = _u8(buf, a[5])
    if 29 in a:
        df = _u8(buf, a[29])
        data["df"] = ("unset", "set", "inherit")[df] if df < 3 else str(df)
    if 26 in a and _u32(buf, a[26]):
        data["label"] = f"{struct.unpack_from('!I', buf, a[26][0])[0]:#x}"
    if 8 in a:
        data["ageing"] = _u32(buf, a[8])
    if 9 in a and _u32(buf, a[9]):
        data["limit"] = _u32(buf, a[9])
    for attr, key in ((18, "udp_csum"), (19, "udp_zero_csum6_tx"), (20, "udp_zero_csum6_rx")):
        if attr in a:
            data[key] = bool(_u8(buf, a[attr]))
    for attr, key in ((21, "remcsum_tx"), (22, "remcsum_rx")):
        if attr in a and _u8(buf, a[attr]):
            data[key] = True
    if 23 in a:
        data["gbp"] = True
    if 27 in a:
        data["gpe"] = True
    return data


def _bridge_id(buf: bytes, span: tuple[int, int]) -> str:
    """iproute2's br_dump_bridge_id: '8000.2:42:ac:11:0:2' (MAC bytes in %x)."""
    raw = _addr(buf, span)
    return f"{raw[0]:02x}{raw[1]:02x}." + ":".join(f"{b:x}" for b in raw[2:8])


def _timer(buf: bytes, span: tuple[int, int]) -> float:
    centis = struct.unpack_from("=Q", buf, span[0])[0]
    return round(centis / 100, 2)


def _hex_or_zero(value: int) -> str:
    return f"{value:#x}" if value else "0"


_PORT_STATES = ("disabled", "listening", "learning", "forwarding", "blocking")


def _port_state(state: int) -> str:
    return _PORT_STATES[state] if state < len(_PORT_STATES) else str(state)


_VALUE_READERS = {
    "u8": _u8,
    "u16": lambda buf, span: _U16.unpack_from(buf, span[0])[0],
    "u32": _u32,
    "u64": lambda buf, span: struct.unpack_from("=Q", buf, span[0])[0],
    "bool": lambda buf, span: bool(_u8(buf, span)),
    # print_0xhex: "%#llx", which prints 0 as "0"
    "hex16": lambda buf, span: f"{_U16.unpack_from(buf, span[0])[0]:#x}",
    "0xhex16": lambda buf, span: _hex_or_zero(_U16.unpack_from(buf, span[0])[0]),
    "hexstr16": lambda buf, span: f"0x{_U16.unpack_from(buf, span[0])[0]:x}",
    "mac": lambda buf, span: format_mac(_addr(buf, span)),
    "bridge_id": _bridge_id,
    "timer": _timer,
    "proto": lambda buf, span: {0x8100: "802.1Q", 0x88A8: "802.1ad"}.get(
        _BE16.unpack_from(buf, span[0])[0], f"{_BE16.unpack_from(buf, span[0])[0]:#x}"
    ),
    "port_state": lambda buf, span: _port_state(_u8(buf, span)),
}
# (IFLA_BR_* attribute, iproute2 key, reader), in bridge_print_opt order
_BRIDGE_ATTRS = (
    (1, "forward_delay", "u32"),
    (2, "hello_time", "u32"),
    (3, "max_age", "u32"),
    (4, "ageing_time", "u32"),
    (5, "stp_state", "u32"),
    (6, "priority", "u16"),
    (7, "vlan_filtering", "u8"),
    (8, "vlan_protocol", "proto"),
    (11, "bridge_id", "bridge_id"),
    (10, "root_id", "bridge_id"),
    (12, "root_port", "u16"),
    (13, "root_path_cost", "u32"),
    (14, "topology_change", "u8"),
    (15, "topology_change_detected", "u8"),
    (16, "hello_timer", "timer"),
    (17, "tcn_timer", "timer"),
    (18, "topology_change_timer", "timer"),
    (19, "gc_timer", "timer"),
    (39, "vlan_default_pvid", "u16"),
    (41, "vlan_stats_enabled", "u8"),
    (45, "vlan_stats_per_port", "u8"),
    (9, "group_fwd_mask", "0xhex16"),
    (20, "group_addr", "mac"),
    (23, "mcast_snooping", "u8"),
    (22, "mcast_router", "u8"),
    (24, "mcast_query_use_ifaddr", "u8"),
    (25, "mcast_querier", "u8"),
    (26, "mcast_hash_elasticity", "u32"),
    (27, "mcast_hash_max", "u32"),
    (28, "mcast_last_member_cnt", "u32"),
    (29, "mcast_startup_query_cnt", "u32"),
    (30, "mcast_last_member_intvl", "u64"),
    (31, "mcast_membership_intvl", "u64"),
    (32, "mcast_querier_intvl", "u64"),
    (33, "mcast_query_intvl", "u64"),
    (34, "mcast_query_response_intvl", "u64"),
    (35, "mcast_startup_query_intvl", "u64"),
    (42, "mcast_stats_enabled", "u8"),
    (43, "mcast_igmp_version", "u8"),
    (44, "mcast_mld_version", "u8"),
    (36, "nf_call_iptables", "u8"),
    (37, "nf_call_ip6tables", "u8"),
    (38, "nf_call_arptables", "u8"),
)
# (IFLA_BRPORT_* attribute, iproute2 key, reader) for bridge ports
_BRIDGE_PORT_ATTRS = (
    (1, "state", "port_state"),
    (2, "priority", "u16"),
    (3, "cost", "u32"),
    (4, "hairpin", "bool"),
    (5, "guard", "bool"),
    (6, "root_block", "bool"),
    (7, "fastleave", "bool"),
    (8, "learning", "bool"),
    (9, "flood", "bool"),
    (17, "id", "hex16"),
    (18, "no", "hex16"),
    (15, "designated_port", "u16"),
    (16, "designated_cost", "u16"),
    (14, "bridge_id", "bridge_id"),
    (13, "root_id", "bridge_id"),
    (23, "hold_timer", "timer"),
    (21, "message_age_timer", "timer"),
    (22, "forward_delay_timer", "timer"),
    (19, "topology_change_ack", "u8"),
    (20, "config_pending", "u8"),
    (10, "proxy_arp", "bool"),
    (12, "proxy_arp_wifi", "bool"),
    (25, "multicast_router", "u8"),
    (27, "mcast_flood", "bool"),
    (30, "bcast_flood", "bool"),
    (28, "mcast_to_unicast", "bool"),
    (32, "neigh_suppress", "bool"),
    (31, "group_fwd_mask", "0xhex16"),
    (31, "group_fwd_mask_str", "hexstr16"),
    (29, "vlan_tunnel", "bool"),
    (33, "isolated", "bool"),
    (39, "locked", "bool"),
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


def _decode_bridge(buf: bytes, start: int, end: int) -> dict[str, Any]:
    data = _decode_table(buf, start, end, _BRIDGE_ATTRS)
    a = parse_attrs(buf, start, end)
    if 46 in a:  # IFLA_BR_MULTI_BOOLOPT: struct br_boolopt_multi {optval, optmask}
        value, mask = struct.unpack_from("=II", buf, a[46][0])
        for bit, key in ((0, "no_linklocal_learn"), (1, "mcast_vlan_snooping")):
            if mask & (1 << bit):
                data[key] = (value >> bit) & 1
    return data


def _decode_vlan(buf: bytes, start: int, end: int) -> dict[str, Any]:
    a = parse_attrs(buf, start, end)
    data: dict[str, Any] = {}
    if 5 in a:  # IFLA_VLAN_PROTOCOL
        data["protocol"] = _VALUE_READERS["proto"](buf, a[5])
    if 1 in a:
        data["id"] = _U16.unpack_from(buf, a[1][0])[0]
    if 2 in a:  # struct ifla_vlan_flags {flags, mask}
        flags = _U32.unpack_from(buf, a[2][0])[0]
        data["flags"] = [name for bit, name in _VLAN_FLAGS if flags & bit]
    return data


#: kinds iproute2 prints info_data for ({} when the kernel sent none); others get no key
_INFO_DATA_DECODERS = {
    "vxlan": lambda buf, s, e, names: _decode_vxlan(buf, s, e, names),
    "bridge": lambda buf, s, e, names: _decode_bridge(buf, s, e),
    "vlan": lambda buf, s, e, names: _decode_vlan(buf, s, e),
}
_SLAVE_DATA_DECODERS = {
    "bridge": lambda buf, s, e: _decode_table(buf, s, e, _BRIDGE_PORT_ATTRS),
}


def _decode_linkinfo(buf: bytes, start: int, end: int, names: dict[int, str]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    spans = parse_attrs(buf, start, end)
    if IFLA_INFO_KIND in spans:
        kind = kstr(buf, *spans[IFLA_INFO_KIND])
        info["info_kind"] = kind
        decoder = _INFO_DATA_DECODERS.get(kind)
        if decoder is not None:
            data = spans.get(IFLA_INFO_DATA)
            info["info_data"] = decoder(buf, *data, names) if data else {}
    if IFLA_INFO_SLAVE_KIND in spans:
        slave_kind = kstr(buf, *spans[IFLA_INFO_SLAVE_KIND])
        info["info_slave_kind"] = slave_kind
        decoder = _SLAVE_DATA_DECODERS.get(slave_kind)
        if decoder is not None:
            data = spans.get(5)  # IFLA_INFO_SLAVE_DATA
            info["info_slave_data"] = decoder(buf, *data) if data else {}
    return info


def link_request(ifindex: int = 0, master: int = 0, *, stats: bool = False) -> bytes:
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    body += struct.pack("=HHI", 8, IFLA_EXT_MASK, 0 if stats else RTEXT_FILTER_SKIP_STATS)
    if master:
        body += struct.pack("=HHI", 8, IFLA_MASTER, master)
    return body


def _dump_links(
    sock: NetlinkSocket, master: int = 0, *, stats: bool = False
) -> Iterator[tuple[bytes, int, int]]:
    body = link_request(master=master, stats=stats)
    for kind, buf, start, end in sock.dump(RTM_GETLINK, body, what="link"):
        if kind == RTM_NEWLINK:
            yield buf, start, end


@dataclass
class LinkTable:
    """ifindex -> name and flags, as iproute2's ll_init_map keeps them."""

    names: dict[int, str] = field(default_factory=dict)
    flags: dict[int, int] = field(default_factory=dict)


def link_table(sock: NetlinkSocket) -> LinkTable:
    """Names and flags of every link in the socket's namespace."""
    table = LinkTable()
    for buf, start, end in dump_with_retry(lambda: _dump_links(sock), buffer_limit=1 << 30):
        index, flags = _IFINFOMSG.unpack_from(buf, start)[2:4]
        table.flags[index] = flags
        for kind, vstart, vend in iter_attrs(buf, start + 16, end):
            if kind == IFLA_IFNAME:
                table.names[index] = kstr(buf, vstart, vend)
                break
    return table


def link_names(sock: NetlinkSocket) -> dict[int, str]:
    """ifindex -> ifname for every link (iproute2's ll_init_map)."""
    return link_table(sock).names


def format_link_address(raw: bytes, iftype: int) -> str:
    """iproute2's ll_addr_n2a: IP text for IP tunnels, else hex bytes joined by ':'."""
    if len(raw) == 4 and iftype in (768, 776, 778):  # ipip, sit, gre
        return format_address(raw)
    if len(raw) == 16 and iftype in (769, 823):  # ip6tnl, ip6gre
        return format_address(raw)
    return format_mac(raw)


_QUEUE_ATTRS = (
    (31, "num_tx_queues"),
    (32, "num_rx_queues"),
    (41, "gso_max_size"),
    (40, "gso_max_segs"),
    (59, "tso_max_size"),
    (60, "tso_max_segs"),
    (58, "gro_max_size"),
)


@robust("link")
def parse_link(buf: bytes, start: int, end: int, table: LinkTable) -> LinkRecord:
    """One RTM_NEWLINK as `ip -j -d addr show` prints the link (keys in its order)."""
    _family, iftype, index, flags, _change = _IFINFOMSG.unpack_from(buf, start)
    a = parse_attrs(buf, start + 16, end)
    names = table.names
    rec: LinkRecord = {"ifindex": index}
    link_netnsid = _u32(buf, a[IFLA_LINK_NETNSID]) if IFLA_LINK_NETNSID in a else None
    mdown = False
    if IFLA_LINK in a:
        peer = _u32(buf, a[IFLA_LINK])
        if peer == 0:
            rec["link"] = None
        elif link_netnsid is not None:
            rec["link_index"] = peer
        else:
            rec["link"] = names.get(peer, f"if{peer}")
            peer_flags = table.flags.get(peer)
            mdown = peer_flags is not None and not peer_flags & _IFF_UP
    rec["ifname"] = kstr(buf, *a[IFLA_IFNAME]) if IFLA_IFNAME in a else f"if{index}"
    rec["flags"] = link_flags(flags) + (["M-DOWN"] if mdown else [])
    if IFLA_MTU in a:
        rec["mtu"] = _u32(buf, a[IFLA_MTU])
    if IFLA_QDISC in a:
        rec["qdisc"] = kstr(buf, *a[IFLA_QDISC])
    if IFLA_MASTER in a:
        master = _u32(buf, a[IFLA_MASTER])
        rec["master"] = names.get(master, f"if{master}")
    if IFLA_OPERSTATE in a:
        state = _u8(buf, a[IFLA_OPERSTATE])
        if state < len(_OPERSTATES):
            rec["operstate"] = _OPERSTATES[state]
        else:
            rec["operstate_index"] = state
    if IFLA_GROUP in a:
        group = _u32(buf, a[IFLA_GROUP])
        rec["group"] = "default" if group == 0 else str(group)
    if IFLA_TXQLEN in a and _u32(buf, a[IFLA_TXQLEN]):
        rec["txqlen"] = _u32(buf, a[IFLA_TXQLEN])
    rec["link_type"] = _LINK_TYPES.get(iftype, f"[{iftype}]")
    if IFLA_ADDRESS in a:
        rec["address"] = format_link_address(_addr(buf, a[IFLA_ADDRESS]), iftype)
    if IFLA_BROADCAST in a:
        if flags & 0x10:  # IFF_POINTOPOINT
            rec["link_pointtopoint"] = True
        rec["broadcast"] = format_link_address(_addr(buf, a[IFLA_BROADCAST]), iftype)
    if IFLA_PERM_ADDRESS in a and IFLA_ADDRESS in a:
        perm = _addr(buf, a[IFLA_PERM_ADDRESS])
        if perm != _addr(buf, a[IFLA_ADDRESS]):
            rec["permaddr"] = format_link_address(perm, iftype)
    if link_netnsid is not None:
        rec["link_netnsid"] = link_netnsid if link_netnsid < 2**31 else link_netnsid - 2**32
    for attr, key in (
        (IFLA_PROMISCUITY, "promiscuity"),
        (IFLA_ALLMULTI, "allmulti"),
        (IFLA_MIN_MTU, "min_mtu"),
        (IFLA_MAX_MTU, "max_mtu"),
    ):
        if attr in a:
            rec[key] = _u32(buf, a[attr])
    if IFLA_LINKINFO in a:
        rec["linkinfo"] = _decode_linkinfo(buf, *a[IFLA_LINKINFO], names)
    for attr, key in _QUEUE_ATTRS:
        if attr in a:
            rec[key] = _u32(buf, a[attr])
    if IFLA_IFALIAS in a:
        rec["ifalias"] = kstr(buf, *a[IFLA_IFALIAS])
    if IFLA_STATS64 in a:
        carrier = a.get(IFLA_CARRIER_CHANGES)
        changes = _u32(buf, carrier) if carrier else None
        rec["stats64"] = parse_stats64(buf, a[IFLA_STATS64], changes)
    if IFLA_PROP_LIST in a:
        alt = [
            kstr(buf, s, e)
            for k, s, e in iter_attrs(buf, *a[IFLA_PROP_LIST])
            if k == IFLA_ALT_IFNAME
        ]
        if alt:
            rec["altnames"] = alt
    return rec


# struct rtnl_link_stats64, in the kernel's order
_STATS64_FIELDS = (
    "rx_packets tx_packets rx_bytes tx_bytes rx_errors tx_errors rx_dropped tx_dropped "
    "multicast collisions rx_length_errors rx_over_errors rx_crc_errors rx_frame_errors "
    "rx_fifo_errors rx_missed_errors tx_aborted_errors tx_carrier_errors tx_fifo_errors "
    "tx_heartbeat_errors tx_window_errors rx_compressed tx_compressed rx_nohandler "
    "rx_otherhost_dropped"
).split()
# iproute2's print_stats64 keys (`ip -s -s -j link`), in its order: (key, field, only if non-zero)
_RX_KEYS = (
    ("bytes", "rx_bytes", False),
    ("packets", "rx_packets", False),
    ("errors", "rx_errors", False),
    ("dropped", "rx_dropped", False),
    ("over_errors", "rx_over_errors", False),
    ("multicast", "multicast", False),
    ("compressed", "rx_compressed", True),
    ("length_errors", "rx_length_errors", False),
    ("crc_errors", "rx_crc_errors", False),
    ("frame_errors", "rx_frame_errors", False),
    ("fifo_errors", "rx_fifo_errors", False),
    ("missed_errors", "rx_missed_errors", False),
    ("nohandler", "rx_nohandler", True),
    ("otherhost", "rx_otherhost_dropped", True),
)
_TX_KEYS = (
    ("bytes", "tx_bytes", False),
    ("packets", "tx_packets", False),
    ("errors", "tx_errors", False),
    ("dropped", "tx_dropped", False),
    ("carrier_errors", "tx_carrier_errors", False),
    ("collisions", "collisions", False),
    ("compressed", "tx_compressed", True),
    ("aborted_errors", "tx_aborted_errors", False),
    ("fifo_errors", "tx_fifo_errors", False),
    ("window_errors", "tx_window_errors", False),
    ("heartbeat_errors", "tx_heartbeat_errors", False),
)


def parse_stats64(buf: bytes, span: tuple[int, int], carrier_changes: int | None) -> dict:
    """IFLA_STATS64 as iproute2's `stats64` object ({"rx": {...}, "tx": {...}})."""
    count = min(len(_STATS64_FIELDS), (span[1] - span[0]) // 8)
    counters = struct.unpack_from(f"={count}Q", buf, span[0])
    values = dict(zip(_STATS64_FIELDS[:count], counters, strict=True))
    stats: dict[str, dict[str, int]] = {"rx": {}, "tx": {}}
    for side, keys in (("rx", _RX_KEYS), ("tx", _TX_KEYS)):
        for key, name, only_set in keys:
            value = values.get(name)
            if value is not None and (value or not only_set):
                stats[side][key] = value
    if carrier_changes is not None:
        stats["tx"]["carrier_changes"] = carrier_changes
    return stats


@robust("address")
def parse_address(buf: bytes, start: int, end: int) -> tuple[int, dict[str, Any]]:
    family, prefixlen, hdr_flags, scope, index = _IFADDRMSG.unpack_from(buf, start)
    a = parse_attrs(buf, start + 8, end)
    flags = _u32(buf, a[IFA_FLAGS]) if IFA_FLAGS in a else hdr_flags
    info: dict[str, Any] = {"family": address_family(family)}
    local = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
    if local:
        info["local"] = format_address(bytes(buf[local[0] : local[1]]))
    if (
        IFA_ADDRESS in a
        and IFA_LOCAL in a
        and bytes(buf[a[IFA_ADDRESS][0] : a[IFA_ADDRESS][1]])
        != bytes(buf[a[IFA_LOCAL][0] : a[IFA_LOCAL][1]])
    ):
        info["address"] = format_address(bytes(buf[a[IFA_ADDRESS][0] : a[IFA_ADDRESS][1]]))
    info["prefixlen"] = prefixlen
    if 9 in a:  # IFA_RT_PRIORITY
        info["metric"] = _u32(buf, a[9])
    if IFA_BROADCAST in a:
        info["broadcast"] = format_address(bytes(buf[a[IFA_BROADCAST][0] : a[IFA_BROADCAST][1]]))
    if IFA_ANYCAST in a:
        info["anycast"] = format_address(bytes(buf[a[IFA_ANYCAST][0] : a[IFA_ANYCAST][1]]))
    info["scope"] = rt_scope(scope)
    is_inet6 = family == socket.AF_INET6
    for bit, key, inet6_only in _IFA_FLAGS:
        if (inet6_only and not is_inet6) or (key == "secondary" and is_inet6):
            continue
        if bit == _IFA_F_PERMANENT:
            if not flags & bit:
                info[key] = True  # iproute2 prints "dynamic" for non-permanent
        elif flags & bit:
            info[key] = True
    if IFA_LABEL in a:
        info["label"] = kstr(buf, *a[IFA_LABEL])
    if IFA_CACHEINFO in a:
        preferred, valid, _c, _t = _CACHEINFO.unpack_from(buf, a[IFA_CACHEINFO][0])
        info["valid_life_time"] = valid
        info["preferred_life_time"] = preferred
    return index, info


def list_addresses(sock: NetlinkSocket, family: int = socket.AF_UNSPEC) -> dict[int, list[dict]]:
    """ifindex -> addr_info entries, in the kernel's order."""
    body = _IFADDRMSG.pack(family, 0, 0, 0, 0)
    by_index: dict[int, list[dict]] = {}

    def dump() -> Iterator[tuple[int, dict]]:
        for kind, buf, start, end in sock.dump(RTM_GETADDR, body, what="address"):
            if kind == 20:  # RTM_NEWADDR
                yield parse_address(buf, start, end)

    for index, info in dump_with_retry(dump, buffer_limit=1 << 30):
        by_index.setdefault(index, []).append(info)
    return by_index


def list_links(
    namespace: NetNamespace | None,
    *,
    name: str | None = None,
    master: str | None = None,
    addresses: bool = True,
    stats: bool = False,
    sock: NetlinkSocket | None = None,
) -> Iterator[LinkRecord]:
    """Stream the links of a namespace as `ip -j -d addr show` records.

    `name` keeps one interface, `master` the ports of one bridge (filtered by
    the kernel); `stats` adds the counters (`stats64`, like `ip -s -s -j link`).
    Raises NotFoundError for an unknown name or master.
    """
    from ..errors import NotFoundError

    own = sock is None
    sock = sock or NetlinkSocket(namespace)
    try:
        table = link_table(sock)
        names = table.names
        by_name = {v: k for k, v in names.items()}
        if name is not None and name not in by_name:
            raise NotFoundError(f"no interface named {name!r} in this namespace")
        master_index = 0
        if master is not None:
            master_index = by_name.get(master, 0)
            if not master_index:
                raise NotFoundError(f"no interface named {master!r} in this namespace")
        addrs = list_addresses(sock) if addresses else {}
        for buf, start, end in dump_with_retry(
            lambda: _dump_links(sock, master_index, stats=stats)
        ):
            index = _IFINFOMSG.unpack_from(buf, start)[2]
            if name is not None and names.get(index) != name:
                continue
            rec = parse_link(buf, start, end, table)
            if addresses:
                rec["addr_info"] = addrs.get(index, [])
            yield rec
    finally:
        if own:
            sock.close()


def count_links(sock: NetlinkSocket) -> int:
    """How many links the socket's namespace has."""
    return sum(1 for _ in dump_with_retry(lambda: _dump_links(sock), buffer_limit=1 << 30))
