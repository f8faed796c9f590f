"""Routes (RTM_GETROUTE), as `ip -j route show` prints them."""

from __future__ import annotations

import errno
import itertools
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import NetlinkError, NotFoundError, UsageError
from ..records import Shared, SharedRecord
from .constants import (
    BE16,
    NLA,
    NLA_TYPE_MASK,
    NLA_U32,
    RT_TABLE_MAIN,
    RTA_CACHEINFO,
    RTA_CACHEINFO_HEAD,
    RTA_DPORT,
    RTA_DST,
    RTA_GATEWAY,
    RTA_IIF,
    RTA_IP_PROTO,
    RTA_MARK,
    RTA_METRICS,
    RTA_MULTIPATH,
    RTA_NH_ID,
    RTA_OIF,
    RTA_PREF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_SPORT,
    RTA_SRC,
    RTA_TABLE,
    RTA_VIA,
    RTM_F_CLONED,
    RTM_GETROUTE,
    RTM_NEWROUTE,
    RTMSG,
    RTN_UNICAST,
    RTNEXTHOP,
    RTPROT_BOOT,
    U32,
)
from .core import NetlinkSocket, dump_chunks_with_retry, iter_attrs, robust
from .links import link_names
from .names import ds_field, format_address, rt_protocol, rt_scope, rt_table, rt_type, table_id

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["RouteRecord", "list_routes", "parse_route", "parse_table", "route_get", "route_lookup"]

RouteRecord = dict[str, Any]

_VIA_FAMILIES = {2: "inet", 10: "inet6", 17: "link", 28: "mpls", 7: "bridge"}

# print_rt_flags order; RTNH_F_* live in the low byte, RTM_F_* above it
_ROUTE_FLAGS = (
    (1, "dead"),
    (4, "onlink"),
    (2, "pervasive"),
    (8, "offload"),
    (64, "trap"),
    (0x100, "notify"),
    (16, "linkdown"),
    (32, "unresolved"),
    (0x4000, "rt_offload"),
    (0x8000, "rt_trap"),
    (0x20000000, "rt_offload_failed"),
)
_PREF = {0: "medium", 1: "high", 3: "low"}
_METRICS = {
    2: "mtu",
    3: "window",
    4: "rtt",
    5: "rttvar",
    6: "ssthresh",
    7: "cwnd",
    8: "advmss",
    9: "reordering",
    10: "hoplimit",
    11: "initcwnd",
    12: "features",
    13: "rto_min",
    14: "initrwnd",
    15: "quickack",
    16: "congestion",
    17: "fastopen_no_cookie",
}
_USER_HZ = 100


def parse_table(value: str) -> int:
    """A table argument ('main', 'local', 'all', a number) -> id; 0 means all tables."""
    if value == "all":
        return 0
    number = table_id(value)
    if number is None:
        raise UsageError(
            f"unknown routing table {value!r} (give a number, a name from rt_tables, or 'all')"
        )
    return number


def _flags(flags: int) -> list[str]:
    return [name for bit, name in _ROUTE_FLAGS if flags & bit]


def _metrics(buf: bytes, start: int, end: int) -> dict[str, Any]:
    """RTA_METRICS as iproute2's print_rta_metrics object."""
    out: dict[str, Any] = {}
    for attr, vs, ve in iter_attrs(buf, start, end):
        key = _METRICS.get(attr)
        if key is None:
            continue
        if key == "congestion":
            out[key] = bytes(buf[vs:ve]).rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue
        if ve - vs < 4:
            continue
        value = U32.unpack_from(buf, vs)[0]
        if key == "features":
            if value & 1:  # RTAX_FEATURE_ECN
                out["ecn"] = None
            if value & ~1:
                out["features"] = f"{value & ~1:#x}"
        elif key == "hoplimit" and value == 0xFFFFFFFF:
            continue
        elif key == "rtt":
            out[key] = value // 8
        elif key == "rttvar":
            out[key] = value // 4
        else:
            out[key] = value
    return out


