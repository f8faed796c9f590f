"""Links and their addresses (RTM_GETLINK / RTM_GETADDR), as `ip -j -d addr show` prints them."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .constants import (
    IFA_ADDRESS,
    IFA_ANYCAST,
    IFA_BROADCAST,
    IFA_CACHEINFO,
    IFA_CACHEINFO_STRUCT,
    IFA_F_PERMANENT,
    IFA_FLAGS,
    IFA_LABEL,
    IFA_LOCAL,
    IFA_RT_PRIORITY,
    IFADDRMSG,
    IFINFOMSG,
    IFLA_ADDRESS,
    IFLA_ALLMULTI,
    IFLA_ALT_IFNAME,
    IFLA_BROADCAST,
    IFLA_CARRIER_CHANGES,
    IFLA_EXT_MASK,
    IFLA_GRO_MAX_SIZE,
    IFLA_GROUP,
    IFLA_GSO_MAX_SEGS,
    IFLA_GSO_MAX_SIZE,
    IFLA_IFALIAS,
    IFLA_IFNAME,
    IFLA_LINK,
    IFLA_LINK_NETNSID,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MAX_MTU,
    IFLA_MIN_MTU,
    IFLA_MTU,
    IFLA_NUM_RX_QUEUES,
    IFLA_NUM_TX_QUEUES,
    IFLA_OPERSTATE,
    IFLA_PERM_ADDRESS,
    IFLA_PROMISCUITY,
    IFLA_PROP_LIST,
    IFLA_QDISC,
    IFLA_STATS64,
    IFLA_TSO_MAX_SEGS,
    IFLA_TSO_MAX_SIZE,
    IFLA_TXQLEN,
    NLA_U32,
    RTEXT_FILTER_SKIP_STATS,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
)
from .core import NetlinkSocket, dump_with_retry, iter_attrs, kstr, parse_attrs, robust
from .core import span_bytes as _addr
from .core import span_u8 as _u8
from .core import span_u32 as _u32
from .linkkinds import decode_linkinfo
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
_IFF_UP, _IFF_POINTOPOINT, _IFF_RUNNING = 0x1, 0x10, 0x40
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
_IFA_FLAGS = (
    (0x01, "secondary", False),
    (0x01, "temporary", True),
    (0x02, "nodad", True),
    (0x04, "optimistic", True),
    (0x08, "dadfailed", True),
    (0x10, "home", True),
    (0x20, "deprecated", True),
    (0x40, "tentative", True),
    (IFA_F_PERMANENT, "dynamic", True),
    (0x100, "mngtmpaddr", True),
    (0x200, "noprefixroute", False),
    (0x400, "autojoin", False),
    (0x800, "stable-privacy", True),
)


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


def link_request(ifindex: int = 0, master: int = 0, *, stats: bool = False) -> bytes:
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    body += NLA_U32.pack(8, IFLA_EXT_MASK, 0 if stats else RTEXT_FILTER_SKIP_STATS)
    if master:
        body += NLA_U32.pack(8, IFLA_MASTER, master)
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
        index, flags = IFINFOMSG.unpack_from(buf, start)[2:4]
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
    (IFLA_NUM_TX_QUEUES, "num_tx_queues"),
    (IFLA_NUM_RX_QUEUES, "num_rx_queues"),
    (IFLA_GSO_MAX_SIZE, "gso_max_size"),
    (IFLA_GSO_MAX_SEGS, "gso_max_segs"),
    (IFLA_TSO_MAX_SIZE, "tso_max_size"),
    (IFLA_TSO_MAX_SEGS, "tso_max_segs"),
    (IFLA_GRO_MAX_SIZE, "gro_max_size"),
)


@robust("link")
def parse_link(buf: bytes, start: int, end: int, table: LinkTable) -> LinkRecord:
    """One RTM_NEWLINK as `ip -j -d addr show` prints the link (keys in its order)."""
    _family, iftype, index, flags, _change = IFINFOMSG.unpack_from(buf, start)
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
        if flags & _IFF_POINTOPOINT:
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
        rec["linkinfo"] = decode_linkinfo(buf, *a[IFLA_LINKINFO], names)
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
    family, prefixlen, hdr_flags, scope, index = IFADDRMSG.unpack_from(buf, start)
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
    if IFA_RT_PRIORITY in a:
        info["metric"] = _u32(buf, a[IFA_RT_PRIORITY])
    if IFA_BROADCAST in a:
        info["broadcast"] = format_address(bytes(buf[a[IFA_BROADCAST][0] : a[IFA_BROADCAST][1]]))
    if IFA_ANYCAST in a:
        info["anycast"] = format_address(bytes(buf[a[IFA_ANYCAST][0] : a[IFA_ANYCAST][1]]))
    info["scope"] = rt_scope(scope)
    is_inet6 = family == socket.AF_INET6
    for bit, key, inet6_only in _IFA_FLAGS:
        if (inet6_only and not is_inet6) or (key == "secondary" and is_inet6):
            continue
        if bit == IFA_F_PERMANENT:
            if not flags & bit:
                info[key] = True  # iproute2 prints "dynamic" for non-permanent
        elif flags & bit:
            info[key] = True
    if IFA_LABEL in a:
        info["label"] = kstr(buf, *a[IFA_LABEL])
    if IFA_CACHEINFO in a:
        preferred, valid, _c, _t = IFA_CACHEINFO_STRUCT.unpack_from(buf, a[IFA_CACHEINFO][0])
        info["valid_life_time"] = valid
        info["preferred_life_time"] = preferred
    return index, info


def list_addresses(sock: NetlinkSocket, family: int = socket.AF_UNSPEC) -> dict[int, list[dict]]:
    """ifindex -> addr_info entries, in the kernel's order."""
    body = IFADDRMSG.pack(family, 0, 0, 0, 0)
    by_index: dict[int, list[dict]] = {}

    def dump() -> Iterator[tuple[int, dict]]:
        for kind, buf, start, end in sock.dump(RTM_GETADDR, body, what="address"):
            if kind == RTM_NEWADDR:
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
            index = IFINFOMSG.unpack_from(buf, start)[2]
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
