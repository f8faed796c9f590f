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

from .discovery import NAME_LABELS, NamespaceEntry
from .errors import NamespaceError
from .namespace import NetNamespace
from .netlink.core import NetlinkSocket
from .netlink.links import list_links
from .netlink.nsid import netnsid_of

__all__ = ["PeerResolver", "annotate_peers"]


class PeerResolver:
    """Maps (namespace, netnsid, ifindex) to the peer's namespace entry and ifname."""

    def __init__(self, entries: Iterable[NamespaceEntry]):
        self._entries = [e for e in entries if e.usable]
        self._nsid_maps: dict[tuple[int, int], dict[int, NamespaceEntry]] = {}
        self._links: dict[tuple[int | None, int | None], dict[int, dict[str, Any]]] = {}
        self._nsids: dict[tuple[Any, Any], int | None] = {}

    def is_namespace(
        self, ns: NetNamespace, sock: NetlinkSocket, nsid: int, other: NetNamespace
    ) -> bool:
        """Does `ns` (through `sock`, a socket in it) call `other`'s namespace `nsid`?

        The only sound test that a veth's peer lives in `other`: ifindexes repeat
        across namespaces, so a matching peer ifindex alone proves nothing.  Asked
        of the kernel once per pair of namespaces (RTM_GETNSID by fd, no id allocated).
        """
        key = (ns.key, other.key)
        if key not in self._nsids:
            self._nsids[key] = netnsid_of(sock, other.fd)
        return self._nsids[key] == nsid

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

    def namespace_by_nsid(
        self, ns: NetNamespace, sock: NetlinkSocket, nsid: int
    ) -> NamespaceEntry | None:
        """The namespace that `ns` (through `sock`, a socket in it) calls `nsid`."""
        return self._nsid_map(ns, sock).get(nsid)

    def _peer_links(self, entry: NamespaceEntry) -> dict[int, dict[str, Any]]:
        """ifindex -> link record of a namespace, read once."""
        key = (entry.dev, entry.inode)
        if key not in self._links:
            try:
                with entry.open() as handle:
                    self._links[key] = {r["ifindex"]: r for r in list_links(handle)}
            except (NamespaceError, OSError):
                self._links[key] = {}
        return self._links[key]

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
        peer = self._peer_links(entry).get(index, {})
        extra = _describe(entry, peer.get("ifname"), None)
        extra["peer_ifindex"] = index
        if peer.get("address"):
            extra["peer_address"] = peer["address"]
        addresses = [
            a["local"]
            for a in peer.get("addr_info", ())
            if a.get("scope") == "global" and "local" in a
        ]
        if addresses:
            extra["peer_addresses"] = addresses
        return extra


def _describe(
    entry: NamespaceEntry | None, ifname: str | None, ns: NetNamespace | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if entry is not None:
        out["peer_netns"] = entry.name
        out["peer_netns_inode"] = entry.inode
        for key in NAME_LABELS:
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
