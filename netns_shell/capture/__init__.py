"""Packet capture inside a namespace: libpcap for the wire, scapy for the summaries.

find -> enter -> **query** -> render: `source` opens a handle inside the
namespace, `writer` dumps to pcap files in C, `stream` yields decoded
records for the live view and savefiles, `decode` wraps scapy.  Nothing
here prints; the `capture` command renders the records.
"""

from __future__ import annotations

from .dumper import Dumper, open_dumper, open_dumper_fd
from .interrupts import StopRequest
from .pcap import BadFilterError, Handle, Stats, library_version
from .records import Finished, NotShown, PacketSummary, Progress
from .source import ANY, Interfaces, Source, list_interfaces, open_file, open_live
from .stream import LINES_PER_SECOND, read_packets, watch_packets
from .writer import trim_partial_record, write_packets

__all__ = [
    "ANY",
    "LINES_PER_SECOND",
    "BadFilterError",
    "Dumper",
    "Finished",
    "Handle",
    "Interfaces",
    "NotShown",
    "PacketSummary",
    "Progress",
    "Source",
    "Stats",
    "StopRequest",
    "library_version",
    "list_interfaces",
    "open_dumper",
    "open_dumper_fd",
    "open_file",
    "open_live",
    "read_packets",
    "trim_partial_record",
    "watch_packets",
    "write_packets",
]
