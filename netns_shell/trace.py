"""Where a packet goes and where it dies, from the kernel's own state (no packet sent).

The walk starts in the source namespace and asks each namespace on the way
what the kernel would do with the packet, one decision per hop:

* routing: RTM_GETROUTE with the packet's fields (`ip route get DST from SRC
  [iif DEV] ipproto P dport N mark M`), so policy rules, tables, forwarding,
  rp_filter and local delivery are the kernel's own answers; then the
  neighbour of the next hop, the out device's state and MTU, and the
  netfilter chains of that point (netns_shell.trace_rules);
* a veth: on to its peer in the peer's namespace (peers.PeerResolver);
* a bridge: the FDB lookup of the destination MAC (forward, local, flood);
* a vxlan port: its FDB `dst` (the VTEP), then the underlay route, source,
  MTU and OUTPUT chain in the namespace that holds the vxlan UDP socket
  (IFLA_LINK_NETNSID of the vxlan device, DESIGN fact 7);
* the receiving node, found by its VTEP address among the nodes' engines
  (engine_view, as `check --cluster` reaches them): its INPUT chain for UDP
  4789, the local route of the VTEP, its overlay namespace's vxlan device of
  the same VNI, and the same walk down to the destination's namespace.

Each hop is a record (see `Hop`); the last one carries the overall verdict:
`delivered`, `dropped` (with a stable `reason`) or `unknown` (the path
leaves what this shell can see, or a node does not answer).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from .discovery import NAME_LABELS, NamespaceEntry
from .engine_view import EngineView, OverlayNode, load_view
from .errors import NetnsShellError
from .namespace import NetNamespace
from .netlink.core import NetlinkSocket
from .netlink.links import list_links
from .netlink.neighbours import list_fdb, list_neighbours
from .netlink.routes import route_lookup
from .peers import PeerResolver
from .trace_rules import Packet, RuleSet, load_rules

__all__ = ["REASONS", "VXLAN_OVERHEAD", "Place", "TraceRequest", "Tracer"]

Record = dict[str, Any]

#: the stable reasons a hop can name for a drop
REASONS = (
    "no-route",
    "unreachable",
    "blackhole",
    "prohibit",
    "neigh-failed",
    "neigh-missing",
    "neigh-wrong-mac",
    "link-down",
    "no-fdb",
    "hairpin",
    "wrong-vtep",
    "vtep-unreachable",
    "mtu",
    "netfilter",
    "rp-filter",
    "forwarding-disabled",
    "not-for-this-host",
    "node-unreachable",
    "loop",
)
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
_ETHER_BROADCAST = "ff:ff:ff:ff:ff:ff"
_ZERO_MAC = "00:00:00:00:00:00"
_MAX_HOPS = 40
#: is_skb_forwardable() lets a frame through a veth or bridge port up to MTU + VLAN_HLEN
_VLAN_SLACK = 4


@dataclass(frozen=True)
class TraceRequest:
    dst: str
    proto: str = "icmp"
    port: int | None = None
    size: int = 84
    mark: int = 0
    src: str | None = None


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    """The walk ends here (the last hop holds the verdict)."""


@dataclass
class Place:
    """One namespace on the path: its handle, its names and what was read from it."""

    ns: NetNamespace
    netns: str
    node: str
    name: str = ""  # container / network / pod
    path: str = ""
    entry: NamespaceEntry | None = None
    _sock: NetlinkSocket | None = None
    _links: dict[str, Record] | None = None
    _rules: tuple[RuleSet | None, str] | None = None

    @property
    def sock(self) -> NetlinkSocket:
        if self._sock is None:
            self._sock = NetlinkSocket(self.ns, strict=False)
        return self._sock

    @property
    def links(self) -> dict[str, Record]:
        if self._links is None:
            self._links = {r["ifname"]: r for r in list_links(self.ns, sock=self.sock)}
        return self._links

    def link(self, name: str | None) -> Record:
        return self.links.get(name or "", {})

    def by_index(self, index: int) -> Record:
        return next((r for r in self.links.values() if r["ifindex"] == index), {})

    def rules(self) -> tuple[RuleSet | None, str]:
        if self._rules is None:
            self._rules = load_rules(self.ns)
        return self._rules

    def sysctl(self, path: str) -> str | None:
        def read() -> str | None:
            try:
                with open(f"/proc/sys/net/{path}") as fh:
                    return fh.read().strip()
            except OSError:
                return None

        return self.ns.run(read)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self.ns.close()


@dataclass
class _Frame:
    """What travels: the IP packet's fields and, on a link, the destination MAC."""

    packet: Packet
    size: int
    mac: str | None = None
    mac_from: str = ""  # where the MAC came from (a neighbour entry), for the evidence
    next_ip: str | None = None
    vni: int | None = None  # set while inside a tunnel's overlay
    from_vtep: str | None = None


