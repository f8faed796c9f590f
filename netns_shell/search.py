"""`find`: where an IP, MAC or interface name appears, across every namespace.

One worker thread visits the namespaces in turn (see namespace.run_in_each).
In each it dumps only the tables the needle can be in, and a received chunk
is decoded only if the needle's raw bytes occur in it, so a namespace where
nothing matches costs a few recv() calls and a bytes search in C.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .discovery import NAME_LABELS, NamespaceEntry
from .errors import NamespaceError, UsageError
from .namespace import NetNamespace, run_in_each
from .netlink.constants import AF_BRIDGE, RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH
from .netlink.core import NetlinkSocket
from .netlink.links import (
    link_request,
    link_table,
    parse_address,
    parse_link,
)
from .netlink.neighbours import parse_fdb, parse_neighbour

__all__ = ["Needle", "find", "parse_needle"]

_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-])(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$")
_MAC_DOTTED = re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$")
_IFADDRMSG = b"\0" * 8


@dataclass(frozen=True)
class Needle:
    """What to look for: kind ('ip', 'mac', 'ifname'), its text and its raw bytes."""

    kind: str
    text: str
    raw: bytes


def parse_needle(text: str) -> Needle:
    """Classify the argument of `find`; UsageError when it is none of the three."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            raw = socket.inet_pton(family, text)
        except OSError:
            continue
        return Needle("ip", socket.inet_ntop(family, raw), raw)
    if re.fullmatch(r"\d+(\.\d+){1,3}", text):
        raise UsageError(f"find: '{text}' is not a valid IPv4 address (4 numbers of 0-255)")
    if _MAC.match(text) or _MAC_DOTTED.match(text):
        raw = bytes.fromhex(re.sub(r"[:.\-]", "", text))
        return Needle("mac", raw.hex(":"), raw)
    if text.count(":") >= 2 and re.fullmatch(r"[0-9a-fA-F:.]+", text):
        raise UsageError(f"find: '{text}' is not a valid IPv6 or MAC address")
    if 0 < len(text) < 16 and "/" not in text and not any(c.isspace() for c in text):
        return Needle("ifname", text, text.encode(errors="surrogateescape"))
    raise UsageError(f"find: '{text}' is not an IP address, a MAC address or an interface name")


def _chunks_with(
    sock: NetlinkSocket, msg_type: int, body: bytes, needle: bytes, what: str
) -> list[tuple[bytes, int, int]]:
    """(data, start, end) of each message of a dump whose bytes contain the needle.

    A list, read to the end of the dump: the socket must be free before the
    caller asks it anything else (one dump at a time per socket).
    """
    found = []
    for data, messages in sock.dump_chunks(msg_type, body, what=what):
        if needle not in data:
            continue
        for _kind, start, end in messages:
            if data.find(needle, start, end) >= 0:
                found.append((data, start, end))
    return found


def _search_here(needle: Needle) -> list[dict[str, Any]]:
    """Hits in the namespace of the calling thread: [{'table', 'dev', 'row'}]."""
    hits: list[dict[str, Any]] = []
    with NetlinkSocket(None) as sock:
        table = None

        def names():
            nonlocal table
            if table is None:
                table = link_table(sock)
            return table

        if needle.kind in ("mac", "ifname"):
            for data, start, end in _chunks_with(
                sock, RTM_GETLINK, link_request(), needle.raw, "link"
            ):
                row = parse_link(data, start, end, names())
                if needle.text in (row.get("ifname"), row.get("address")):
                    hits.append({"table": "link", "dev": row["ifname"], "row": row})
        if needle.kind == "ip":
            for data, start, end in _chunks_with(
                sock, RTM_GETADDR, _IFADDRMSG, needle.raw, "address"
            ):
                index, row = parse_address(data, start, end)
                if needle.text in (row.get("local"), row.get("address"), row.get("broadcast")):
                    hits.append({"table": "address", "dev": names().names.get(index), "row": row})
        if needle.kind in ("ip", "mac"):
            for family, table_name in ((0, "neigh"), (AF_BRIDGE, "fdb")):
                body = bytes((family,)) + b"\0" * 11
                for data, start, end in _chunks_with(
                    sock, RTM_GETNEIGH, body, needle.raw, table_name
                ):
                    if data[start] != family and family:
                        continue
                    parse = parse_fdb if data[start] == AF_BRIDGE else parse_neighbour
                    row = parse(data, start, end, names().names)
                    values = (row.get("dst"), row.get("lladdr"), row.get("mac"))
                    if needle.text in values:
                        hits.append(
                            {
                                "table": "fdb" if data[start] == AF_BRIDGE else "neigh",
                                "dev": row.get("dev") or row.get("ifname"),
                                "row": row,
                            }
                        )
    return hits


def find(entries: list[NamespaceEntry], needle: Needle) -> Iterator[dict[str, Any]]:
    """Every place the needle appears, one record per hit, namespace by namespace."""
    handles: list[NetNamespace] = []
    opened: list[NamespaceEntry] = []
    for entry in entries:
        if not entry.usable:
            continue
        try:
            handles.append(entry.open())
            opened.append(entry)
        except NamespaceError:
            continue
    try:
        results = list(run_in_each(handles, lambda ns: _search_here(needle)))
    finally:
        for ns in handles:
            ns.close()
    for entry, (_ns, hits) in zip(opened, results, strict=True):
        if isinstance(hits, BaseException):
            continue
        for hit in hits:
            record = {"netns": entry.name, "netns_kind": entry.kind, **hit}
            for key in NAME_LABELS:
                if entry.labels.get(key):
                    record[key] = entry.labels[key]
            yield record
