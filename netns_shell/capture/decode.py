"""One-line packet summaries in tcpdump's words.

The common protocols (ARP, IPv4, IPv6, ICMP, ICMPv6, UDP, DNS, TCP, VXLAN)
are parsed with struct by `dissect`, which prints what `tcpdump -n -S`
prints; any other frame is summarized by scapy, imported here only, and
only when such a frame comes.  scapy decodes; it never captures: no scapy
socket is opened and its global interface cache (the root namespace's,
architecture.md fact 6) is never consulted.  On cooked captures (`-i any`,
LINUX_SLL / LINUX_SLL2) the interface and the direction come from the
cooked header, and the summary starts at the network layer, as tcpdump
prints it.
"""

from __future__ import annotations

import importlib
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

from ..scapy_loader import import_scapy
from .dissect import describe
from .pcap import DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, Packet
from .records import PacketSummary

__all__ = ["Decoder", "format_time"]

#: Linux packet types (sll_pkttype), with tcpdump's words for them
_DIRECTIONS = {0: "In", 1: "B", 2: "M", 3: "P", 4: "Out"}
_SLL2 = struct.Struct("!HHIHBB")  # protocol, reserved, ifindex, hatype, pkttype, halen
_SLL_PKTTYPE = struct.Struct("!H")
_U16 = struct.Struct("!H")
#: where the ethertype sits and where the network layer starts, per link type
_NETWORK = {DLT_EN10MB: (12, 14), DLT_LINUX_SLL: (14, 16), DLT_LINUX_SLL2: (0, 20)}
#: the layers a namespace troubleshooter meets (VXLAN for overlays); importing
#: all of scapy.layers costs ~0.7 s more
_LAYERS = ("l2", "inet", "inet6", "dns", "vxlan", "dhcp", "dhcp6", "ntp", "http")

_loaded = False


def _load_scapy() -> tuple[Any, Any]:
    """scapy's link-type table and its Raw class (the first call takes ~0.4 s)."""
    global _loaded
    logging.getLogger("scapy").setLevel(logging.ERROR)  # no warnings on the terminal
    import_scapy()
    from scapy.config import conf
    from scapy.packet import Raw

    if not _loaded:
        for name in _LAYERS:
            try:
                importlib.import_module(f"scapy.layers.{name}")
            except ImportError:  # optional layers differ between scapy versions
                pass
        from scapy.layers.inet import TCP, UDP

        # numeric ports, like tcpdump -n: '5555', not a services(5) name such as 'rplay'
        conf.noenum.add(TCP.sport, TCP.dport, UDP.sport, UDP.dport)
        _loaded = True
    return conf.l2types, Raw


def format_time(epoch: float) -> str:
    """tcpdump's default time stamp: local time of day with microseconds."""
    # whole microseconds first: a float's fraction times 1e6 can fall 1 us short
    seconds, micro = divmod(round(epoch * 1_000_000), 1_000_000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{micro:06d}"


class Decoder:
    """Turns captured frames of one link type into PacketSummary records."""

    def __init__(
        self,
        linktype: int,
        *,
        ifname: str | None = None,
        names: Callable[[int], str | None] | None = None,
    ):
        self.linktype = linktype
        self.ifname = ifname  # the capture interface (non-cooked link types)
        self.names = names or (lambda index: None)
        self.network = _NETWORK.get(linktype)
        self.layer: Any = None  # scapy's class for the link type, loaded on first need
        #: libpcap counts the cooked pseudo-header in the length; the wire did not carry it
        self.pseudo_header = {DLT_LINUX_SLL: 16, DLT_LINUX_SLL2: 20}.get(linktype, 0)

    def decode(self, packet: Packet) -> PacketSummary:
        """Summarize one packet; a frame scapy cannot dissect still gets a line."""
        ifindex, direction = self._cooked_header(packet.data)
        ifname = self.names(ifindex) if ifindex is not None else self.ifname
        return PacketSummary(
            time=packet.time,
            ifindex=ifindex,
            ifname=ifname or (f"if{ifindex}" if ifindex is not None else None),
            direction=direction,
            length=packet.length - self.pseudo_header,
            caplen=len(packet.data),
            summary=self._summary(packet.data),
        )

    def _cooked_header(self, data: bytes) -> tuple[int | None, str | None]:
        if self.linktype == DLT_LINUX_SLL2 and len(data) >= _SLL2.size:
            _, _, ifindex, _, pkttype, _ = _SLL2.unpack_from(data)
            return ifindex, _DIRECTIONS.get(pkttype, str(pkttype))
        if self.linktype == DLT_LINUX_SLL and len(data) >= 2:
            pkttype = _SLL_PKTTYPE.unpack_from(data)[0]
            return None, _DIRECTIONS.get(pkttype, str(pkttype))
        return None, None

    def _summary(self, data: bytes) -> str:
        if self.network is not None and len(data) >= self.network[1]:
            at, start = self.network
            line = describe(data[start:], _U16.unpack_from(data, at)[0])
            if line is not None:
                return line
        return self._scapy_summary(data)

    def _scapy_summary(self, data: bytes) -> str:
        if self.layer is None:
            l2types, raw = _load_scapy()
            self.layer = l2types.num2layer.get(self.linktype, raw)
        try:
            frame = self.layer(data)
            if self.pseudo_header and frame.payload:
                frame = frame.payload  # the interface and direction are shown already
            return frame.summary()
        except Exception as exc:  # a malformed frame must not end the capture
            return f"undecodable frame ({len(data)} bytes): {type(exc).__name__}"