def _nexthops(
    buf: bytes, start: int, end: int, family: int, names: dict[int, str]
) -> list[dict[str, Any]]:
    hops = []
    off = start
    while off + 8 <= end:
        length, nh_flags, hops_count, ifindex = RTNEXTHOP.unpack_from(buf, off)
        if length < 8:
            break
        hop: dict[str, Any] = {}
        for kind, vs, ve in iter_attrs(buf, off + 8, off + length):
            if kind == RTA_GATEWAY:
                hop["gateway"] = format_address(bytes(buf[vs:ve]))
            elif kind == RTA_VIA:
                hop["via"] = {
                    "family": _VIA_FAMILIES.get(buf[vs], "???"),
                    "host": format_address(bytes(buf[vs + 2 : ve])),
                }
        hop["dev"] = names.get(ifindex, f"if{ifindex}") if ifindex else "*"
        hop["weight"] = hops_count + 1
        hop["flags"] = _flags(nh_flags)
        hops.append(hop)
        off += (length + 3) & ~3
    return hops


@robust("route")
def parse_route(
    buf: bytes, start: int, end: int, names: dict[int, str], show_table: bool
) -> RouteRecord:
    """One RTM_NEWROUTE as `ip -j route show` prints it (keys in its order)."""
    family, dst_len, src_len, tos, table, proto, scope, kind, rflags = RTMSG.unpack_from(buf, start)
    dst = src = gateway = prefsrc = None
    oif = priority = pref = expires = nhid = mark = None
    via = multipath = metrics = None
    for attr, vs, ve in iter_attrs(buf, start + 12, end):
        if attr == RTA_DST:
            dst = bytes(buf[vs:ve])
        elif attr == RTA_GATEWAY:
            gateway = format_address(bytes(buf[vs:ve]))
        elif attr == RTA_OIF:
            oif = U32.unpack_from(buf, vs)[0]
        elif attr == RTA_PRIORITY:
            priority = U32.unpack_from(buf, vs)[0]
        elif attr == RTA_PREFSRC:
            prefsrc = format_address(bytes(buf[vs:ve]))
        elif attr == RTA_TABLE:
            table = U32.unpack_from(buf, vs)[0]
        elif attr == RTA_PREF:
            pref = buf[vs]
        elif attr == RTA_SRC:
            src = bytes(buf[vs:ve])
        elif attr == RTA_VIA:
            via = {
                "family": _VIA_FAMILIES.get(buf[vs], "???"),
                "host": format_address(bytes(buf[vs + 2 : ve])),
            }
        elif attr == RTA_MULTIPATH:
            multipath = (vs, ve)
        elif attr == RTA_METRICS:
            metrics = (vs, ve)
        elif attr == RTA_CACHEINFO and ve - vs >= 12:
            expires = RTA_CACHEINFO_HEAD.unpack_from(buf, vs)[2]
        elif attr == RTA_NH_ID:
            nhid = U32.unpack_from(buf, vs)[0]
        elif attr == RTA_MARK:
            mark = U32.unpack_from(buf, vs)[0]
    rec: RouteRecord = {}
    if kind != RTN_UNICAST:
        rec["type"] = rt_type(kind)
    if dst is not None:
        text = format_address(dst)
        rec["dst"] = text if dst_len == len(dst) * 8 else f"{text}/{dst_len}"
    elif dst_len:
        rec["dst"] = f"0/{dst_len} "  # iproute2 prints this, trailing space included
    else:
        rec["dst"] = "default"
    if src is not None:
        text = format_address(src)
        rec["from"] = text if src_len == len(src) * 8 else f"{text}/{src_len}"
    elif src_len:
        rec["src"] = f"0/{src_len}"
    if nhid is not None:
        rec["nhid"] = nhid
    if tos:
        rec["tos"] = ds_field(tos)
    if gateway is not None:
        rec["gateway"] = gateway
    if via is not None:
        rec["via"] = via
    if oif is not None:
        rec["dev"] = names.get(oif, f"if{oif}")
    if show_table and table and table != RT_TABLE_MAIN:
        rec["table"] = rt_table(table)
    if not rflags & RTM_F_CLONED:
        if proto != RTPROT_BOOT:
            rec["protocol"] = rt_protocol(proto)
        if scope != 0:
            rec["scope"] = rt_scope(scope)
    if prefsrc is not None:
        rec["prefsrc"] = prefsrc
    if priority is not None:
        rec["metric"] = priority
    rec["flags"] = _flags(rflags)
    if mark:
        rec["mark"] = mark
    if expires:
        rec["expires"] = int(expires / _USER_HZ)
    if metrics is not None:
        rec["metrics"] = [_metrics(buf, *metrics)]
    if pref is not None:
        rec["pref"] = _PREF.get(pref, pref)
    if multipath is not None:
        rec["nexthops"] = _nexthops(buf, *multipath, family, names)
    return rec


