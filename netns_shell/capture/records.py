"""The plain records a capture yields: packets shown, packets not shown, progress, the end.

Capture functions never print; they yield these and the command turns them
into lines, JSON records and the status line.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pcap import Stats

__all__ = ["Finished", "NotShown", "PacketSummary", "Progress"]


@dataclass(frozen=True)
class PacketSummary:
    """One decoded packet."""

    time: float
    ifindex: int | None
    ifname: str | None
    direction: str | None  # 'In', 'Out', 'B', 'M', 'P' on cooked (any) captures
    length: int  # on the wire
    caplen: int
    summary: str

    def record(self) -> dict[str, object]:
        return {
            "time": round(self.time, 6),
            "ifindex": self.ifindex,
            "ifname": self.ifname,
            "direction": self.direction,
            "length": self.length,
            "caplen": self.caplen,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class NotShown:
    """Packets captured and counted but not decoded, to keep up with the wire."""

    time: float
    count: int
    reason: str = "rate limit"

    def record(self) -> dict[str, object]:
        return {"time": round(self.time, 6), "not_shown": self.count, "reason": self.reason}


@dataclass(frozen=True)
class Progress:
    """A snapshot for the status line (about twice a second)."""

    elapsed: float
    packets: int
    bytes: int  # wire bytes of live-view packets, bytes written for -w
    rate: float  # packets per second over the last interval
    dropped: int


@dataclass(frozen=True)
class Finished:
    """How a capture ended, with the counts tcpdump prints."""

    captured: int  # packets handed to us (written to the file, or shown + not shown)
    stats: Stats | None  # None for savefiles
    reason: str  # 'count', 'duration', 'interrupted', 'end of file', 'error', 'output closed'
    error: str | None = None  # why the capture could not go on (interface gone, disk full)

    def lines(self) -> list[str]:
        """tcpdump's closing lines (live captures; a savefile has no kernel counts)."""
        if self.stats is None:
            return [f"{self.captured} packets"]
        return [
            f"{self.captured} packets captured",
            f"{self.stats.received} packets received by filter",
            f"{self.stats.dropped} packets dropped by kernel",
        ]
