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
        """The hops, the last one with the overall verdict; `source` is not closed.

        When the walk drops the packet on a judgement (the kernel still sends it on: a
        neighbour to a MAC that is not the destination's, an FDB entry to another VTEP
        than the engine's), the last hop also gets `beyond`: the hops the kernel really
        takes it on, from a second walk that follows the kernel only, up to where it dies
        there (on the wrong node, or on a segment where nobody has that MAC).
        """
        hops = self._walk(source, request)
        if self.judged and hops[-1]["verdict"] == "dropped":
            kernel = Tracer(self.entries, self.nodes, judge=False)._walk(source, request)
            turn = len(hops) - 1
            if len(kernel) > len(hops) and kernel[turn]["verdict"] == "forwarded":
                if kernel[-1]["verdict"] == "delivered":
                    # the kernel's own path reaches the destination: the judgement is wrong
                    # (an engine's view gone stale), the kernel is right; keep what it said
                    kernel[turn]["note"] = f"not {hops[-1]['reason']}: {hops[-1]['evidence']}"
                    return kernel
                hops[-1]["beyond"] = kernel[len(hops) :]
        return hops

    def _walk(self, source: NetNamespace, request: TraceRequest) -> list[Record]:
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
