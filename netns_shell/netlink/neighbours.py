"""Neighbours (ARP/NDP) and the bridge FDB: both are RTM_GETNEIGH dumps.

`list_neighbours` prints like `ip -j neigh show`, `list_fdb` like
`bridge -j fdb show`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..records import Shared, SharedRecord
from .constants import (
    AF_BRIDGE,
    BE16,
    NDA_CACHEINFO,
    NDA_DST,
    NDA_FLAGS_EXT,
    NDA_IFINDEX,
    NDA_LINK_NETNSID,
    NDA_LLADDR,
    NDA_MASTER,
    NDA_NH_ID,
    NDA_PORT,
    NDA_PROBES,
    NDA_PROTOCOL,
    NDA_SRC_VNI,
    NDA_VLAN,
    NDA_VNI,
    NDMSG,
    NLA,
    NLA_TYPE_MASK,
    NLA_U32,
    NTF_EXT_LEARNED,
    NTF_PROXY,
    NUD_NOARP,
    NUD_PERMANENT,
    RTM_GETNEIGH,
    RTM_NEWNEIGH,
    U16,
    U32,
)
from .core import NetlinkSocket, dump_with_retry, iter_attrs, robust
from .links import link_names
from .names import format_address, format_mac, rt_protocol

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["list_fdb", "list_neighbours", "neighbour_states", "parse_fdb", "parse_neighbour"]

_NUD_NAMES = (
    (0x01, "INCOMPLETE"),
    (0x02, "REACHABLE"),
    (0x04, "STALE"),
    (0x08, "DELAY"),
    (0x10, "PROBE"),
    (0x20, "FAILED"),
    (0x40, "NOARP"),
    (0x80, "PERMANENT"),
)
# NTF_* -> bridge fdb flag names, in bridge/fdb.c order
_FDB_FLAGS = (
    (0x02, "self"),
    (0x80, "router"),
    (0x10, "extern_learn"),
    (0x20, "offload"),
    (0x04, "master"),
    (0x40, "sticky"),
)
_NEIGH_NULL_FLAGS = ((0x80, "router"), (0x08, "proxy"), (0x10, "extern_learn"), (0x20, "offload"))


def neighbour_states(state: int) -> list[str]:
    """NUD_* bits as iproute2's list of names (unknown bits dropped, as it does)."""
    return [name for bit, name in _NUD_NAMES if state & bit]


def _fdb_state(state: int) -> str:
    if state & NUD_PERMANENT:
        return "permanent"
    if state & NUD_NOARP:
        return "static"
    if state & 0x04:
        return "stale"
    if state & 0x02:
        return ""
    return f"{state:#x}" if state else "0"


def _neigh_request(family: int, ifindex: int = 0, master: int = 0) -> bytes:
    body = NDMSG.pack(family, 0, 0, 0, 0)
    if ifindex:
        body += NLA_U32.pack(8, NDA_IFINDEX, ifindex)
    if master:
        body += NLA_U32.pack(8, NDA_MASTER, master)
    return body


def _index_of(names: dict[int, str], name: str | None) -> int:
    if name is None:
        return 0
    for index, known in names.items():
        if known == name:
            return index
    raise NotFoundError(f"no interface named {name!r} in this namespace")


@robust("neighbour")
def parse_neighbour(buf: bytes, start: int, end: int, names: dict[int, str]) -> dict[str, Any]:
    """One RTM_NEWNEIGH as `ip -j neigh show` prints it (keys in its order)."""
    _family, ifindex, state, flags, _type = NDMSG.unpack_from(buf, start)
    rec: dict[str, Any] = {}
    lladdr = None
    protocol = 0
    for attr, vs, ve in iter_attrs(buf, start + 12, end):
        if attr == NDA_DST:
            rec["dst"] = format_address(bytes(buf[vs:ve]))
        elif attr == NDA_LLADDR:
            lladdr = format_mac(bytes(buf[vs:ve]))
        elif attr == NDA_PROTOCOL:
            protocol = buf[vs]
    if ifindex:
        rec["dev"] = names.get(ifindex, f"if{ifindex}")
    if lladdr is not None:
        rec["lladdr"] = lladdr
    for bit, key in _NEIGH_NULL_FLAGS:
        if flags & bit:
            rec[key] = None  # iproute2 prints these flags as "key": null
    if state:
        rec["state"] = neighbour_states(state)
    if protocol:
        rec["protocol"] = rt_protocol(protocol)
    return rec


