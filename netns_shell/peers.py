"""The other end of a veth: which namespace, which interface.

A veth record carries the peer's ifindex (`link_index`) and the id its own
namespace gives the peer's namespace (`link_netnsid`).  To name that
namespace, ask the veth's namespace which id it has assigned to each known
namespace (RTM_GETNSID by fd, nothing allocated); then read the peer's name
from a link dump of that namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .discovery import NamespaceEntry
from .errors import NamespaceError
from .namespace import NetNamespace
from .netlink.core import NetlinkSocket
from .netlink.links import link_names
from .netlink.nsid import netnsid_of

__all__ = ["PeerResolver", "annotate_peers"]


class PeerResolver:
    """Maps (namespace, netnsid, ifindex) to the peer's namespace entry and ifname."""

    def __init__(self, entries: Iterable[NamespaceEntry]):
        self._entries = [e for e in entries if e.usable]
        self._nsid_maps: dict[tuple[int, int], dict[int, NamespaceEntry]] = {}
        self._names: dict[tuple[int | None, int | None], dict[int, str]] = {}

    def _nsid_map(self, ns: NetNamespace, sock: NetlinkSocket) -> dict[int, NamespaceEntry]:
        if ns.key not in self._nsid_maps:
            mapping: dict[int, NamespaceEntry] = {}
            for entry in self._entries:
                try:
                    handle = entry.open()
                except NamespaceError:
                    continue
                with handle:
                    nsid = netnsid_of(sock, handle.fd)
                if nsid is not None:
                    mapping.setdefault(nsid, entry)
            self._nsid_maps[ns.key] = mapping
        return self._nsid_maps[ns.key]

    def _peer_names(self, entry: NamespaceEntry) -> dict[int, str]:
        key = (entry.dev, entry.inode)
        if key not in self._names:
            try:
                with entry.open() as handle, NetlinkSocket(handle) as sock:
                    self._names[key] = link_names(sock)
            except (NamespaceError, OSError):
                self._names[key] = {}
        return self._names[key]

    def peer_of(
        self, ns: NetNamespace, sock: NetlinkSocket, record: dict[str, Any]
    ) -> dict[str, Any]:
        """Extra keys naming a veth's peer: peer_netns, peer_ifname, ..."""
        if record.get("linkinfo", {}).get("info_kind") != "veth":
            return {}
        if "link" in record and record["link"] is not None:  # peer in the same namespace
            entry = next((e for e in self._entries if (e.dev, e.inode) == ns.key), None)
            return _describe(entry, record["link"], ns)
        nsid = record.get("link_netnsid")
        index = record.get("link_index")
        if nsid is None or index is None:
            return {}
        entry = self._nsid_map(ns, sock).get(nsid)
        if entry is None:
            return {"peer_netns": f"nsid {nsid}", "peer_ifindex": index}
        ifname = self._peer_names(entry).get(index)
        extra = _describe(entry, ifname, None)
        extra["peer_ifindex"] = index
        return extra


def _describe(
    entry: NamespaceEntry | None, ifname: str | None, ns: NetNamespace | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if entry is not None:
        out["peer_netns"] = entry.name
        out["peer_netns_inode"] = entry.inode
        for key in ("container", "network"):
            if entry.labels.get(key):
                out[f"peer_{key}"] = entry.labels[key]
    elif ns is not None:
        out["peer_netns"] = ns.label
        out["peer_netns_inode"] = ns.inode
    if ifname is not None:
        out["peer_ifname"] = ifname
    return out


def annotate_peers(
    ns: NetNamespace, records: Iterable[dict[str, Any]], entries: Iterable[NamespaceEntry]
) -> Iterator[dict[str, Any]]:
    """Add peer_* keys to veth records as they stream past."""
    resolver = PeerResolver(entries)
    with NetlinkSocket(ns) as sock:
        for record in records:
            record.update(resolver.peer_of(ns, sock, record))
            yield record
