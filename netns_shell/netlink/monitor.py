"""Live netlink events of one namespace (`watch`), like `ip monitor` / `bridge monitor`.

A netlink socket made inside the namespace joins the multicast groups of the
chosen topics; each event is decoded by the same parsers as the dumps and
tagged `event: new|deleted`.  When the kernel drops events because the
socket buffer overflowed (ENOBUFS), the stream says so and resyncs: it
dumps the topic's table again and yields its current rows (`event: sync`).
"""

from __future__ import annotations

import errno
import select
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .constants import (
    AF_BRIDGE,
    NLMSGHDR,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELNEIGH,
    RTM_DELROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWNEIGH,
    RTM_NEWROUTE,
    RTNLGRP_IPV4_IFADDR,
    RTNLGRP_IPV4_ROUTE,
    RTNLGRP_IPV6_IFADDR,
    RTNLGRP_IPV6_ROUTE,
    RTNLGRP_LINK,
    RTNLGRP_NEIGH,
)
from .core import NetlinkSocket, robust
from .links import LinkTable, link_table, list_links, parse_address, parse_link
from .neighbours import list_fdb, list_neighbours, parse_fdb, parse_neighbour
from .routes import list_routes, parse_route

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["TOPICS", "Lost", "watch_events"]

#: topic -> multicast groups
TOPICS = {
    "links": (RTNLGRP_LINK,),
    "addr": (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR),
    "neigh": (RTNLGRP_NEIGH,),
    "fdb": (RTNLGRP_NEIGH,),
    "routes": (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE),
}
_NEW = {RTM_NEWLINK: "link", RTM_NEWADDR: "address", RTM_NEWROUTE: "route", RTM_NEWNEIGH: "neigh"}
_DEL = {RTM_DELLINK: "link", RTM_DELADDR: "address", RTM_DELROUTE: "route", RTM_DELNEIGH: "neigh"}


@dataclass(frozen=True)
class Lost:
    """The kernel dropped events (ENOBUFS); rows of a resync follow."""

    topics: tuple[str, ...]


def _wanted(kind: str, family: int, topics: tuple[str, ...]) -> str | None:
    """The topic an event belongs to, if it is one of `topics`."""
    if kind == "neigh":
        topic = "fdb" if family == AF_BRIDGE else "neigh"
    else:
        topic = {"link": "links", "address": "addr", "route": "routes"}[kind]
    return topic if topic in topics else None


def _decode(
    kind: str, data: bytes, start: int, end: int, table: LinkTable, family: int
) -> dict[str, Any]:
    if kind == "link":
        record = parse_link(data, start, end, table)
        table.names[record["ifindex"]] = record["ifname"]
        return record
    if kind == "address":
        index, record = parse_address(data, start, end)
        return {"dev": table.names.get(index, f"if{index}"), **record}
    if kind == "route":
        return parse_route(data, start, end, table.names, show_table=True)
    if family == AF_BRIDGE:
        return parse_fdb(data, start, end, table.names)
    return parse_neighbour(data, start, end, table.names)


def _resync(ns: NetNamespace, topic: str) -> Iterator[dict[str, Any]]:
    """The current rows of a topic's table, tagged event 'sync'."""
    rows: Iterator[dict[str, Any]]
    if topic == "links":
        rows = list_links(ns, addresses=False)
    elif topic == "addr":
        rows = ({"dev": link["ifname"], **a} for link in list_links(ns) for a in link["addr_info"])
    elif topic == "neigh":
        rows = list_neighbours(ns)
    elif topic == "fdb":
        rows = list_fdb(ns)
    else:
        rows = list_routes(ns, table=0)
    for row in rows:
        yield {"event": "sync", "object": _OBJECTS[topic], **row}


_OBJECTS = {"links": "link", "addr": "address", "neigh": "neigh", "fdb": "fdb", "routes": "route"}


def watch_events(
    ns: NetNamespace,
    topics: tuple[str, ...],
    *,
    rcvbuf: int | None = None,
    duration: float | None = None,
) -> Iterator[dict[str, Any] | Lost]:
    """Subscribe now; return an iterator of event records (and Lost markers + resync rows).

    The socket joins the groups before this returns, so no event that happens
    afterwards is missed.  Ends after `duration` seconds when given.
    `rcvbuf` overrides the socket buffer size (small values provoke ENOBUFS;
    for tests).  The iterator waits in poll(); Ctrl-C interrupts it.
    """
    sock = NetlinkSocket(ns, strict=False)
    try:
        if rcvbuf is not None:
            sock.set_receive_buffer(rcvbuf)
        for group in sorted({g for topic in topics for g in TOPICS[topic]}):
            sock.join_group(group)
        with NetlinkSocket(ns) as query:
            table = link_table(query)
    except BaseException:
        sock.close()
        raise
    deadline = None if duration is None else time.monotonic() + duration
    return _stream(ns, sock, table, topics, deadline)


def _stream(
    ns: NetNamespace,
    sock: NetlinkSocket,
    table: LinkTable,
    topics: tuple[str, ...],
    deadline: float | None,
) -> Iterator[dict[str, Any] | Lost]:
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return
            if not poller.poll(None if wait is None else int(wait * 1000) + 1):
                continue
            try:
                data = sock.recv()
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                yield Lost(topics)
                for topic in topics:
                    yield from _resync(ns, topic)
                continue
            yield from _events(data, table, topics)
    finally:
        sock.close()


@robust("event")
def _events(data: bytes, table: LinkTable, topics: tuple[str, ...]) -> list[dict[str, Any]]:
    """The events of one received datagram that belong to `topics`."""
    found = []
    off = 0
    while off + 16 <= len(data):
        length, kind, _flags, _seq, _pid = NLMSGHDR.unpack_from(data, off)
        if length < 16 or off + length > len(data):
            raise ValueError(f"a message claims {length} bytes")
        name = _NEW.get(kind) or _DEL.get(kind)
        if name is not None and length > 16:
            family = data[off + 16]
            topic = _wanted(name, family, topics)
            if topic is not None:
                record = _decode(name, data, off + 16, off + length, table, family)
                found.append(
                    {
                        "event": "deleted" if kind in _DEL else "new",
                        "object": _OBJECTS[topic],
                        **record,
                    }
                )
        off += (length + 3) & ~3
    return found
