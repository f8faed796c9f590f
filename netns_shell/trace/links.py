"""Links on the path: a frame leaving by a device, arriving on one, and link state.

A veth leads to its peer in the peer's namespace (IFLA_LINK_NETNSID, via
peers.PeerResolver); a bridge or vxlan device hands the frame to
netns_shell.trace.bridge / .underlay; anything else leaves what this shell
can see.  On arrival: admin state, the MTU the kernel allows on a veth or
bridge port (MTU + VLAN_HLEN) and whether the frame is for this device's MAC.
"""

from __future__ import annotations

from .places import Place, Places
from .records import ETHER_BROADCAST, VLAN_SLACK, Frame, Record

__all__ = ["LinkWalk"]


class LinkWalk(Places):
    """Frames across devices: veth pairs, arrival checks, link state."""

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

    def _egress(self, place: Place, out: Record, frame: Frame) -> None:
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

    def _ingress(self, place: Place, link: Record, frame: Frame) -> None:
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
        if frame.size > int(link.get("mtu") or 65535) + VLAN_SLACK:
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
        if mac and mac not in (ETHER_BROADCAST, str(link.get("address", "")).lower()):
            self._wrong_mac(place, link, frame)
        self._route(place, link.get("ifname"), frame)

    def _wrong_mac(self, place: Place, link: Record, frame: Frame) -> None:
        self._drop(
            place,
            "link",
            f"arrives on {link.get('ifname')} for {frame.mac}",
            "neigh-wrong-mac",
            f"{link.get('ifname')} is {link.get('address')}, the "
            f"frame is for {frame.mac} (from {frame.mac_from}): not for this host",
            iif=link.get("ifname"),
        )
