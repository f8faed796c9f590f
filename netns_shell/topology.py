"""`topology`: namespaces -> bridges -> ports -> the namespace at the other end; vxlan -> VTEPs.

Every namespace is read once on one worker thread (links, plus the vxlan FDB
of namespaces that have a vxlan device).  veth pairs are matched globally:
a veth in A with peer ifindex x and peer netnsid n pairs with the veth of
ifindex x in B whose peer ifindex is A's veth, and only if A calls B `n`
(asked of the kernel through peers.PeerResolver, the one place a veth's peer
namespace is resolved): ifindexes repeat across namespaces, so a matching
number alone never pairs two veths.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .discovery import NAME_LABELS, NamespaceEntry, friendly_names
from .errors import NamespaceError
from .namespace import NetNamespace, run_in_each
from .netlink.core import NetlinkSocket
from .netlink.links import list_links
from .netlink.neighbours import list_fdb
from .peers import PeerResolver
from .sanitize import for_terminal

__all__ = ["Topology", "collect_topology", "dot_lines", "edge_records", "tree_lines"]

_VTEPS_SHOWN = 8  # in the tree; --json and --dot carry them all


@dataclass
class Port:
    """A link worth drawing: a bridge port, a veth or a vxlan device."""

    ns: str
    ifname: str
    kind: str | None
    master: str | None = None
    addresses: list[str] = field(default_factory=list)
    peer: tuple[str, str] | None = None  # (namespace, ifname) of a veth's other end
    vteps: list[str] = field(default_factory=list)
    vni: int | None = None


@dataclass
class Topology:
    entries: dict[str, NamespaceEntry] = field(default_factory=dict)
    ports: dict[str, list[Port]] = field(default_factory=dict)  # namespace -> ports
    bridges: dict[str, list[Port]] = field(default_factory=dict)  # namespace -> bridges


def _read_here() -> dict[str, Any]:
    """Links (and vxlan FDB destinations) of the calling thread's namespace."""
    with NetlinkSocket(None) as sock:
        links = list(list_links(None, sock=sock))
        vteps: dict[str, dict[str, None]] = {}  # ordered sets
        if any(link.get("linkinfo", {}).get("info_kind") == "vxlan" for link in links):
            for entry in list_fdb(None, sock=sock):
                dst = entry.get("dst")
                if dst and "master" not in entry and dst not in ("0.0.0.0", "::"):
                    vteps.setdefault(entry.get("ifname", ""), {})[dst] = None
    return {"links": links, "vteps": {dev: list(found) for dev, found in vteps.items()}}


def collect_topology(entries: list[NamespaceEntry]) -> Topology:
    """Read every usable namespace once and pair up veths across them."""
    topo = Topology()
    handles: list[NetNamespace] = []
    for entry in entries:
        if not entry.usable:
            continue
        try:
            handles.append(entry.open())
        except NamespaceError:
            continue
        topo.entries[entry.name] = entry
    try:
        results = list(run_in_each(handles, lambda ns: _read_here()))
        raw = {ns.label: result for ns, result in results if isinstance(result, dict)}
        by_name = {ns.label: ns for ns in handles}
        with _Pairing(by_name, PeerResolver(entries)) as pairing:
            _build(topo, raw, pairing)
    finally:
        for ns in handles:
            ns.close()
    return topo


def _build(topo: Topology, raw: dict[str, dict], pairing: _Pairing) -> None:
    veths: dict[tuple[int, int], list[tuple[str, dict]]] = {}  # (ifindex, peer) -> [(ns, link)]
    for ns_name, data in raw.items():
        for link in data["links"]:
            kind = link.get("linkinfo", {}).get("info_kind")
            if kind == "veth":
                veths.setdefault((link["ifindex"], link.get("link_index", 0)), []).append(
                    (ns_name, link)
                )
    for ns_name, data in raw.items():
        ports, bridges = [], []
        for link in data["links"]:
            kind = link.get("linkinfo", {}).get("info_kind")
            if kind not in ("bridge", "veth", "vxlan") and not link.get("master"):
                continue
            port = Port(
                ns_name,
                link["ifname"],
                kind,
                link.get("master"),
                [
                    f"{a['local']}/{a['prefixlen']}"
                    for a in link.get("addr_info", ())
                    if a.get("scope") == "global"
                ],
            )
            if kind == "vxlan":
                port.vni = link.get("linkinfo", {}).get("info_data", {}).get("id")
                port.vteps = data["vteps"].get(link["ifname"], [])
            if kind == "veth":
                port.peer = pairing.peer(ns_name, link, veths)
            (bridges if kind == "bridge" else ports).append(port)
        topo.ports[ns_name] = ports
        topo.bridges[ns_name] = bridges


class _Pairing:
    """Pairs veths across the namespaces read, verifying each pair's netnsid."""

    def __init__(self, handles: dict[str, NetNamespace], resolver: PeerResolver):
        self.handles, self.resolver = handles, resolver
        self._sockets: dict[str, NetlinkSocket] = {}

    def __enter__(self) -> _Pairing:
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self._sockets.values():
            sock.close()

    def peer(self, ns_name: str, link: dict, veths: dict) -> tuple[str, str] | None:
        """(namespace, ifname) of the veth at the other end of `link`, or None."""
        if link.get("link"):  # both ends in the same namespace
            return (ns_name, link["link"])
        peer_index, nsid = link.get("link_index"), link.get("link_netnsid")
        if peer_index is None or nsid is None or ns_name not in self.handles:
            return None
        candidates = [
            (n, peer)
            for n, peer in veths.get((peer_index, link["ifindex"]), [])
            if n != ns_name and n in self.handles
        ]
        if not candidates:
            return None
        here = self.handles[ns_name]
        sock = self._sockets.get(ns_name)
        if sock is None:
            sock = self._sockets[ns_name] = NetlinkSocket(here)
        for name, peer in candidates:
            if self.resolver.is_namespace(here, sock, nsid, self.handles[name]):
                return (name, peer["ifname"])
        return None