@dataclass
class Tracer:
    """Walks one packet through the namespaces (and nodes) it would cross.

    `entries`: the namespaces this shell can open (discovery), used to name
    places and to follow veths and vxlan sockets; `nodes`: the cluster's nodes
    (engines) to continue on when the path leaves through a tunnel.
    """

    entries: list[NamespaceEntry]
    nodes: list[OverlayNode] = field(default_factory=list)
    hops: list[Record] = field(default_factory=list)
    _places: list[Place] = field(default_factory=list)
    _resolver: PeerResolver | None = None
    _views: dict[tuple[str, str], EngineView | None] = field(default_factory=dict)
    _opaque: bool = False  # set by _segment_owner: the segment leaves what can be seen

    def __post_init__(self) -> None:
        self._resolver = PeerResolver(self.entries)

    # ------------------------------------------------------------ public
    def trace(self, source: NetNamespace, request: TraceRequest) -> list[Record]:
        """The hops, the last one with the overall verdict; `source` is not closed."""
        place = self._place(source.duplicate())
        packet = Packet(
            src=request.src,
            dst=request.dst,
            proto=request.proto,
            sport=None,
            dport=request.port if request.proto != "icmp" else None,
            mark=request.mark,
        )
        frame = _Frame(packet, request.size)
        try:
            self._route(place, None, frame)
        except _Stop:
            pass
        finally:
            for p in self._places:
                try:
                    p.close()
                except OSError:
                    pass
        if not self.hops or self.hops[-1]["verdict"] == "forwarded":
            self._hop(place, "end", "the walk ended", verdict="unknown")
        return self.hops

    # ----------------------------------------------------------- places
    def _place(self, ns: NetNamespace, entry: NamespaceEntry | None = None) -> Place:
        entry = entry or self._entry_of(ns)
        name = ""
        if entry is not None:
            name = next((str(entry.labels[k]) for k in NAME_LABELS if entry.labels.get(k)), "")
        netns = entry.name if entry is not None else ns.label
        path = entry.paths[0] if entry is not None and entry.paths else ns.path
        place = Place(
            ns, os.path.basename(netns), self._node_of(path), name=name, entry=entry, path=path
        )
        self._places.append(place)
        return place

    def _entry_of(self, ns: NetNamespace) -> NamespaceEntry | None:
        return next((e for e in self.entries if (e.dev, e.inode) == ns.key), None)

    def _node_of(self, path: str) -> str:
        for node in self.nodes:
            if node.netns_dir and path.startswith(node.netns_dir.rstrip("/") + "/"):
                return node.name
            if node.name and os.path.basename(path).endswith(f"-{node.name}"):
                return node.name  # the node's own namespace (the swarm lab names them so)
        return self.nodes[0].name if self.nodes else "local"

    def _open(self, entry: NamespaceEntry) -> Place:
        return self._place(entry.open(), entry)

    # ------------------------------------------------------------ hops
    def _hop(
        self,
        place: Place,
        step: str,
        match: str,
        *,
        verdict: str = "forwarded",
        reason: str = "",
        evidence: str = "",
        **extra: Any,
    ) -> Record:
        hop: Record = {
            "hop": len(self.hops) + 1,
            "node": place.node,
            "netns": place.netns,
            "name": place.name,
            "step": step,
            "match": match,
            "verdict": verdict,
            "path": place.path,
        }
        if reason:
            hop["reason"] = reason
        if evidence:
            hop["evidence"] = evidence
        hop.update({k: v for k, v in extra.items() if v is not None})
        self.hops.append(hop)
        if len(self.hops) >= _MAX_HOPS and verdict == "forwarded":
            self._drop(place, step, "the path loops", "loop", f"more than {_MAX_HOPS} hops")
        return hop

    def _drop(
        self, place: Place, step: str, match: str, reason: str, evidence: str, **extra: Any
    ) -> None:
        self._hop(place, step, match, verdict="dropped", reason=reason, evidence=evidence, **extra)
        raise _Stop

    def _unknown(self, place: Place, step: str, match: str, evidence: str, **extra: Any) -> None:
        reason = extra.pop("reason", "")
        self._hop(place, step, match, verdict="unknown", reason=reason, evidence=evidence, **extra)
        raise _Stop

    # ---------------------------------------------------------- routing
    def _route(self, place: Place, iif: str | None, frame: _Frame) -> None:
        """The IP layer of `place`: a packet sent from it (iif None) or received on `iif`."""
        pkt = frame.packet
        iif_index = place.link(iif).get("ifindex") if iif else None
        route, error = route_lookup(
            place.sock,
            pkt.dst,
            src=pkt.src if (iif or pkt.src) else None,
            iif=iif_index,
            proto=pkt.proto,
            dport=pkt.dport,
            mark=pkt.mark or None,
        )
        asked = _route_get_text(pkt, iif)
        if route is None:
            self._route_error(place, iif, frame, error, asked)
        assert route is not None
        if pkt.src is None and route.get("prefsrc"):
            frame.packet = pkt = Packet(
                pkt.src or route["prefsrc"], pkt.dst, pkt.proto, pkt.sport, pkt.dport, pkt.mark
            )
        kind = route.get("type", "unicast")
        step = "route" if iif is None else "forward"
        if kind == "local":
            self._netfilter(place, "input", frame, iif=iif, oif=None, step="deliver")
            self._hop(
                place, "deliver", f"{asked}: local", verdict="delivered", iif=iif, route=route
            )
            raise _Stop
        if kind != "unicast":
            reason = kind if kind in ("blackhole", "unreachable", "prohibit") else "no-route"
            self._drop(place, step, f"{asked}: {kind}", reason, _route_text(route), iif=iif)
        if iif is not None:
            self._netfilter(place, "forward", frame, iif=iif, oif=route.get("dev"), step=step)
        else:
            self._netfilter(place, "output", frame, iif=None, oif=route.get("dev"), step=step)
        out = place.link(route.get("dev"))
        self._check_link(place, step, out, asked)
        mtu = _route_mtu(route, out)
        if frame.size > mtu:
            self._drop(
                place,
                step,
                f"{asked}: {_route_text(route)}",
                "mtu",
                f"{frame.size} B with DF > MTU {mtu} of {out.get('ifname')}",
                mtu=mtu,
                oif=out.get("ifname"),
            )
        next_ip = route.get("gateway") or pkt.dst
        frame.next_ip = next_ip
        neighbour = self._neighbour(place, step, out, next_ip, asked)
        frame.mac = neighbour.get("lladdr")
        frame.mac_from = (
            f"neighbour {next_ip} lladdr {frame.mac} dev {out.get('ifname')} in {place.netns}"
        )
        self._hop(
            place,
            step,
            f"{asked}: {_route_text(route)}; {neighbour.get('text')}",
            iif=iif,
            oif=out.get("ifname"),
            mtu=mtu,
            lladdr=frame.mac,
            src=frame.packet.src,
        )
        self._egress(place, out, frame)

    def _route_error(
        self, place: Place, iif: str | None, frame: _Frame, error: int, asked: str
    ) -> None:
        step = "route" if iif is None else "forward"
        text = os.strerror(error)
        if iif is not None and error == errno.EHOSTUNREACH:
            forwarding = place.sysctl(f"ipv4/conf/{iif}/forwarding")
            if forwarding == "0":
                self._drop(
                    place,
                    step,
                    f"{asked}: {text}",
                    "forwarding-disabled",
                    f"net.ipv4.conf.{iif}.forwarding = 0 (ip_forward "
                    f"{place.sysctl('ipv4/ip_forward')})",
                    iif=iif,
                )
        if iif is not None and error in (errno.EINVAL, errno.EXDEV):
            self._rp_filter(place, iif, frame, asked, text)
        reason = {
            errno.ENETUNREACH: "no-route",
            errno.EHOSTUNREACH: "unreachable",
            errno.EACCES: "prohibit",
            errno.EINVAL: "blackhole",
        }.get(error, "no-route")
        evidence = _down_links_text(place) if reason == "no-route" else ""
        if reason in ("blackhole", "unreachable", "prohibit"):
            evidence = _typed_route(place, frame.packet.dst, reason) or evidence
        self._drop(
            place, step, f"{asked}: {text}", reason, evidence or f"route get: {text}", iif=iif
        )

    def _rp_filter(self, place: Place, iif: str, frame: _Frame, asked: str, text: str) -> None:
        src = frame.packet.src
        if src is None:
            return
        values = [place.sysctl(f"ipv4/conf/{d}/rp_filter") for d in ("all", iif)]
        strict = max(int(v or 0) for v in values)
        back, _ = route_lookup(place.sock, src)
        if strict and back is not None and back.get("dev") != iif:
            self._drop(
                place,
                "forward",
                f"{asked}: {text}",
                "rp-filter",
                f"rp_filter {strict} (all {values[0]}, {iif} {values[1]}): the route "
                f"back to {src} leaves by {back.get('dev')}, not {iif}",
                iif=iif,
            )

    def _netfilter(
        self, place: Place, hook: str, frame: _Frame, *, iif: str | None, oif: str | None, step: str
    ) -> None:
        rules, _note = place.rules()
        if rules is None:
            return
        verdict = rules.decide(hook, frame.packet, iif=iif, oif=oif)
        if verdict.drops:
            self._drop(
                place,
                step,
                f"netfilter {verdict.chain}: {verdict.verdict.upper()}",
                "netfilter",
                verdict.evidence(),
                iif=iif,
                oif=oif,
            )

    def _check_link(self, place: Place, step: str, link: Record, what: str) -> None:
        flags = link.get("flags", [])
        if "UP" not in flags:
            self._drop(
                place,
                step,
                what,
                "link-down",
                f"{link.get('ifname')} is down (admin)",
                oif=link.get("ifname"),
            )
        if "LOWER_UP" not in flags or link.get("operstate") in ("DOWN", "LOWERLAYERDOWN"):
            peer = ""
            if link.get("linkinfo", {}).get("info_kind") == "veth":
                peer = " (its veth peer is down)"
            self._drop(
                place,
                step,
                what,
                "link-down",
                f"{link.get('ifname')} has no carrier, operstate {link.get('operstate')}{peer}",
                oif=link.get("ifname"),
            )

    def _neighbour(self, place: Place, step: str, out: Record, ip: str, asked: str) -> Record:
        dev = out.get("ifname")
        if "NOARP" in out.get("flags", []) or out.get("link_type") != "ether":
            return {"text": f"{dev} needs no neighbour"}
        entries = list_neighbours(place.ns, dev=dev, show_all=True, sock=place.sock)
        entry = next((e for e in entries if e.get("dst") == ip), None)
        if entry is not None:
            states = entry.get("state") or []
            text = f"neigh {ip} lladdr {entry.get('lladdr')} {'/'.join(states)}"
            if "FAILED" in states or "INCOMPLETE" in states or not entry.get("lladdr"):
                self._drop(
                    place,
                    step,
                    f"{asked}; neigh {ip} {'/'.join(states)}",
                    "neigh-failed",
                    f"{ip} dev {dev} {'/'.join(states)}: nobody answered ARP",
                    oif=dev,
                )
            return {"lladdr": entry.get("lladdr"), "text": text}
        owner = self._segment_owner(place, out, ip)
        info = out.get("linkinfo", {})
        if owner is None and info.get("info_kind") == "vxlan":
            self._drop(
                place,
                step,
                f"{asked}; no neighbour {ip}",
                "neigh-missing",
                f"no neighbour entry for {ip} on {dev} (the vxlan device answers "
                "no ARP itself: the control plane must program it)",
                oif=dev,
            )
        if owner is None and self._opaque:
            return {
                "text": f"no neigh {ip} yet: ARP on {dev} (the segment goes beyond what "
                "this shell sees)"
            }
        if owner is None:
            self._drop(
                place,
                step,
                f"{asked}; no neighbour {ip}",
                "neigh-missing",
                f"no neighbour entry for {ip} on {dev} and nothing on that "
                "segment holds the address",
                oif=dev,
            )
        assert owner is not None
        return {
            "lladdr": owner[0],
            "text": f"no neigh {ip} yet: ARP resolves to {owner[0]} ({owner[1]})",
        }

    def _segment_owner(self, place: Place, out: Record, ip: str) -> tuple[str, str] | None:
        """(MAC, where) of the interface holding `ip` on the segment behind `out`."""
        seen: set[tuple[int, int, str]] = set()
        self._opaque = False
        todo: list[tuple[Place, Record, bool]] = [(place, out, False)]
        while todo and len(seen) < 64:
            here, link, arrived = todo.pop()
            key = (*here.ns.key, str(link.get("ifname")))
            if key in seen:
                continue
            seen.add(key)
            if arrived and any(a.get("local") == ip for a in link.get("addr_info", ())):
                return link.get("address", ""), f"{link.get('ifname')} in {here.netns}"
            kind = link.get("linkinfo", {}).get("info_kind")
            if kind == "vxlan" and link.get("linkinfo", {}).get("info_data", {}).get("proxy"):
                # the vxlan device answers ARP itself from its neighbour table (Docker's)
                entries = list_neighbours(here.ns, dev=link["ifname"], sock=here.sock)
                entry = next((e for e in entries if e.get("dst") == ip), None)
                if entry is not None and entry.get("lladdr"):
                    return entry["lladdr"], f"proxy ARP of {link['ifname']} in {here.netns}"
            if link.get("master") and arrived:
                bridge = here.link(link["master"])
                todo.append((here, bridge, True))
            if kind == "bridge":
                ports = [r for r in here.links.values() if r.get("master") == link["ifname"]]
                todo += [(here, port, False) for port in ports]
            if kind == "veth" and not arrived:
                peer = self._peer(here, link)
                if peer is not None:
                    todo.append((peer[0], peer[1], True))
                else:
                    self._opaque = True
            if kind not in ("veth", "bridge", "vxlan") and link.get("ifname") != "lo":
                self._opaque = True  # a NIC: the segment goes on outside this host
        return None

    # ------------------------------------------------------------ links
    def _egress(self, place: Place, out: Record, frame: _Frame) -> None:
        """A frame leaves `place` through `out`."""
        kind = out.get("linkinfo", {}).get("info_kind")
        if kind == "veth":
            peer = self._peer(place, out)
            if peer is None:
                self._unknown(
                    place,
                    "veth",
                    f"{out.get('ifname')} -> ?",
                    "the veth's peer is in a namespace this shell cannot open",
                )
            assert peer is not None
            self._ingress(peer[0], peer[1], frame)
        elif kind == "bridge":
            self._bridge(place, out, None, frame)
        elif kind == "vxlan":
            self._vxlan(place, out, frame)
        else:
            self._unknown(
                place,
                "link",
                f"leaves through {out.get('ifname')} ({kind or 'device'})",
                "beyond this device the path is outside what this shell can see",
            )

    def _peer(self, place: Place, link: Record) -> tuple[Place, Record] | None:
        if link.get("link_netnsid") is None and link.get("link") is not None:
            return place, place.link(link["link"])
        nsid, index = link.get("link_netnsid"), link.get("link_index")
        if nsid is None or index is None:
            return None
        assert self._resolver is not None
        entry = self._resolver.namespace_by_nsid(place.ns, place.sock, nsid)
        if entry is None:
            return None
        other = self._place_for(entry)
        return other, other.by_index(index)

    def _place_for(self, entry: NamespaceEntry) -> Place:
        for p in self._places:
            if (p.ns.dev, p.ns.inode) == (entry.dev, entry.inode) and p.ns.fd >= 0:
                return p
        return self._open(entry)

    def _ingress(self, place: Place, link: Record, frame: _Frame) -> None:
        """A frame arrives on `link` in `place`."""
        if not link:
            self._unknown(place, "link", "the peer device is gone", "no such ifindex")
        if "UP" not in link.get("flags", []):
            self._drop(
                place,
                "link",
                f"arrives on {link.get('ifname')}",
                "link-down",
                f"{link.get('ifname')} is down (admin): the frame is lost",
                iif=link.get("ifname"),
            )
        if frame.size > int(link.get("mtu") or 65535) + _VLAN_SLACK:
            self._drop(
                place,
                "link",
                f"arrives on {link.get('ifname')}",
                "mtu",
                f"{frame.size} B > MTU {link.get('mtu')} of {link.get('ifname')} "
                "(+4 B the kernel allows): the veth drops it",
                iif=link.get("ifname"),
                mtu=link.get("mtu"),
            )
        if link.get("master"):
            bridge = place.link(link["master"])
            self._bridge(place, bridge, link, frame)
            return
        mac = (frame.mac or "").lower()
        if mac and mac not in (_ETHER_BROADCAST, str(link.get("address", "")).lower()):
            self._wrong_mac(place, link, frame)
        self._route(place, link.get("ifname"), frame)

    def _wrong_mac(self, place: Place, link: Record, frame: _Frame) -> None:
        self._drop(
            place,
            "link",
            f"arrives on {link.get('ifname')} for {frame.mac}",
            "neigh-wrong-mac",
            f"{link.get('ifname')} is {link.get('address')}, the "
            f"frame is for {frame.mac} (from {frame.mac_from}): not for this host",
            iif=link.get("ifname"),
        )

    # ---------------------------------------------------------- bridges
    def _bridge(self, place: Place, bridge: Record, in_port: Record | None, frame: _Frame) -> None:
        name = bridge.get("ifname")
        mac = (frame.mac or "").lower()
        if "UP" not in bridge.get("flags", []):
            self._drop(place, "bridge", f"{name}", "link-down", f"bridge {name} is down")
        if mac == str(bridge.get("address", "")).lower():
            self._hop(
                place,
                "bridge",
                f"{name}: {mac} is the bridge's own: up to its IP stack",
                iif=in_port.get("ifname") if in_port else None,
            )
            self._route(place, name, frame)
            return
        table = [
            e
            for e in list_fdb(place.ns, bridge=name, sock=place.sock)
            if e.get("master") == name and e.get("mac", "").lower() == mac
        ]
        entry = table[0] if table else None
        iif = in_port.get("ifname") if in_port else None
        if (
            entry is not None
            and entry.get("state") == "permanent"
            and "self" not in entry.get("flags", [])
        ):
            self._hop(
                place,
                "bridge",
                f"{name}: fdb {mac} local ({entry.get('ifname')}): up to the bridge's IP stack",
                iif=iif,
            )
            self._route(place, name, frame)
            return
        if entry is not None:
            port = place.link(entry.get("ifname"))
            if in_port is not None and port.get("ifname") == in_port.get("ifname"):
                self._hairpin(place, name, entry, frame, iif)
            what = f"{name}: fdb {mac} dev {port.get('ifname')} {entry.get('state') or 'dynamic'}"
        else:
            port = self._flood_target(place, bridge, in_port, mac)
            if port is None:
                self._no_fdb(place, name, in_port, frame)
            assert port is not None
            what = f"{name}: no fdb entry for {mac}: flooded, reaches {port.get('ifname')}"
        self._check_port(place, name, port, frame, what, iif)
        self._hop(place, "bridge", what, iif=iif, oif=port.get("ifname"), mtu=port.get("mtu"))
        self._egress(place, port, frame)

    def _check_port(
        self, place: Place, name: str, port: Record, frame: _Frame, what: str, iif: str | None
    ) -> None:
        self._check_link(place, "bridge", port, what)
        state = port.get("linkinfo", {}).get("info_slave_data", {}).get("state")
        if state not in (None, "forwarding"):
            self._drop(
                place,
                "bridge",
                what,
                "link-down",
                f"port {port.get('ifname')} of {name} is {state}",
                iif=iif,
            )
        if frame.size > int(port.get("mtu") or 65535) + _VLAN_SLACK:
            self._drop(
                place,
                "bridge",
                what,
                "mtu",
                f"{frame.size} B > MTU {port.get('mtu')} of {port.get('ifname')}: "
                "the bridge drops it",
                iif=iif,
                mtu=port.get("mtu"),
            )

    def _hairpin(
        self, place: Place, name: str, entry: Record, frame: _Frame, iif: str | None
    ) -> None:
        evidence = f"fdb {entry.get('mac')} dev {entry.get('ifname')}"
        if entry.get("dst"):
            evidence += f" dst {entry['dst']}"
        if frame.from_vtep:
            evidence += (
                f": this node places it at VTEP {entry.get('dst', '?')}, the sender's FDB sent "
                f"it to this node ({frame.from_vtep} -> here)"
            )
            reason = "wrong-vtep"
        else:
            evidence += ": the port it came in on; the bridge does not send it back"
            reason = "hairpin"
        self._drop(
            place,
            "bridge",
            f"{name}: fdb {entry.get('mac')} is behind the in-port",
            reason,
            evidence,
            iif=iif,
        )

    def _flood_target(
        self, place: Place, bridge: Record, in_port: Record | None, mac: str
    ) -> Record | None:
        for port in place.links.values():
            if port.get("master") != bridge.get("ifname") or port is in_port:
                continue
            slave = port.get("linkinfo", {}).get("info_slave_data", {})
            if slave.get("flood") is False or "UP" not in port.get("flags", []):
                continue
            kind = port.get("linkinfo", {}).get("info_kind")
            if kind == "vxlan":
                if self._vxlan_dst(place, port, mac) is not None:
                    return port
            elif kind == "veth":
                peer = self._peer(place, port)
                if peer is not None and str(peer[1].get("address", "")).lower() == mac:
                    return port
        return None

    def _no_fdb(self, place: Place, name: str, in_port: Record | None, frame: _Frame) -> None:
        iif = in_port.get("ifname") if in_port else None
        evidence = f"no FDB entry for {frame.mac} on {name} and no flood target has it"
        reason = "no-fdb"
        if frame.next_ip and frame.mac_from:
            owner = self._segment_owner(place, place.link(name), frame.next_ip)
            if owner is not None and owner[0].lower() != (frame.mac or "").lower():
                reason = "neigh-wrong-mac"
                evidence = (
                    f"{frame.next_ip} is at {owner[0]} ({owner[1]}), but the frame is for "
                    f"{frame.mac} ({frame.mac_from}); {name} has no FDB entry for it"
                )
        self._drop(
            place, "bridge", f"{name}: no fdb entry for {frame.mac}", reason, evidence, iif=iif
        )

    # ------------------------------------------------------------ vxlan
    def _vxlan_dst(self, place: Place, dev: Record, mac: str) -> Record | None:
        entries = [
            e for e in list_fdb(place.ns, dev=dev.get("ifname"), sock=place.sock) if e.get("dst")
        ]
        exact = [e for e in entries if e.get("mac", "").lower() == mac]
        default = [e for e in entries if e.get("mac") == _ZERO_MAC]
        return (exact or default or [None])[0]

    def _vxlan(self, place: Place, dev: Record, frame: _Frame) -> None:
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

    def _engine_vtep(self, place: Place, name: str | None, frame: _Frame, vtep: str) -> None:
        """With the node's engine at hand: the VTEP it places the destination at."""
        view = self._view_for(place)
        if view is None:
            return
        endpoint = view.endpoints.get(frame.next_ip or "")
        if endpoint is None or endpoint.local or not endpoint.vtep or endpoint.vtep == vtep:
            return
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
        network_id = _network_id_of(place.netns)
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
        self, under: Place, data: Record, vtep: str, frame: _Frame, overlay: Place
    ) -> None:
        port = int(data.get("port") or 4789)
        outer = Packet(data.get("local"), vtep, "udp", None, port, 0)
        outer_frame = _Frame(outer, frame.size + VXLAN_OVERHEAD)
        route, error = route_lookup(under.sock, vtep, src=outer.src, proto="udp", dport=port)
        asked = _route_get_text(outer, None)
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
                _route_text(route),
            )
        if outer.src is None and route.get("prefsrc"):
            outer = Packet(route["prefsrc"], vtep, "udp", None, port, 0)
            outer_frame = _Frame(outer, frame.size + VXLAN_OVERHEAD)
            asked = _route_get_text(outer, None)
        self._netfilter(
            under, "output", outer_frame, iif=None, oif=route.get("dev"), step="underlay"
        )
        out = under.link(route.get("dev"))
        self._check_link(under, "underlay", out, asked)
        mtu = _route_mtu(route, out)
        if outer_frame.size > mtu:
            self._drop(
                under,
                "underlay",
                f"{asked}: {_route_text(route)}",
                "mtu",
                f"{frame.size} B inner with DF + {VXLAN_OVERHEAD} B VXLAN = "
                f"{outer_frame.size} B > MTU {mtu} of {out.get('ifname')}: the vxlan "
                "device drops it (and answers ICMP frag-needed)",
                mtu=mtu,
                oif=out.get("ifname"),
            )
        src = outer.src or route.get("prefsrc")
        neighbour = self._neighbour(under, "underlay", out, route.get("gateway") or vtep, asked)
        self._hop(
            under,
            "underlay",
            f"{asked}: {_route_text(route)}; {neighbour.get('text')}",
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
        frame: _Frame,
        outer_frame: _Frame,
        overlay: Place,
    ) -> None:
        if _is_local(under, vtep):
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
        network_id = _network_id_of(overlay.netns)
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
        self, place: Place, vtep: str, src: str | None, outer: _Frame, dev: Record, remote: Place
    ) -> None:
        """The receiving node's underlay: the route to its own VTEP address and INPUT."""
        back, _ = route_lookup(place.sock, src) if src else (None, 0)
        iif = back.get("dev") if back else None
        iif_index = place.link(iif).get("ifindex") if iif else None
        route, error = route_lookup(
            place.sock, vtep, src=src, iif=iif_index, proto="udp", dport=outer.packet.dport
        )
        asked = _route_get_text(outer.packet, iif)
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

    def _entry_at(self, path: str) -> NamespaceEntry | None:
        for entry in self.entries:
            if path in entry.paths:
                return entry
        try:
            st = os.stat(path)
        except OSError:
            return None
        return next((e for e in self.entries if (e.dev, e.inode) == (st.st_dev, st.st_ino)), None)


