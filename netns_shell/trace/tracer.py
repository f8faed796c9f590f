"""The walk of one packet from its source namespace to where it is delivered or dies."""

from __future__ import annotations

from ..namespace import NetNamespace
from .bridge import BridgeWalk
from .links import LinkWalk
from .records import Frame, Record, Stop, TraceRequest
from .routing import RoutingWalk
from .rules import Packet
from .underlay import UnderlayWalk

__all__ = ["Tracer"]


class Tracer(RoutingWalk, LinkWalk, BridgeWalk, UnderlayWalk):
    """Walks one packet through the namespaces (and nodes) it would cross.

    `entries`: the namespaces this shell can open (discovery), used to name
    places and to follow veths and vxlan sockets; `nodes`: the cluster's nodes
    (engines) to continue on when the path leaves through a tunnel.  One
    Tracer per trace.
    """

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
        frame = Frame(packet, request.size)
        try:
            self._route(place, None, frame)
        except Stop:
            pass
        finally:
            self.close_all()
        if not self.hops or self.hops[-1]["verdict"] == "forwarded":
            self._hop(place, "end", "the walk ended", verdict="unknown")
        return self.hops