def _label(topo: Topology, ns_name: str) -> str:
    entry = topo.entries.get(ns_name)
    names = friendly_names(entry.labels) if entry else []
    return f"{ns_name} ({', '.join(names)})" if names else ns_name


def _port_line(topo: Topology, port: Port) -> str:
    text = f"{port.ifname} ({port.kind or 'link'})"
    if port.kind == "vxlan":
        text += f" vni {port.vni}" if port.vni is not None else ""
        if port.vteps:
            shown = ", ".join(port.vteps[:_VTEPS_SHOWN])
            more = len(port.vteps) - _VTEPS_SHOWN
            text += f" -> VTEPs {shown}" + (f" (+{more} more)" if more > 0 else "")
    if port.peer:
        peer_ns, peer_if = port.peer
        text += f" == {peer_if} @ {_label(topo, peer_ns)}"
        peer_addresses = next(
            (p.addresses for p in topo.ports.get(peer_ns, ()) if p.ifname == peer_if), []
        )
        if peer_addresses:
            text += " " + " ".join(peer_addresses)
    return text


def tree_lines(topo: Topology) -> Iterator[str]:
    """The picture for a terminal: one block per namespace with bridges or veth pairs."""
    shown_as_peer: set[tuple[str, str]] = set()
    for ns_name in topo.ports:
        for port in topo.ports[ns_name]:
            if port.master and port.peer:
                shown_as_peer.add(port.peer)
    for ns_name, bridges in topo.bridges.items():
        loose = [
            p
            for p in topo.ports[ns_name]
            if not p.master
            and p.kind in ("veth", "vxlan")
            and (ns_name, p.ifname) not in shown_as_peer
            and p.peer != (ns_name, p.ifname)
        ]
        if not bridges and not loose:
            continue
        yield _label(topo, ns_name)
        items: list[tuple[str, list[str]]] = []
        for bridge in bridges:
            head = " ".join([f"{bridge.ifname} (bridge)", *bridge.addresses])
            children = [
                _port_line(topo, p) for p in topo.ports[ns_name] if p.master == bridge.ifname
            ]
            items.append((head, children))
        items += [(_port_line(topo, p), []) for p in loose]
        for i, (head, children) in enumerate(items):
            last = i == len(items) - 1
            yield f"{'└─' if last else '├─'} {head}"
            indent = "   " if last else "│  "
            for j, child in enumerate(children):
                yield f"{indent}{'└─' if j == len(children) - 1 else '├─'} {child}"
        yield ""


def edge_records(topo: Topology) -> Iterator[dict[str, Any]]:
    """One record per drawn link: for --json."""
    for ns_name, ports in topo.ports.items():
        entry = topo.entries.get(ns_name)
        for port in ports:
            record: dict[str, Any] = {
                "netns": ns_name,
                "ifname": port.ifname,
                "kind": port.kind,
                "master": port.master,
            }
            if entry is not None:
                record.update({k: entry.labels[k] for k in NAME_LABELS if entry.labels.get(k)})
            if port.peer:
                record["peer_netns"], record["peer_ifname"] = port.peer
                peer = topo.entries.get(port.peer[0])
                if peer is not None:
                    for key in NAME_LABELS:
                        if peer.labels.get(key):
                            record[f"peer_{key}"] = peer.labels[key]
            if port.kind == "vxlan":
                record["vni"] = port.vni
                record["vteps"] = port.vteps
            yield record


def _quote(text: str) -> str:
    """A Graphviz string of a name: made terminal-safe first, then quoted for dot."""
    return '"' + for_terminal(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote_label(lines: list[str]) -> str:
    """A Graphviz label of several lines (dot's own \\n between them)."""
    return '"' + "\\n".join(_quote(line)[1:-1] for line in lines) + '"'


def dot_lines(topo: Topology) -> Iterator[str]:
    """Graphviz: a cluster per namespace, edges for ports, veth pairs and VTEPs."""
    yield "graph topology {"
    yield "  rankdir=LR; node [shape=box, fontsize=10];"
    vteps: set[str] = set()
    for i, ns_name in enumerate(topo.ports):
        members = topo.bridges[ns_name] + topo.ports[ns_name]
        if not members:
            continue
        yield f"  subgraph cluster_{i} {{ label={_quote(_label(topo, ns_name))};"
        for port in members:
            label = _quote_label([port.ifname, port.kind or "link"])
            yield f"    {_quote(ns_name + '/' + port.ifname)} [label={label}];"
        yield "  }"
    for ns_name, ports in topo.ports.items():
        for port in ports:
            node = _quote(f"{ns_name}/{port.ifname}")
            if port.master:
                yield f"  {node} -- {_quote(ns_name + '/' + port.master)};"
            if port.peer and (ns_name, port.ifname) < port.peer:
                yield f"  {node} -- {_quote(port.peer[0] + '/' + port.peer[1])} [style=bold];"
            for vtep in port.vteps:
                vteps.add(vtep)
                yield f"  {node} -- {_quote('vtep ' + vtep)} [style=dashed];"
    for vtep in sorted(vteps):
        yield f"  {_quote('vtep ' + vtep)} [shape=ellipse];"
    yield "}"
