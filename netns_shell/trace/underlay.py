"""A vxlan device on the path, the underlay between nodes, and the receiving node.

The vxlan FDB `dst` (VTEP) of the destination MAC, checked against the VTEP
the node's engine places the endpoint at; then, in the namespace holding the
vxlan UDP socket (IFLA_LINK_NETNSID of the device, architecture.md fact 7), the
underlay route, source, neighbour, MTU (inner + 50 B) and OUTPUT chain for
UDP 4789.  The receiving node is found by its VTEP address among the nodes'
engines (engine_view, as `check --cluster` reaches them): its INPUT chain and
local route for the VTEP, its overlay namespace's vxlan device of the same
VNI, and from there the walk goes on down to the destination's namespace.
"""

from __future__ import annotations

import os

from ..discovery import NamespaceEntry
from ..engine_view import EngineView, OverlayNode, load_view
from ..errors import NetnsShellError
from ..netlink.neighbours import list_fdb
from ..netlink.routes import route_lookup
from .places import Place, Places
from .records import (
    VXLAN_OVERHEAD,
    ZERO_MAC,
    Frame,
    Record,
    route_get_text,
    route_mtu,
    route_text,
)
from .rules import Packet

__all__ = ["UnderlayWalk", "network_id_of"]


class UnderlayWalk(Places):
    """vxlan FDB, underlay route and the receiving node's way in."""

    def __init__(
        self,
        entries: list[NamespaceEntry],
        nodes: list[OverlayNode] | None = None,
        *,
        judge: bool = True,
    ):
        super().__init__(entries, nodes, judge=judge)
        self._views: dict[tuple[str, str], EngineView | None] = {}

    def _vxlan_dst(self, place: Place, dev: Record, mac: str) -> Record | None:
        entries = [
            e for e in list_fdb(place.ns, dev=dev.get("ifname"), sock=place.sock) if e.get("dst")
        ]
        exact = [e for e in entries if e.get("mac", "").lower() == mac]
        default = [e for e in entries if e.get("mac") == ZERO_MAC]
        return (exact or default or [None])[0]

    def _vxlan(self, place: Place, dev: Record, frame: Frame) -> None:
        name = dev.get("ifname")
        data = dev.get("linkinfo", {}).get("info_data", {})
        mac = (frame.mac or "").lower()
        self._check_link(place, "vxlan", dev, f"{name}")
        entry = self._vxlan_dst(place, dev, mac)
        if entry is None:
            self._drop(
                place,
                "vxlan",
                f"{name}: no fdb entry for {mac}",
                "no-fdb",
                f"vxlan {name} (VNI {data.get('id')}) has no FDB entry for {mac} and no "
                "default (00:00:00:00:00:00) destination",
                oif=name,
            )
        assert entry is not None
        vtep = entry["dst"]
        if frame.size > int(dev.get("mtu") or 65535):
            self._drop(
                place,
                "vxlan",
                f"{name}: fdb {mac} dst {vtep}",
                "mtu",
                f"{frame.size} B > MTU {dev.get('mtu')} of {name}",
                oif=name,
            )
        self._engine_vtep(place, name, frame, vtep)
        self._hop(
            place,
            "vxlan",
            f"{name}: fdb {entry.get('mac')} dst {vtep} (VNI {data.get('id')})",
            oif=name,
            vtep=vtep,
            mtu=dev.get("mtu"),
        )
        under = self._socket_place(place, dev)
        if under is None:
            self._unknown(
                place,
                "underlay",
                f"VNI {data.get('id')} -> {vtep}",
                "the namespace holding the vxlan socket cannot be opened",
            )
        assert under is not None
        self._underlay(under, data, vtep, frame, overlay=place)

    def _socket_place(self, place: Place, dev: Record) -> Place | None:
        nsid = dev.get("link_netnsid")
        if nsid is None:
            return place
        assert self._resolver is not None
        entry = self._resolver.namespace_by_nsid(place.ns, place.sock, nsid)
        return self._place_for(entry) if entry is not None else None

    def _engine_vtep(self, place: Place, name: str | None, frame: Frame, vtep: str) -> None:
        """With the node's engine at hand: the VTEP it places the destination at."""
        view = self._view_for(place) if self.judge else None
        if view is None:
            return
        endpoint = view.endpoints.get(frame.next_ip or "")
        if endpoint is None or endpoint.local or not endpoint.vtep or endpoint.vtep == vtep:
            return
        self.judged = True
        self._drop(
            place,
            "vxlan",
            f"{name}: fdb {frame.mac} dst {vtep}",
            "wrong-vtep",
            f"the engine of {view.node} places {frame.next_ip} ({endpoint.name}) at VTEP "
            f"{endpoint.vtep}, the FDB sends it to {vtep}",
            oif=name,
            vtep=vtep,
        )

    def _view_for(self, place: Place) -> EngineView | None:
        node = self._node(place.node)
        network_id = network_id_of(place.netns)
        if node is None or network_id is None or node.error is not None:
            return None
        key = (node.name, network_id)
        if key not in self._views:
            self._views[key] = None
            try:
                for net in node.overlay_networks():
                    if net["id"].startswith(network_id):
                        self._views[key] = load_view(node, net["id"])
            except NetnsShellError:
                pass
        return self._views[key]

    def _node(self, name: str) -> OverlayNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    # --------------------------------------------------------- underlay
    def _underlay(
        self, under: Place, data: Record, vtep: str, frame: Frame, overlay: Place
    ) -> None:
        port = int(data.get("port") or 4789)
        outer = Packet(data.get("local"), vtep, "udp", None, port, 0)
        outer_frame = Frame(outer, frame.size + VXLAN_OVERHEAD)
        route, error = route_lookup(under.sock, vtep, src=outer.src, proto="udp", dport=port)
        asked = route_get_text(outer, None)
        if route is None:
            self._drop(
                under,
                "underlay",
                f"{asked}: {os.strerror(error)}",
                "vtep-unreachable",
                f"no route to VTEP {vtep} in {under.netns}: {os.strerror(error)}",
            )
        assert route is not None
        if route.get("type", "unicast") != "unicast":
            self._drop(
                under,
                "underlay",
                f"{asked}: {route.get('type')}",
                "vtep-unreachable",
                route_text(route),
            )
        if outer.src is None and route.get("prefsrc"):
            outer = Packet(route["prefsrc"], vtep, "udp", None, port, 0)
            outer_frame = Frame(outer, frame.size + VXLAN_OVERHEAD)
            asked = route_get_text(outer, None)
        self._netfilter(
            under, "output", outer_frame, iif=None, oif=route.get("dev"), step="underlay"
        )
        out = under.link(route.get("dev"))
        self._check_link(under, "underlay", out, asked)
        mtu = route_mtu(route, out)
        if outer_frame.size > mtu:
            self._drop(
                under,
                "underlay",
                f"{asked}: {route_text(route)}",
                "mtu",
                f"{frame.size} B inner with DF + {VXLAN_OVERHEAD} B VXLAN = "
                f"{outer_frame.size} B > MTU {mtu} of {out.get('ifname')}: the vxlan "
                "device drops it (and answers ICMP frag-needed)",
                mtu=mtu,
                oif=out.get("ifname"),
            )
        src = outer.src or route.get("prefsrc")
        next_ip = route.get("gateway") or vtep
        neighbour = self._neighbour(under, "underlay", out, next_ip, asked)
        self._judge_neighbour(under, "underlay", out, next_ip, neighbour, asked, None)
        self._hop(
            under,
            "underlay",
            f"{asked}: {route_text(route)}; {neighbour.get('text')}",
            oif=out.get("ifname"),
            mtu=mtu,
            src=src,
            vtep=vtep,
            outer_size=outer_frame.size,
        )
        self._receive(under, vtep, src, data, frame, outer_frame, overlay)

    def _receive(
        self,
        under: Place,
        vtep: str,
        src: str | None,
        data: Record,
        frame: Frame,
        outer_frame: Frame,
        overlay: Place,
    ) -> None:
        if is_local(under, vtep):
            self._unknown(
                under,
                "underlay",
                f"VTEP {vtep} is this namespace's own address",
                "a tunnel to itself",
            )
        node = next((n for n in self.nodes if n.addr == vtep), None)
        if node is None:
            known = ", ".join(f"{n.name} {n.addr}" for n in self.nodes if n.addr) or "none"
            silent = "".join(
                f"; node {n.name} cannot be reached: {n.error}" for n in self.nodes if n.error
            )
            self._unknown(
                under,
                "node",
                f"VTEP {vtep}: no known node",
                f"no node that answers has address {vtep} (nodes: {known}){silent}"
                + ("" if self.nodes else "; give --nodes or NETNS_SHELL_NODES"),
                reason="node-unreachable",
            )
        assert node is not None
        if node.error is not None:
            self._unknown(
                under,
                "node",
                f"VTEP {vtep}: node {node.name}",
                f"node {node.name} cannot be reached: {node.error}",
                reason="node-unreachable",
            )
        network_id = network_id_of(overlay.netns)
        path = node.namespace_path(network_id) if network_id else None
        entry = self._entry_at(path) if path else None
        if entry is None:
            self._unknown(
                under,
                "node",
                f"VTEP {vtep}: node {node.name}",
                f"node {node.name} has no namespace for the overlay "
                f"{overlay.netns} that this shell can open",
                reason="node-unreachable",
            )
        assert entry is not None
        remote = self._open(entry)
        remote.node = node.name
        vni = data.get("id")
        dev = next(
            (
                r
                for r in remote.links.values()
                if r.get("linkinfo", {}).get("info_kind") == "vxlan"
                and r["linkinfo"].get("info_data", {}).get("id") == vni
            ),
            None,
        )
        if dev is None:
            self._drop(
                remote,
                "vxlan",
                f"VNI {vni}",
                "wrong-vtep",
                f"node {node.name} ({vtep}) has no vxlan device with VNI {vni}",
            )
        assert dev is not None
        sock_place = self._socket_place(remote, dev)
        if sock_place is not None:
            sock_place.node = node.name
            self._decapsulate(sock_place, vtep, src, outer_frame, dev, remote)
        frame.from_vtep = src
        self._hop(
            remote,
            "vxlan",
            f"{dev.get('ifname')} VNI {vni} from {src}: decapsulated",
            iif=dev.get("ifname"),
        )
        self._ingress(remote, dev, frame)

    def _decapsulate(
        self, place: Place, vtep: str, src: str | None, outer: Frame, dev: Record, remote: Place
    ) -> None:
        """The receiving node's underlay: the route to its own VTEP address and INPUT."""
        back, _ = route_lookup(place.sock, src) if src else (None, 0)
        iif = back.get("dev") if back else None
        iif_index = place.link(iif).get("ifindex") if iif else None
        route, error = route_lookup(
            place.sock, vtep, src=src, iif=iif_index, proto="udp", dport=outer.packet.dport
        )
        asked = route_get_text(outer.packet, iif)
        if route is None or route.get("type") != "local":
            what = os.strerror(error) if route is None else route.get("type")
            self._drop(
                place,
                "underlay-in",
                f"{asked}: {what}",
                "vtep-unreachable",
                f"{vtep} is not a local address of {place.netns}",
                iif=iif,
            )
        self._netfilter(place, "input", outer, iif=iif, oif=None, step="underlay-in")
        if iif:
            self._check_link(place, "underlay-in", place.link(iif), asked)
        self._hop(
            place,
            "underlay-in",
            f"{asked}: local; udp {outer.packet.dport} -> vxlan "
            f"{dev.get('ifname')} in {remote.netns}",
            iif=iif,
        )


def is_local(place: Place, address: str) -> bool:
    return any(
        a.get("local") == address for r in place.links.values() for a in r.get("addr_info", ())
    )


def network_id_of(netns: str) -> str | None:
    """The network ID prefix of an overlay namespace named `<n>-<id[:10]>` (also as
    `TAG:<n>-<id>` or a path: the name a namespace has when other engines hold one as well)."""
    head, sep, tail = os.path.basename(netns).rpartition(":")[2].partition("-")
    if sep and head.isdigit() and len(tail) == 10:
        return tail
    return None
