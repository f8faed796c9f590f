"""`overlay`: one row per MAC known on an overlay namespace's bridge, with what disagrees.

It joins what the netshoot walk-through joins by hand: the bridge FDB (which
port a MAC is behind), the vxlan FDB (`dst`: the VTEP of a remote MAC), the
neighbour table (IP -> MAC) and the container behind each veth.  Flags:

* ``neigh-without-fdb``: a neighbour on a vxlan device whose MAC has no FDB
  entry, so frames to that IP go nowhere;
* ``fdb-without-neigh``: a vxlan FDB entry (remote MAC) with no neighbour,
  so nothing answers ARP for it (Docker relies on these proxy entries);
* ``two-ports``: a MAC behind two ports (e.g. a local veth and a remote VTEP);
* ``vtep-unreachable``: no route to the VTEP in the namespace where the vxlan
  socket lives (its link-netns, or the namespace itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .discovery import NamespaceEntry
from .errors import NamespaceError, NotFoundError
from .namespace import NetNamespace
from .netlink.core import NetlinkSocket
from .netlink.links import list_links
from .netlink.neighbours import list_fdb, list_neighbours
from .netlink.routes import route_get
from .peers import PeerResolver

__all__ = ["FLAGS", "overlay_rows", "underlay_namespace"]

FLAGS = ("neigh-without-fdb", "fdb-without-neigh", "two-ports", "vtep-unreachable")
_ZERO_MAC = "00:00:00:00:00:00"


@dataclass
class _Mac:
    mac: str
    ports: set[str] = field(default_factory=set)
    vteps: set[str] = field(default_factory=set)
    ips: list[str] = field(default_factory=list)
    neigh_devs: set[str] = field(default_factory=set)
    container: str | None = None
    local: bool = False


def _is_group(mac: str) -> bool:
    return int(mac[:2], 16) & 1 == 1


def overlay_rows(
    ns: NetNamespace,
    entries: Iterable[NamespaceEntry],
    endpoints: dict[str, dict[str, Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    """Rows of the overlay view of namespace `ns` (which must hold a vxlan on a bridge).

    `endpoints` maps MAC -> {"container", "ip"} from the Docker engine, if known.
    """
    entries = list(entries)
    with NetlinkSocket(ns) as sock:
        links = list(list_links(ns, sock=sock))
        fdb = list(list_fdb(ns, sock=sock))
        neighbours = list(list_neighbours(ns, sock=sock))
        kinds = {link["ifname"]: link.get("linkinfo", {}).get("info_kind") for link in links}
        vxlans = [link for link in links if kinds[link["ifname"]] == "vxlan"]
        if not vxlans:
            raise NotFoundError(
                "overlay: this namespace has no vxlan device "
                "(enter an overlay namespace such as 1-<netid>)"
            )
        own = {link.get("address") for link in links}
        macs = _collect(fdb, neighbours, kinds, own)
        _name_containers(ns, sock, macs, links, entries, endpoints or {})
        unreachable = _unreachable_vteps(ns, sock, vxlans, macs, entries)
    for item in sorted(macs.values(), key=lambda m: (not m.local, m.mac)):
        yield _row(item, kinds, unreachable)


def _collect(
    fdb: list[dict], neighbours: list[dict], kinds: dict[str, str | None], own: set[str | None]
) -> dict[str, _Mac]:
    macs: dict[str, _Mac] = {}

    def get(mac: str) -> _Mac:
        return macs.setdefault(mac, _Mac(mac))

    for entry in fdb:
        mac, dev = entry.get("mac"), entry.get("ifname")
        if not mac or mac == _ZERO_MAC or _is_group(mac):
            continue
        if "master" in entry:  # the bridge's table: which port a MAC is behind
            if mac in own and entry.get("state") == "permanent":
                continue  # a port's own address
            get(mac).ports.add(dev)
        elif "dst" in entry and kinds.get(dev) == "vxlan":  # the vxlan's table: remote VTEP
            item = get(mac)
            item.ports.add(dev)
            item.vteps.add(entry["dst"])
    for entry in neighbours:
        mac = entry.get("lladdr")
        if not mac or _is_group(mac) or mac in own:
            continue
        item = get(mac)
        item.ips.append(entry["dst"])
        item.neigh_devs.add(entry.get("dev"))
    return macs


def _name_containers(
    ns: NetNamespace,
    sock: NetlinkSocket,
    macs: dict[str, _Mac],
    links: list[dict],
    entries: list[NamespaceEntry],
    endpoints: dict[str, dict[str, Any]],
) -> None:
    """Local MACs: the container behind their veth port (or the engine's endpoint list)."""
    resolver = PeerResolver(entries)
    bridged = {link["ifname"] for link in links if link.get("master")}
    peer_of = {
        link["ifname"]: resolver.peer_of(ns, sock, link)
        for link in links
        if link.get("linkinfo", {}).get("info_kind") == "veth"
    }
    for port, peer in peer_of.items():
        # the container's own MAC is behind its veth even before the bridge learns it
        if port in bridged and peer.get("peer_address"):
            item = macs.setdefault(peer["peer_address"], _Mac(peer["peer_address"]))
            item.ports.add(port)
            item.ips.extend(ip for ip in peer.get("peer_addresses", ()) if ip not in item.ips)
    for item in macs.values():
        for port in item.ports:
            peer = peer_of.get(port)
            if peer is not None:
                item.local = True
                item.container = peer.get("peer_container") or peer.get("peer_netns")
        endpoint = endpoints.get(item.mac)
        if endpoint is not None:
            item.local = True
            item.container = endpoint.get("container") or item.container
            if endpoint.get("ip") and endpoint["ip"] not in item.ips:
                item.ips.append(endpoint["ip"])


def _unreachable_vteps(
    ns: NetNamespace,
    sock: NetlinkSocket,
    vxlans: list[dict],
    macs: dict[str, _Mac],
    entries: list[NamespaceEntry],
) -> set[str]:
    vteps = {vtep for item in macs.values() for vtep in item.vteps}
    if not vteps:
        return set()
    underlay = underlay_namespace(ns, sock, vxlans, entries)
    try:
        with NetlinkSocket(underlay, strict=False) as route_sock:
            return {v for v in vteps if route_get(underlay, v, sock=route_sock) is None}
    finally:
        if underlay is not ns:
            underlay.close()


def underlay_namespace(
    ns: NetNamespace, sock: NetlinkSocket, vxlans: list[dict], entries: list[NamespaceEntry]
) -> NetNamespace:
    """The namespace holding the vxlan's UDP socket: its link-netns, or `ns` itself."""
    nsid = vxlans[0].get("link_netnsid")
    if nsid is None:
        return ns
    entry = PeerResolver(entries).namespace_by_nsid(ns, sock, nsid)
    if entry is None:
        return ns
    try:
        return entry.open()
    except NamespaceError:
        return ns


def _row(item: _Mac, kinds: dict[str, str | None], unreachable: set[str]) -> dict[str, Any]:
    flags = []
    on_vxlan = any(kinds.get(dev) == "vxlan" for dev in item.neigh_devs)
    if on_vxlan and not item.ports:
        flags.append("neigh-without-fdb")
    if item.vteps and not item.ips:
        flags.append("fdb-without-neigh")
    if len(item.ports) > 1:
        flags.append("two-ports")
    if item.vteps & unreachable:
        flags.append("vtep-unreachable")
    container = item.container if item.local else ("remote" if item.vteps else None)
    return {
        "mac": item.mac,
        "ip": sorted(item.ips),
        "ports": sorted(item.ports),
        "vtep": sorted(item.vteps),
        "container": container,
        "location": "local" if item.local else ("remote" if item.vteps else "unknown"),
        "flags": flags,
    }
