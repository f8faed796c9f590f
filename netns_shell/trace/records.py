"""The records a trace is made of: the request, the frame on its way, and one record per hop.

A hop record (`HopLog.hop`) holds the node, the namespace and its
container/network name, the step (`route`, `forward`, `link`, `bridge`,
`vxlan`, `underlay`, `underlay-in`, `deliver`), what matched and the
verdict: `forwarded`, `delivered`, `dropped` (with one of `REASONS` and the
evidence) or `unknown`.  The last hop carries the overall verdict.  Also the
text helpers that write a hop's `match` the way iproute2 would say it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .rules import Packet


class Place(Protocol):
    """Where a hop happens, as the hop records name it (places.Place is one)."""

    node: str
    netns: str
    name: str
    path: str


__all__ = [
    "ETHER_BROADCAST",
    "MAX_HOPS",
    "REASONS",
    "VLAN_SLACK",
    "VXLAN_OVERHEAD",
    "ZERO_MAC",
    "Frame",
    "HopLog",
    "Record",
    "Stop",
    "TraceRequest",
    "route_get_text",
    "route_mtu",
    "route_text",
]

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
ETHER_BROADCAST = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
MAX_HOPS = 40
#: is_skb_forwardable() lets a frame through a veth or bridge port up to MTU + VLAN_HLEN
VLAN_SLACK = 4


@dataclass(frozen=True)
class TraceRequest:
    dst: str
    proto: str = "icmp"
    port: int | None = None
    size: int = 84
    mark: int = 0
    src: str | None = None


class Stop(Exception):  # noqa: N818 - control flow, not an error
    """The walk ends here (the last hop holds the verdict)."""


@dataclass
class Frame:
    """What travels: the IP packet's fields and, on a link, the destination MAC."""

    packet: Packet
    size: int
    mac: str | None = None
    mac_from: str = ""  # where the MAC came from (a neighbour entry), for the evidence
    next_ip: str | None = None
    vni: int | None = None  # set while inside a tunnel's overlay
    from_vtep: str | None = None


class HopLog:
    """The hops of one walk, in order; `_drop` and `_unknown` end the walk (raise Stop)."""

    def __init__(self) -> None:
        self.hops: list[Record] = []

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
        if len(self.hops) >= MAX_HOPS and verdict == "forwarded":
            self._drop(place, step, "the path loops", "loop", f"more than {MAX_HOPS} hops")
        return hop

    def _drop(
        self, place: Place, step: str, match: str, reason: str, evidence: str, **extra: Any
    ) -> None:
        self._hop(place, step, match, verdict="dropped", reason=reason, evidence=evidence, **extra)
        raise Stop

    def _unknown(self, place: Place, step: str, match: str, evidence: str, **extra: Any) -> None:
        reason = extra.pop("reason", "")
        self._hop(place, step, match, verdict="unknown", reason=reason, evidence=evidence, **extra)
        raise Stop


def route_get_text(pkt: Packet, iif: str | None) -> str:
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


def route_text(route: Record) -> str:
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


def route_mtu(route: Record, link: Record) -> int:
    for metrics in route.get("metrics") or ():
        if isinstance(metrics, dict) and metrics.get("mtu"):
            return int(metrics["mtu"])
    return int(link.get("mtu") or 65535)