def _route_request(family: int, table: int, oif: int) -> bytes:
    body = RTMSG.pack(family, 0, 0, 0, table if 0 < table < 256 else 0, 0, 0, 0, 0)
    if table >= 256:
        body += NLA_U32.pack(8, RTA_TABLE, table)
    if oif:
        body += NLA_U32.pack(8, RTA_OIF, oif)
    return body


def list_routes(
    namespace: NetNamespace | None,
    *,
    family: int = socket.AF_UNSPEC,
    table: int = RT_TABLE_MAIN,
    dev: str | None = None,
    sock: NetlinkSocket | None = None,
) -> Iterator[RouteRecord]:
    """Stream routes as `ip -j route show` records.

    `family` AF_INET / AF_INET6 / AF_UNSPEC (both); `table` 0 for all tables,
    else a table id (default main); `dev` keeps routes through one interface.
    The kernel filters by table and device (NETLINK_GET_STRICT_CHK); the same
    filters are applied again here for kernels that ignore them.  Records come
    a received datagram at a time, flattened in C (no generator step per route).
    """
    return itertools.chain.from_iterable(_route_chunks(namespace, family, table, dev, sock))


def _route_chunks(
    namespace: NetNamespace | None,
    family: int,
    table: int,
    dev: str | None,
    sock: NetlinkSocket | None,
) -> Iterator[list[RouteRecord]]:
    own = sock is None
    sock = sock or NetlinkSocket(namespace)
    try:
        names = link_names(sock)
        oif = 0
        if dev is not None:
            oif = next((i for i, n in names.items() if n == dev), 0)
            if not oif:
                raise NotFoundError(f"no interface named {dev!r} in this namespace")
        show_table = table != RT_TABLE_MAIN
        families = (socket.AF_INET, socket.AF_INET6) if family == socket.AF_UNSPEC else (family,)
        for fam in families:
            try:
                yield from dump_chunks_with_retry(
                    lambda fam=fam: _routes(sock, fam, table, oif, names, show_table)
                )
            except NetlinkError as exc:
                # A table nothing was ever added to does not exist yet (a fresh
                # namespace's main table, one family of `table N`): it is empty.
                if exc.errno != errno.ENOENT:
                    raise
    finally:
        if own:
            sock.close()


# Attributes the attribute-walk path understands; a message with any other attribute
# is decoded by the full parser (parse_route), which handles everything iproute2 prints.
_FAST_ATTRS = frozenset(
    (RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PRIORITY, RTA_PREFSRC, RTA_TABLE, RTA_PREF, RTA_CACHEINFO)
)
_TEMPLATE_LIMIT = 4096
_SKIP = (None, None)  # template of a route the filters drop: (row, shared)