_TEMPLATE_LIMIT = 4096
_SKIP = (None, None, None)
_NEIGH_PRINTED = frozenset((NDA_PROTOCOL, NDA_FLAGS_EXT))
_FDB_PRINTED = frozenset(
    (
        NDA_DST,
        NDA_VLAN,
        NDA_PORT,
        NDA_VNI,
        NDA_IFINDEX,
        NDA_MASTER,
        NDA_LINK_NETNSID,
        NDA_SRC_VNI,
        NDA_NH_ID,
    )
)


# the kernel's usual FDB layouts: LLADDR first, then for a vxlan the VTEP (DST) and a few
# rarer attributes with CACHEINFO last (vxlan_fdb_info), for a bridge MASTER then CACHEINFO
# (br_fdb_fill_info); a device's own unicast/multicast addresses carry LLADDR alone
_LL_HEADER = NLA.pack(10, NDA_LLADDR)
_DST_HEADERS = {NLA.pack(8, NDA_DST): 4, NLA.pack(20, NDA_DST): 16}
_CACHEINFO_HEADER = NLA.pack(20, NDA_CACHEINFO)


def _walk(
    data: bytes, start: int, end: int, unique: tuple[int, ...], printed: frozenset[int]
) -> tuple[dict[int, bytes], bytes]:
    """One pass over a message's attributes: (values of `unique` attrs, key bytes).

    The key is the header plus every printed attribute that is not unique to
    the entry: entries with the same key render the same apart from `unique`.
    """
    values: dict[int, bytes] = {}
    parts = [data[start : start + 12]]
    off = start + 12
    unpack = NLA.unpack_from
    while off + 4 <= end:
        length, attr = unpack(data, off)
        if length < 4:
            break
        attr &= NLA_TYPE_MASK
        if attr in unique:
            values[attr] = data[off + 4 : off + length]
        elif attr in printed:
            parts.append(data[off : off + length])
        off += (length + 3) & ~3
    return values, b"".join(parts)


def _pad(length: int) -> int:
    return (length + 3) & ~3


def _bounded(cache: dict, key: bytes, template: tuple) -> tuple:
    if len(cache) >= _TEMPLATE_LIMIT:
        cache.clear()
    cache[key] = template
    return template


def _neighbour_template(
    data: bytes, start: int, end: int, fam: int, ifindex: int, show_all: bool, names: dict[int, str]
) -> tuple:
    """(head, tail, Shared) of an entry: the keys before and after `lladdr`; or _SKIP."""
    nd_family, nd_index, state, flags, _t = NDMSG.unpack_from(data, start)
    if nd_family != fam or (ifindex and nd_index != ifindex):
        return _SKIP
    # iproute2's default filter: hide NOARP-only and NONE entries
    if (
        not show_all
        and not state & (0xFF & ~NUD_NOARP)
        and not flags & (NTF_PROXY | NTF_EXT_LEARNED)
    ):
        return _SKIP
    full = parse_neighbour(data, start, end, names)
    head = {k: v for k, v in full.items() if k == "dev"}
    tail = {k: v for k, v in full.items() if k not in ("dst", "dev", "lladdr")}
    # both are set per entry when the entry has them, whether or not this one does
    return head, tail, Shared({**head, **tail}, frozenset(("dst", "lladdr")))


