"""`capture`: see what is on the wire of the current namespace (tcpdump-like).

Only the argument spec lives here; the implementation (libpcap through
ctypes, scapy for summaries) is imported when a capture runs, so other
commands start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..render import Result
from .registry import Param, Registry, positive_int, positive_seconds

if TYPE_CHECKING:
    from .context import Context

__all__ = ["register"]


def capture(session: Context, args: dict[str, Any]) -> Result:
    from .capture_run import capture as run_capture

    return run_capture(session, args)


def register(registry: Registry) -> None:
    registry.command(
        "capture",
        "capture packets in the namespace (tcpdump-like; BPF filter; -w writes pcap)",
        Param(
            "iface",
            ("-i", "--interface"),
            metavar="IFACE",
            complete="interface",
            help="interface, or 'any' (default: the only one besides lo, else any)",
        ),
        Param(
            "count",
            ("-c", "--count"),
            metavar="N",
            convert=positive_int,
            help="stop after N packets",
        ),
        Param(
            "duration",
            ("--duration",),
            metavar="S",
            convert=positive_seconds,
            help="stop after S seconds",
        ),
        Param(
            "write",
            ("-w", "--write"),
            metavar="FILE",
            complete="file",
            help="write a pcap file ('-': standard output, when it is not a terminal)",
        ),
        Param(
            "read",
            ("-r", "--read"),
            metavar="FILE",
            complete="file",
            help="decode a pcap or pcapng file instead of capturing",
        ),
        Param(
            "numeric",
            ("-n",),
            help="accepted for tcpdump's fingers: addresses are never resolved to names",
        ),
        Param(
            "no_promisc",
            ("-p", "--no-promisc"),
            help="leave promiscuous mode off (like tcpdump -p; always so with --read-only)",
        ),
        Param(
            "filter",
            metavar="FILTER",
            rest=True,
            help="a filter in tcpdump (BPF) syntax, e.g. udp port 53, attached in the kernel",
        ),
        details="The packet socket is opened inside the current namespace and the filter is "
        "compiled by libpcap and attached in the kernel. With -w, packets go to the file "
        "through libpcap's own dump loop (no Python per packet, 64 MiB kernel buffer). "
        "Without -w, each packet gets a one-line summary in tcpdump -n -S words (ICMP id/seq, "
        "DNS names, TCP flags and absolute seq/ack, ARP, IPv6, VXLAN with its inner frame), "
        "ending with the frame length; lines are rate-limited "
        "and the packets not shown are counted. Ctrl-C, SIGTERM, -c or --duration end the "
        "capture; the counts (captured, received by filter, dropped by kernel) go to stderr. "
        "-w - writes the pcap to standard output (netns-shell NS -c 'capture -w -' | tshark -r -).",
        examples=(
            "capture",
            "capture -i eth0 -c 20 icmp or arp",
            "capture -ni eth0 -c5 udp port 53",
            "capture -w /tmp/overlay.pcap --duration 30 udp port 4789",
            "capture -i any -p not port 22",
            "capture -r /tmp/overlay.pcap -c 10 udp port 4789",
        ),
    )(capture)