class _RouteTemplates:
    """Routes of a big table differ only in their destination.

    A template is the record of a route minus `type` and `dst`, cached under
    the message bytes without the RTA_DST value (found by a probe at the place
    the kernel puts it: right after RTA_TABLE).  A hit costs two slices, a dict
    lookup, an inet_ntop and a C-level copy of the template's row; everything
    else (including the filters' verdict) was decided once.  Both caches are
    bounded.
    """

    def __init__(self, family: int, table: int, oif: int, names: dict[int, str], show_table: bool):
        self.family, self.table, self.oif = family, table, oif
        self.names, self.show_table = names, show_table
        self.by_bytes: dict[tuple[bytes, bytes], tuple] = {}
        self.by_attrs: dict[tuple, tuple] = {}
        # RTA_DST header as it appears for this family: (nla_len, nla_type)
        self.dst_header = NLA.pack(8 if family == socket.AF_INET else 20, RTA_DST)
        self.dst_end = 20 + (8 if family == socket.AF_INET else 20)

    @robust("route")
    def records(self, data: bytes, messages: list[tuple[int, int, int]]) -> list[RouteRecord]:
        """The records of one received chunk (a list: one generator layer less per row)."""
        out: list[RouteRecord] = []
        append = out.append
        by_bytes = self.by_bytes
        dst_header, dst_end = self.dst_header, self.dst_end
        ntop = socket.inet_ntop
        new_record = SharedRecord
        family = self.family
        full_length = (dst_end - 24) * 8
        for kind, start, end in messages:
            if kind != RTM_NEWROUTE:
                continue
            key = None
            if data[start + 20 : start + 24] == dst_header:
                # a tuple of the two slices hashes faster than their concatenation
                key = (data[start : start + 20], data[start + dst_end : end])
                template = by_bytes.get(key)
                if template is not None:
                    row, shared = template
                    if shared is None:
                        continue
                    text = ntop(family, data[start + 24 : start + dst_end])
                    if data[start + 1] != full_length:
                        text = f"{text}/{data[start + 1]}"
                    record = new_record(row)  # a C-level copy: type, dst, then the shared keys
                    record["dst"] = text
                    record.shared = shared
                    append(record)
                    continue
            record, template, cacheable = self._decode(data, start, end)
            if key is not None and cacheable:
                if len(by_bytes) >= _TEMPLATE_LIMIT:
                    by_bytes.clear()
                by_bytes[key] = template
            if record is not None:
                append(record)
        return out

    def _decode(self, data: bytes, start: int, end: int) -> tuple[RouteRecord | None, tuple, bool]:
        """Walk the attributes: (record or None if filtered, template, bytes-cacheable)."""
        header = RTMSG.unpack_from(data, start)
        rtm_table, rflags = header[4], header[8]
        dst = None
        others: list[Any] = [header]
        cacheable = slow = False
        off = start + 12
        while off + 4 <= end:
            length, attr = NLA.unpack_from(data, off)
            if length < 4:
                break
            attr &= NLA_TYPE_MASK
            if attr == RTA_DST:
                dst = data[off + 4 : off + length]
            elif attr == RTA_CACHEINFO:
                # lastuse/used change from route to route: key on what is printed
                others.append(("expires", RTA_CACHEINFO_HEAD.unpack_from(data, off + 4)[2]))
            elif attr in _FAST_ATTRS:
                if attr == RTA_TABLE:
                    rtm_table = U32.unpack_from(data, off + 4)[0]
                others.append(data[off : off + length])
            else:
                slow = True
            off += (length + 3) & ~3
        cacheable = not any(isinstance(o, tuple) and o and o[0] == "expires" for o in others[1:])
        if rflags & RTM_F_CLONED or (self.table and rtm_table != self.table):
            return None, _SKIP, cacheable and not slow
        if slow:
            record = parse_route(data, start, end, self.names, self.show_table)
            return (None if self._filtered(record) else record), _SKIP, False
        key = tuple(others)
        template = self.by_attrs.get(key)
        if template is None:
            if len(self.by_attrs) >= _TEMPLATE_LIMIT:
                self.by_attrs.clear()
            full = parse_route(data, start, end, self.names, self.show_table)
            if self._filtered(full):
                template = _SKIP
            else:
                kind_name = full.pop("type", None)
                full.pop("dst")
                own = frozenset(("type", "dst") if kind_name else ("dst",))
                # the row every route of this template starts from: its dst is set per route
                row = {"type": kind_name, "dst": None} if kind_name else {"dst": None}
                row.update(full)
                template = (row, Shared(full, own))
            self.by_attrs[key] = template
        row, shared = template
        if shared is None:
            return None, template, cacheable
        if dst is None:
            text = (
                "default"
                if not header[1]
                else parse_route(data, start, end, self.names, self.show_table)["dst"]
            )
        else:
            text = socket.inet_ntop(header[0], dst)
            if header[1] != len(dst) * 8:
                text = f"{text}/{header[1]}"
        record = SharedRecord(row)
        record["dst"] = text
        record.shared = shared
        return record, template, cacheable

    def _filtered(self, record: RouteRecord) -> bool:
        return (
            bool(self.oif)
            and record.get("dev") != self.names.get(self.oif)
            and "nexthops" not in record
        )


