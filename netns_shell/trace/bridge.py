"""A bridge on the path: the FDB lookup of the destination MAC, as the kernel does it.

Forward to the port the FDB names, up to the bridge's own IP stack for its
own or a local entry, or flood -- and then, to say where the frame really
goes, the port whose far end has the MAC (a veth peer, or a vxlan device
whose FDB knows it).  Drops: no FDB entry and no flood target (or the IP
lives at another MAC on that segment: a wrong neighbour), hairpin (on a
receiving node: the sender's FDB sent it to the wrong VTEP), port down or
not forwarding, MTU.
"""

from __future__ import annotations

from ..netlink.neighbours import list_fdb
from .places import Place, Places
from .records import VLAN_SLACK, Frame, Record

__all__ = ["BridgeWalk"]


class BridgeWalk(Places):
    """Bridge FDB lookups and port checks."""

    def _bridge(self, place: Place, bridge: Record, in_port: Record | None, frame: Frame) -> None:
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
        self, place: Place, name: str, port: Record, frame: Frame, what: str, iif: str | None
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
        if frame.size > int(port.get("mtu") or 65535) + VLAN_SLACK:
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
        self, place: Place, name: str, entry: Record, frame: Frame, iif: str | None
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

    def _down_owner(
        self, place: Place, bridge: Record, in_port: Record | None, mac: str
    ) -> Record | None:
        """A port that is down and whose far end has `mac` (the kernel flushed its FDB entry
        when the port went down, so the FDB no longer names it)."""
        for port in place.links.values():
            if port.get("master") != bridge.get("ifname") or port is in_port:
                continue
            if "UP" in port.get("flags", []) and "LOWER_UP" in port.get("flags", []):
                continue
            if port.get("linkinfo", {}).get("info_kind") == "veth":
                peer = self._peer(place, port)
                if peer is not None and str(peer[1].get("address", "")).lower() == mac:
                    return port
        return None

    def _no_fdb(self, place: Place, name: str, in_port: Record | None, frame: Frame) -> None:
        iif = in_port.get("ifname") if in_port else None
        down = self._down_owner(place, place.link(name), in_port, (frame.mac or "").lower())
        if down is not None:
            self._drop(
                place,
                "bridge",
                f"{name}: no fdb entry for {frame.mac}: its port {down.get('ifname')} is down",
                "link-down",
                f"{down.get('ifname')} (the port to {frame.mac}) is "
                f"{'down (admin)' if 'UP' not in down.get('flags', []) else 'without carrier'}"
                f", operstate {down.get('operstate')}: the bridge does not flood to it",
                iif=iif,
                oif=down.get("ifname"),
            )
        evidence = f"no FDB entry for {frame.mac} on {name} and no flood target has it"
        reason = "no-fdb"
        sent_back = self._sent_here_by_mistake(place, in_port, frame)
        if sent_back:
            reason, evidence = "wrong-vtep", f"{evidence}; {sent_back}"
        elif frame.next_ip and frame.mac_from:
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

    def _sent_here_by_mistake(self, place: Place, in_port: Record | None, frame: Frame) -> str:
        """On a receiving node: the frame came in by a vxlan port whose own FDB places the MAC
        at another VTEP (the sender's FDB sent it to the wrong node); "" otherwise."""
        if in_port is None or not frame.from_vtep:
            return ""
        if in_port.get("linkinfo", {}).get("info_kind") != "vxlan":
            return ""
        mac = (frame.mac or "").lower()
        entry = self._vxlan_dst(place, in_port, mac)
        if entry is None or entry.get("mac", "").lower() != mac:
            return ""
        return (
            f"this node's {in_port.get('ifname')} places {mac} at VTEP {entry.get('dst')}: "
            f"the sender ({frame.from_vtep}) sent it to the wrong node"
        )
