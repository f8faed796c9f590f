"""The live view and the savefile reader: decoded packets as a stream of records.

Live (`capture` without -w): every packet the kernel hands over is read
and counted (pcap_next_ex on a non-blocking handle; poll(2) while none are
ready), but only as many per second as a terminal can show are decoded
(a token bucket).  The rest are counted and reported about once
a second as a NotShown record, so nothing is hidden: shown + not shown =
captured, and the kernel's drops come with the final counts.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator

from .clock import Clock
from .decode import Decoder
from .interrupts import StopRequest
from .pcap import PCAP_ERROR, PCAP_ERROR_BREAK, Packet
from .records import Finished, NotShown, PacketSummary, Progress
from .source import TIMEOUT_MS, Source

__all__ = ["LINES_PER_SECOND", "read_packets", "watch_packets"]

#: decoded lines per second on a terminal; the struct decode needs ~6 us per
#: frame (scapy, for the rare other protocols, ~150 us), so even the pipe rate
#: leaves most of a core for reading the ring
LINES_PER_SECOND = {"terminal": 100, "pipe": 1000}
#: at most this share of the time goes to decoding, whatever the decoder costs
DECODE_SHARE = 0.25

Event = PacketSummary | NotShown | Progress | Finished
_BURST = 1024  # packets read between two looks at the clock and the stop flag
_COUNT_REACHED = 2  # not a pcap_next_ex status
_DRAIN_SECONDS = 0.5


class _RateLimit:
    """Two token buckets: at most `rate` decodes per second, and at most `share` of
    the time spent decoding, so a slow decoder (a loaded machine) cannot make the
    view fall behind the wire.  Both allow a burst of one second's worth.
    """

    def __init__(self, rate: float, share: float = DECODE_SHARE):
        self.rate = rate
        self.share = share
        self.lines = rate
        self.seconds = share
        self.stamp = time.monotonic()
        self.closed_until = 0.0  # while both buckets are empty, one clock read per packet

    def take(self) -> bool:
        now = time.monotonic()
        if now < self.closed_until:
            return False
        elapsed, self.stamp = now - self.stamp, now
        self.lines = min(self.rate, self.lines + elapsed * self.rate)
        self.seconds = min(self.share, self.seconds + elapsed * self.share)
        if self.lines >= 1 and self.seconds > 0:
            self.lines -= 1
            return True
        self.closed_until = now + max((1 - self.lines) / self.rate, -self.seconds / self.share)
        return False

    def spend(self, seconds: float) -> None:
        """Charge the time one decode took."""
        self.seconds -= seconds


class _LiveView:
    """The state of one live view: counters, limiter, clock."""

    def __init__(self, source: Source, decoder: Decoder, rate: float, duration: float | None):
        self.source = source
        self.cursor = source.handle.cursor()
        self.decoder = decoder
        self.limit = _RateLimit(rate)
        self.clock = Clock(duration)
        self.packets = 0
        self.bytes = 0
        self.skipped = 0
        self.last = (self.clock.start, 0)

    def burst(self, count: int | None) -> tuple[list[PacketSummary], int]:
        """Read up to _BURST ready packets (the hot loop: ~4 us per packet not shown).

        Returns the decoded ones and the last status: 1 (more may be ready),
        0 (none ready), PCAP_ERROR, or _COUNT_REACHED.
        """
        cursor, take, shown = self.cursor, self.limit.take, []
        advance = cursor.advance
        for _ in range(_BURST):
            status = advance()
            if status != 1:
                return shown, status
            self.packets += 1
            self.bytes += cursor.length
            if take():
                started = time.monotonic()
                shown.append(self.decoder.decode(cursor.packet()))
                self.limit.spend(time.monotonic() - started)
            else:
                self.skipped += 1
            if count is not None and self.packets >= count:
                return shown, _COUNT_REACHED
        return shown, 1

    def notice(self) -> NotShown | None:
        if not self.skipped:
            return None
        note = NotShown(time.time(), self.skipped)
        self.skipped = 0
        return note

    def progress(self) -> Progress:
        now = time.monotonic()
        stats = self.source.handle.stats()
        rate = (self.packets - self.last[1]) / max(now - self.last[0], 1e-6)
        self.last = (now, self.packets)
        return Progress(
            now - self.clock.start, self.packets, self.bytes, rate, stats.dropped if stats else 0
        )

    def periodic(self) -> Iterator[Event]:
        if self.clock.notice_due() and (note := self.notice()):
            yield note
        if self.clock.progress_due():
            yield self.progress()

    def drain(self, poller: select.poll, count: int | None, stop: StopRequest) -> Iterator[Event]:
        """After a stop: wait out one block timeout so packets already received are
        counted; give up after _DRAIN_SECONDS or a second Ctrl-C (what is left unread
        shows as received but not captured)."""
        poller.poll(TIMEOUT_MS + 50)
        deadline = time.monotonic() + _DRAIN_SECONDS
        status = 1
        while status == 1 and time.monotonic() < deadline and stop.requests < 2:
            shown, status = self.burst(count)
            yield from shown


def watch_packets(
    source: Source,
    decoder: Decoder,
    stop: StopRequest,
    *,
    count: int | None = None,
    duration: float | None = None,
    rate: float = LINES_PER_SECOND["terminal"],
) -> Iterator[Event]:
    """Read a live handle until count, duration, stop or error; yield what to show.

    Ends with NotShown (if any are pending) and one Finished; never raises
    for an interface that went away (Finished.error says it).
    """
    view = _LiveView(source, decoder, rate, duration)
    poller = select.poll()
    poller.register(source.handle.selectable_fd(), select.POLLIN)
    reason, error = "", None
    try:
        with stop.handling_signals():
            while not reason:
                shown, status = view.burst(count)
                yield from shown
                if status == _COUNT_REACHED:
                    reason = "count"
                elif status == PCAP_ERROR:
                    reason, error = "error", source.failure()
                elif status == 0:
                    poller.poll(view.clock.wait_ms())
                reason = reason or view.clock.why_stop(stop)
                yield from view.periodic()
            if reason in ("interrupted", "duration"):
                yield from view.drain(poller, count, stop)
    except KeyboardInterrupt:  # off the main thread, where no handler was installed
        reason = "interrupted"
    if note := view.notice():
        yield note
    yield Finished(view.packets, source.handle.stats(), reason, error)


def read_packets(
    source: Source, decoder: Decoder, stop: StopRequest, *, count: int | None = None
) -> Iterator[PacketSummary | Finished]:
    """Decode every packet of a savefile (no rate limit), then one Finished."""
    handle = source.handle
    packets, reason, error = 0, "", None
    try:
        with stop.handling_signals():
            while not reason:
                item = handle.next_packet()
                if isinstance(item, Packet):
                    packets += 1
                    yield decoder.decode(item)
                    if count is not None and packets >= count:
                        reason = "count"
                elif item == PCAP_ERROR_BREAK:
                    reason = "end of file"
                elif item == PCAP_ERROR:
                    reason, error = "error", source.failure()
                if stop.requested:
                    reason = reason or "interrupted"
    except KeyboardInterrupt:
        reason = "interrupted"
    yield Finished(packets, None, reason, error)