def _routes(
    sock: NetlinkSocket, family: int, table: int, oif: int, names: dict[int, str], show_table: bool
) -> Iterator[list[RouteRecord]]:
    """Stream the routes of one family, a list per datagram (see _RouteTemplates)."""
    templates = _RouteTemplates(family, table, oif, names, show_table)
    request = _route_request(family, table, oif)
    for data, messages in sock.dump_chunks(RTM_GETROUTE, request, what="route"):
        records = templates.records(data, messages)
        if records:
            yield records


def route_get(
    namespace: NetNamespace | None, address: str, *, sock: NetlinkSocket | None = None
) -> RouteRecord | None:
    """The route the kernel would take to `address` (like `ip route get`), None if unreachable."""
    import errno

    from ..errors import NetlinkError

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    raw = socket.inet_pton(family, address)
    body = RTMSG.pack(family, len(raw) * 8, 0, 0, 0, 0, 0, 0, 0)
    body += NLA.pack(4 + len(raw), RTA_DST) + raw
    own = sock is None
    sock = sock or NetlinkSocket(namespace, strict=False)
    try:
        names = link_names(sock)
        try:
            _kind, data, start, end = sock.get(RTM_GETROUTE, body, what="route get")
        except NetlinkError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL):
                return None
            raise
        return parse_route(data, start, end, names, show_table=True)
    finally:
        if own:
            sock.close()


_IP_PROTOS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}


def route_lookup(
    sock: NetlinkSocket,
    dst: str,
    *,
    src: str | None = None,
    iif: int | None = None,
    proto: str | None = None,
    sport: int | None = None,
    dport: int | None = None,
    mark: int | None = None,
) -> tuple[RouteRecord | None, int]:
    """The kernel's answer to `ip route get DST [from SRC] [iif DEV] [ipproto P] [sport N]
    [dport N] [mark M]` in the socket's namespace: (record, 0), or (None, errno) when the
    kernel refuses (ENETUNREACH no route, EHOSTUNREACH unreachable or forwarding off,
    EACCES prohibit, EINVAL blackhole or a martian / rp_filter'd source with `iif`).

    With `iif` the lookup is the one for a packet received on that device (input
    route: forwarding, rp_filter and local delivery are the kernel's decisions)."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    raw = socket.inet_pton(family, dst)
    src_raw = socket.inet_pton(family, src) if src else b""
    body = RTMSG.pack(family, len(raw) * 8, len(src_raw) * 8, 0, 0, 0, 0, 0, 0)

    def attr(kind: int, value: bytes) -> bytes:
        size = 4 + len(value)
        return NLA.pack(size, kind) + value + b"\0" * (-size % 4)

    body += attr(RTA_DST, raw)
    if src_raw:
        body += attr(RTA_SRC, src_raw)
    if iif:
        body += attr(RTA_IIF, U32.pack(iif))
    if mark:
        body += attr(RTA_MARK, U32.pack(mark))
    if proto:
        number = _IP_PROTOS.get(proto, 0)
        if family == socket.AF_INET6 and proto == "icmp":
            number = 58
        body += attr(RTA_IP_PROTO, bytes([number]))
    if sport:
        body += attr(RTA_SPORT, BE16.pack(sport))
    if dport:
        body += attr(RTA_DPORT, BE16.pack(dport))
    from ..errors import PrivilegeError

    try:
        _kind, data, start, end = sock.get(RTM_GETROUTE, body, what="route get")
    except PrivilegeError:
        return None, errno.EACCES  # a `prohibit` route (the caller holds CAP_NET_ADMIN)
    except NetlinkError as exc:
        if exc.errno:
            return None, exc.errno
        raise
    record = parse_route(data, start, end, link_names(sock), show_table=True)
    for kind, vs, _ve in iter_attrs(data, start + 12, end):
        if kind == RTA_IIF:
            record["iif"] = link_names(sock).get(U32.unpack_from(data, vs)[0])
    return record, 0