# ------------------------------------------------------------------ text helpers
def _route_get_text(pkt: Packet, iif: str | None) -> str:
    words = ["route get", pkt.dst]
    if pkt.src:
        words += ["from", pkt.src]
    if iif:
        words += ["iif", iif]
    if pkt.proto != "icmp":
        words += ["ipproto", pkt.proto]
        if pkt.dport:
            words += ["dport", str(pkt.dport)]
    if pkt.mark:
        words += ["mark", str(pkt.mark)]
    return " ".join(words)


def _route_text(route: Record) -> str:
    words = [str(route.get("type", "unicast"))] if route.get("type") else []
    words.append(str(route.get("dst", "")))
    if route.get("gateway"):
        words += ["via", route["gateway"]]
    if route.get("dev"):
        words += ["dev", route["dev"]]
    if route.get("prefsrc"):
        words += ["src", route["prefsrc"]]
    if route.get("table") not in (None, "main"):
        words += ["table", str(route["table"])]
    return " ".join(words)


def _route_mtu(route: Record, link: Record) -> int:
    for metrics in route.get("metrics") or ():
        if isinstance(metrics, dict) and metrics.get("mtu"):
            return int(metrics["mtu"])
    return int(link.get("mtu") or 65535)


def _down_links_text(place: Place) -> str:
    down = [
        r["ifname"]
        for r in place.links.values()
        if r["ifname"] != "lo" and "UP" not in r.get("flags", [])
    ]
    return f"links down in {place.netns}: {', '.join(down)}" if down else ""


def _typed_route(place: Place, dst: str, kind: str) -> str:
    """The route of type `kind` (blackhole, ...) that covers `dst`, as evidence."""
    from .netlink.routes import list_routes

    address = ipaddress.ip_address(dst)
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    best = None
    for route in list_routes(place.ns, family=family, table=0):
        if route.get("type") != kind:
            continue
        text = route.get("dst", "")
        try:
            net = ipaddress.ip_network("0.0.0.0/0" if text == "default" else text, False)
        except ValueError:
            continue
        if address in net and (best is None or net.prefixlen > best[0].prefixlen):
            best = (net, route)
    if best is None:
        return ""
    return f"{kind} {best[1].get('dst')} table {best[1].get('table', 'main')}"


def _is_local(place: Place, address: str) -> bool:
    return any(
        a.get("local") == address for r in place.links.values() for a in r.get("addr_info", ())
    )


def _network_id_of(netns: str) -> str | None:
    """The network ID prefix of an overlay namespace named `<n>-<id[:10]>`."""
    head, sep, tail = netns.partition("-")
    if sep and head.isdigit() and len(tail) == 10:
        return tail
    return None