@robust("neighbour")
def _neighbour_records(
    data: bytes,
    messages: list[tuple[int, int, int]],
    cache: dict,
    fam: int,
    ifindex: int,
    show_all: bool,
    names: dict[int, str],
) -> list[dict[str, Any]]:
    out = []
    append = out.append
    ntop = socket.inet_ntop
    at = data.startswith
    get_template = cache.get
    # the kernel's usual layout (neigh_fill_info): DST, LLADDR, PROBES, CACHEINFO, then the
    # rarer printed attributes; probed at fixed offsets, else walked attribute by attribute
    dst_len = 4 if fam == socket.AF_INET else 16
    ll_at = 12 + _pad(4 + dst_len)
    dst_header = NLA.pack(4 + dst_len, NDA_DST)
    probes_header = NLA.pack(8, NDA_PROBES)
    tail_at = ll_at + 12
    for kind, start, end in messages:
        if kind != RTM_NEWNEIGH:
            continue
        if (
            at(dst_header, start + 12)
            and at(_LL_HEADER, start + ll_at)
            and at(probes_header, start + tail_at)
            and at(_CACHEINFO_HEADER, start + tail_at + 8)
        ):
            key = data[start : start + 12] + data[start + tail_at + 28 : end]
            dst = data[start + 16 : start + 16 + dst_len]
            lladdr = data[start + ll_at + 4 : start + ll_at + 10]
        else:
            values, key = _walk(data, start, end, (NDA_DST, NDA_LLADDR), _NEIGH_PRINTED)
            dst = values.get(NDA_DST)
            lladdr = values.get(NDA_LLADDR)
        template = get_template(key)
        if template is None:
            template = _bounded(
                cache, key, _neighbour_template(data, start, end, fam, ifindex, show_all, names)
            )
        head, tail, shared = template
        if shared is None:
            continue
        record = SharedRecord(
            {"dst": ntop(data[start], dst)} if dst and len(dst) in (4, 16) else {}
        )
        record.update(head)
        if lladdr is not None:
            record["lladdr"] = lladdr.hex(":")
        record.update(tail)
        record.shared = shared
        append(record)
    return out


