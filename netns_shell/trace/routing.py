"""The IP layer of one namespace on the path: route, netfilter, out link, neighbour.

The route is the kernel's answer to RTM_GETROUTE with the packet's fields
(`ip route get DST from SRC [iif DEV] ipproto P dport N mark M`), so policy
rules, tables, forwarding, rp_filter and local delivery are the kernel's
own; its errors are turned into a reason (blackhole, unreachable, prohibit,
forwarding-disabled, rp-filter, no-route).  Then the netfilter chains of
that point (netns_shell.trace.rules), the out device's state and MTU, and
the neighbour of the next hop -- or, when there is none yet, who on that
segment would answer ARP for it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterator

from ..netlink.neighbours import list_neighbours
from ..netlink.routes import route_lookup
from .places import Place, Places
from .records import Frame, Record, Stop, route_get_text, route_mtu, route_text
from .rules import Packet

__all__ = ["RoutingWalk"]


class RoutingWalk(Places):
    """Routing, netfilter and neighbour decisions inside one namespace."""

    def _route(self, place: Place, iif: str | None, frame: Frame) -> None:
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
        asked = route_get_text(pkt, iif)
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
            raise Stop
        if kind != "unicast":
            reason = kind if kind in ("blackhole", "unreachable", "prohibit") else "no-route"
            self._drop(place, step, f"{asked}: {kind}", reason, route_text(route), iif=iif)
        if iif is not None:
            self._netfilter(place, "forward", frame, iif=iif, oif=route.get("dev"), step=step)
        else:
            self._netfilter(place, "output", frame, iif=None, oif=route.get("dev"), step=step)
        out = place.link(route.get("dev"))
        self._check_link(place, step, out, asked)
        mtu = route_mtu(route, out)
        if frame.size > mtu:
            self._drop(
                place,
                step,
                f"{asked}: {route_text(route)}",
                "mtu",
                f"{frame.size} B with DF > MTU {mtu} of {out.get('ifname')}",
                mtu=mtu,
                oif=out.get("ifname"),
            )
        next_ip = route.get("gateway") or pkt.dst
        frame.next_ip = next_ip
        neighbour = self._neighbour(place, step, out, next_ip, asked)
        self._judge_neighbour(place, step, out, next_ip, neighbour, asked, iif)
        frame.mac = neighbour.get("lladdr")
        frame.mac_from = (
            f"neighbour {next_ip} lladdr {frame.mac} dev {out.get('ifname')} in {place.netns}"
        )
        self._hop(
            place,
            step,
            f"{asked}: {route_text(route)}; {neighbour.get('text')}",
            iif=iif,
            oif=out.get("ifname"),
            mtu=mtu,
            lladdr=frame.mac,
            src=frame.packet.src,
        )
        self._egress(place, out, frame)

    def _route_error(
        self, place: Place, iif: str | None, frame: Frame, error: int, asked: str
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
        evidence = down_links_text(place) if reason == "no-route" else ""
        if reason in ("blackhole", "unreachable", "prohibit"):
            evidence = typed_route(place, frame.packet.dst, reason) or evidence
        self._drop(
            place, step, f"{asked}: {text}", reason, evidence or f"route get: {text}", iif=iif
        )

    def _rp_filter(self, place: Place, iif: str, frame: Frame, asked: str, text: str) -> None:
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
        self, place: Place, hook: str, frame: Frame, *, iif: str | None, oif: str | None, step: str
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
            culprit = (
                f"the neighbour entry {ip} lladdr {entry.get('lladdr')} dev {dev} in {place.netns}"
            )
            return {"lladdr": entry.get("lladdr"), "text": text, "culprit": culprit}
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
            "culprit": owner[2],
            "resolved": True,  # by what answers ARP on the segment, not an entry here
        }

    def _segment(self, place: Place, out: Record) -> Iterator[tuple[Place, Record, bool]]:
        """(place, link, arrived) of every device on the layer-2 segment behind `out`
        (`arrived`: a frame sent by `out` arrives on it); sets `_opaque` when the segment
        goes on beyond what this shell sees."""
        seen: set[tuple[int, int, str]] = set()
        self._opaque = False
        todo: list[tuple[Place, Record, bool]] = [(place, out, False)]
        while todo and len(seen) < 64:
            here, link, arrived = todo.pop()
            key = (*here.ns.key, str(link.get("ifname")))
            if key in seen:
                continue
            seen.add(key)
            yield here, link, arrived
            kind = link.get("linkinfo", {}).get("info_kind")
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

    def _segment_owner(self, place: Place, out: Record, ip: str) -> tuple[str, str, str] | None:
        """(MAC, where, the entry that says so) of what answers ARP for `ip` on the segment
        behind `out`: the interface holding it, or a vxlan device's proxy ARP."""
        for here, link, arrived in self._segment(place, out):
            if arrived and _holds(link, ip):
                where = f"{link.get('ifname')} in {here.netns}"
                return link.get("address", ""), where, f"the address {ip} of {where}"
            info = link.get("linkinfo", {})
            if info.get("info_kind") == "vxlan" and info.get("info_data", {}).get("proxy"):
                # the vxlan device answers ARP itself from its neighbour table (Docker's)
                entries = list_neighbours(here.ns, dev=link["ifname"], sock=here.sock)
                entry = next((e for e in entries if e.get("dst") == ip), None)
                if entry is not None and entry.get("lladdr"):
                    where = f"{link['ifname']} in {here.netns}"
                    return (
                        entry["lladdr"],
                        f"proxy ARP of {where}",
                        (
                            f"the neighbour entry {ip} lladdr {entry['lladdr']} dev {where} "
                            f"(its proxy ARP answers for {ip} with it)"
                        ),
                    )
        return None

    def _expected_mac(
        self, place: Place, out: Record, ip: str, held: str
    ) -> tuple[str, str] | None:
        """(MAC, who says so) of `ip` on the segment behind `out`: the MAC an engine of a
        namespace on that segment gives the endpoint, else the MAC of the one interface
        that holds the address; None when neither is known (or several interfaces hold it).

        An engine gives a remote endpoint no MAC of its own (engine_view derives it from the
        address): when a vxlan FDB on the segment sends `held` to that endpoint's VTEP, the
        control plane programmed `held` for it and nothing is said against it."""
        places: list[Place] = []
        holders: list[tuple[str, str]] = []
        tunnels: list[tuple[Place, Record]] = []
        for here, link, arrived in self._segment(place, out):
            if here not in places:
                places.append(here)
            if link.get("linkinfo", {}).get("info_kind") == "vxlan":
                tunnels.append((here, link))
            if arrived and _holds(link, ip) and link.get("address"):
                holders.append(
                    (str(link["address"]).lower(), f"{link.get('ifname')} in {here.netns}")
                )
        for here in places:
            view = self._view_for(here)
            endpoint = view.endpoints.get(ip) if view is not None else None
            if endpoint is not None and endpoint.mac:
                if not endpoint.local and any(
                    (entry := self._vxlan_dst(there, dev, held)) is not None
                    and entry.get("mac", "").lower() == held
                    and entry.get("dst") == endpoint.vtep
                    for there, dev in tunnels
                ):
                    return None
                return endpoint.mac.lower(), (
                    f"the engine of {view.node} gives {ip} ({endpoint.name}) MAC {endpoint.mac}"
                )
        if len({mac for mac, _ in holders}) == 1:
            mac, where = holders[0]
            return mac, f"{ip} is on {where}, MAC {mac}"
        return None

    def _judge_neighbour(
        self,
        place: Place,
        step: str,
        out: Record,
        ip: str,
        neighbour: Record,
        asked: str,
        iif: str | None,
    ) -> None:
        """The next hop resolved to a MAC that is not the one of `ip`: the frame goes to
        nobody that holds the address, so the packet is lost from this hop on (the kernel
        still sends it: the walk without judgements, `Tracer.trace`, follows it further)."""
        held = str(neighbour.get("lladdr") or "").lower()
        if not self.judge or not held:
            return
        expected = self._expected_mac(place, out, ip, held)
        if expected is None or expected[0] == held:
            return
        culprit = str(neighbour.get("culprit"))
        if not neighbour.get("resolved"):
            # an entry of its own: was it learnt from a wrong answer on the segment?
            owner = self._segment_owner(place, out, ip)
            if owner is not None and owner[0].lower() == held and owner[2] != culprit:
                culprit += f" (ARP answered so: {owner[2]})"
        self.judged = True
        self._drop(
            place,
            step,
            f"{asked}; {neighbour.get('text')}",
            "neigh-wrong-mac",
            f"{culprit} sends it to {held}, but {expected[1]}",
            iif=iif,
            oif=out.get("ifname"),
            lladdr=held,
        )


def _holds(link: Record, ip: str) -> bool:
    return any(a.get("local") == ip for a in link.get("addr_info", ()))


def down_links_text(place: Place) -> str:
    down = [
        r["ifname"]
        for r in place.links.values()
        if r["ifname"] != "lo" and "UP" not in r.get("flags", [])
    ]
    return f"links down in {place.netns}: {', '.join(down)}" if down else ""


def typed_route(place: Place, dst: str, kind: str) -> str:
    """The route of type `kind` (blackhole, ...) that covers `dst`, as evidence."""
    from ..netlink.routes import list_routes

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
