"""`trace`: where a packet goes and where it dies, from the kernel's own state (no packet sent).

The walk starts in the source namespace and asks each namespace on the way
what the kernel would do with the packet, one decision per hop:

* routing: RTM_GETROUTE with the packet's fields (`ip route get DST from SRC
  [iif DEV] ipproto P dport N mark M`), so policy rules, tables, forwarding,
  rp_filter and local delivery are the kernel's own answers; then the
  neighbour of the next hop, the out device's state and MTU, and the
  netfilter chains of that point (netns_shell.trace.rules);
* a veth: on to its peer in the peer's namespace (peers.PeerResolver);
* a bridge: the FDB lookup of the destination MAC (forward, local, flood);
* a vxlan port: its FDB `dst` (the VTEP), then the underlay route, source,
  MTU and OUTPUT chain in the namespace that holds the vxlan UDP socket
  (IFLA_LINK_NETNSID of the vxlan device, architecture.md fact 7);
* the receiving node, found by its VTEP address among the nodes' engines
  (engine_view, as `check --cluster` reaches them): its INPUT chain for UDP
  4789, the local route of the VTEP, its overlay namespace's vxlan device of
  the same VNI, and the same walk down to the destination's namespace.

Each hop is a record (see records.HopLog); the last one carries the overall verdict:
`delivered`, `dropped` (with a stable `reason`) or `unknown` (the path
leaves what this shell can see, or a node does not answer).  A drop judged on
what the engines or the destination say, while the kernel still sends the
packet on (a neighbour to a MAC that is not the destination's, an FDB entry to
another VTEP than the engine's), also gets `beyond`: the hops the kernel
really takes it on, from a second walk without those judgements.

Modules: records (the request and the hop records), places (the namespaces
on the path and their names), routing, links, bridge, underlay (one step of
the walk each), tracer (the walk), rules (netfilter), probe (`--probe`).
"""

from .places import Place
from .records import REASONS, VXLAN_OVERHEAD, TraceRequest
from .tracer import Tracer

__all__ = ["REASONS", "VXLAN_OVERHEAD", "Place", "TraceRequest", "Tracer"]