def list_neighbours(
    namespace: NetNamespace | None,
    *,
    family: int = socket.AF_UNSPEC,
    dev: str | None = None,
    show_all: bool = False,
    sock: NetlinkSocket | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream ARP/NDP entries as `ip -j neigh show` records.

    Like iproute2, entries in state NOARP or NONE are hidden unless `show_all`.
    `dev` is filtered by the kernel.  Entries that share device, state and
    flags share one template (see records.SharedRecord).
    """
    own = sock is None
    sock = sock or NetlinkSocket(namespace)
    try:
        names = link_names(sock)
        ifindex = _index_of(names, dev)
        families = (socket.AF_INET, socket.AF_INET6) if family == socket.AF_UNSPEC else (family,)

        def dump(fam: int) -> Iterator[dict[str, Any]]:
            cache: dict[bytes, tuple] = {}
            request = _neigh_request(fam, ifindex)
            for data, messages in sock.dump_chunks(RTM_GETNEIGH, request, what="neighbour"):
                yield from _neighbour_records(data, messages, cache, fam, ifindex, show_all, names)

        for fam in families:
            yield from dump_with_retry(lambda fam=fam: dump(fam))
    finally:
        if own:
            sock.close()


@robust("fdb")
def parse_fdb(buf: bytes, start: int, end: int, names: dict[int, str]) -> dict[str, Any]:
    """One AF_BRIDGE RTM_NEWNEIGH as `bridge -j fdb show` prints it (keys in its order)."""
    _family, ifindex, state, flags, _type = NDMSG.unpack_from(buf, start)
    a: dict[int, tuple[int, int]] = {}
    for attr, vs, ve in iter_attrs(buf, start + 12, end):
        a[attr] = (vs, ve)

    def u32(attr: int) -> int:
        return U32.unpack_from(buf, a[attr][0])[0]

    rec: dict[str, Any] = {}
    if NDA_LLADDR in a:
        rec["mac"] = format_mac(bytes(buf[a[NDA_LLADDR][0] : a[NDA_LLADDR][1]]))
    if ifindex:
        rec["ifname"] = names.get(ifindex, f"if{ifindex}")
    if NDA_DST in a:
        rec["dst"] = format_address(bytes(buf[a[NDA_DST][0] : a[NDA_DST][1]]))
    if NDA_VLAN in a:
        vid = U16.unpack_from(buf, a[NDA_VLAN][0])[0]
        if vid:
            rec["vlan"] = vid
    if NDA_PORT in a:
        rec["port"] = BE16.unpack_from(buf, a[NDA_PORT][0])[0]
    if NDA_VNI in a:
        rec["vni"] = u32(NDA_VNI)
    if NDA_SRC_VNI in a:
        rec["src_vni"] = u32(NDA_SRC_VNI)
    if NDA_IFINDEX in a:
        via = u32(NDA_IFINDEX)
        if NDA_LINK_NETNSID in a:
            rec["viaIfIndex"] = via
        else:
            rec["viaIf"] = names.get(via, f"if{via}")
    if NDA_NH_ID in a:
        rec["nhid"] = u32(NDA_NH_ID)
    if NDA_LINK_NETNSID in a:
        rec["linkNetNsId"] = u32(NDA_LINK_NETNSID)
    rec["flags"] = [name for bit, name in _FDB_FLAGS if flags & bit]
    if NDA_MASTER in a:
        master = u32(NDA_MASTER)
        rec["master"] = names.get(master, f"if{master}")
    rec["state"] = _fdb_state(state)
    return rec


def _fdb_template(data: bytes, start: int, end: int, ifindex: int, names: dict[int, str]) -> tuple:
    """(head, tail, Shared) of an FDB entry: the keys before and after `dst`; or _SKIP."""
    nd_family, nd_index = NDMSG.unpack_from(data, start)[:2]
    if nd_family != AF_BRIDGE or (ifindex and nd_index != ifindex):
        return _SKIP
    full = parse_fdb(data, start, end, names)
    head = {k: v for k, v in full.items() if k == "ifname"}
    tail = {k: v for k, v in full.items() if k not in ("mac", "ifname", "dst")}
    # both are set per entry when the entry has them, whether or not this one does
    return head, tail, Shared({**head, **tail}, frozenset(("mac", "dst")))


@robust("fdb")
def _fdb_records(
    data: bytes,
    messages: list[tuple[int, int, int]],
    cache: dict,
    ifindex: int,
    names: dict[int, str],
) -> list[dict[str, Any]]:
    out = []
    for kind, start, end in messages:
        if kind != RTM_NEWNEIGH:
            continue
        # the MAC and the VTEP (dst) are read per entry: both can be unique; the rest of
        # the message, less CACHEINFO (its timers differ per entry), is the template key
        key = None
        if data.startswith(_LL_HEADER, start + 12):
            mac = data[start + 16 : start + 22]
            at = start + 24
            size = _DST_HEADERS.get(data[at : at + 4])
            if size:
                dst = data[at + 4 : at + 4 + size]
                at += 4 + size
            else:
                dst = None
            if at <= end - 20 and data.startswith(_CACHEINFO_HEADER, end - 20):
                key = data[start : start + 12] + data[at : end - 20]
            elif at + 28 <= end and data.startswith(_CACHEINFO_HEADER, at + 8):
                key = data[start : start + 12] + data[at : at + 8] + data[at + 28 : end]
            elif at == end:
                key = data[start : start + 12]
        if key is None:
            values, key = _walk(data, start, end, (NDA_LLADDR, NDA_DST), _FDB_PRINTED)
            mac = values.get(NDA_LLADDR)
            dst = values.get(NDA_DST)
        template = cache.get(key)
        if template is None:
            template = _bounded(cache, key, _fdb_template(data, start, end, ifindex, names))
        head, tail, shared = template
        if shared is None:
            continue
        record = SharedRecord({"mac": mac.hex(":")} if mac is not None else {})
        record.update(head)
        if dst is not None:
            record["dst"] = format_address(dst)
        record.update(tail)
        record.shared = shared
        out.append(record)
    return out


def list_fdb(
    namespace: NetNamespace | None,
    *,
    bridge: str | None = None,
    dev: str | None = None,
    sock: NetlinkSocket | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream bridge FDB entries as `bridge -j fdb show` records.

    `bridge` keeps the entries of one bridge (its own and its ports'), `dev`
    the entries of one port; both are filtered by the kernel.  Entries that
    differ only in their MAC share one template (see records.SharedRecord).
    """
    own = sock is None
    sock = sock or NetlinkSocket(namespace)
    try:
        names = link_names(sock)
        master = _index_of(names, bridge)
        ifindex = _index_of(names, dev)

        def dump() -> Iterator[dict[str, Any]]:
            cache: dict[bytes, tuple] = {}
            body = _neigh_request(AF_BRIDGE, ifindex, master)
            for data, messages in sock.dump_chunks(RTM_GETNEIGH, body, what="fdb"):
                yield from _fdb_records(data, messages, cache, ifindex, names)

        yield from dump_with_retry(dump)
    finally:
        if own:
            sock.close()
