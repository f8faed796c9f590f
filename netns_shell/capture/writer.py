"""Capture to a pcap file (`capture -w`) without running Python per packet.

The handle is non-blocking: the loop waits for the packet socket with
poll(2) (at most ~100 ms, so a stop request is seen quickly), then
`pcap_dispatch` hands every ready packet to libpcap's own `pcap_dump`, in C
with the GIL released.  Python runs once per batch (a TPACKET_V3 block of
thousands of packets at line rate), which also gives the exact number of
packets written: pcap_breakloop would discard the count of the batch it
interrupts, and is not needed because nothing ever blocks.

A write error (disk full, closed pipe) ends the capture; a regular file is
then cut after its last whole record, so it stays a valid pcap.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import time
from collections.abc import Iterator

from .clock import Clock
from .dumper import Dumper, dispatch_to
from .interrupts import StopRequest
from .pcap import PCAP_ERROR
from .records import Finished, Progress
from .source import TIMEOUT_MS, Source

__all__ = ["trim_partial_record", "write_packets"]

_OFFLINE_BATCH = 10000  # packets per pcap_dispatch when filtering a savefile
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}


def write_packets(
    source: Source,
    dumper: Dumper,
    stop: StopRequest,
    *,
    count: int | None = None,
    duration: float | None = None,
    live: bool = True,
) -> Iterator[Progress | Finished]:
    """Write packets from `source` to `dumper` until count, duration, stop, EOF or error.

    Yields a Progress about twice a second and one Finished at the end; the
    dumper is flushed but not closed (the caller owns it).  Never raises for
    an interface that went away or a write error: Finished.error says it.
    """
    handle = source.handle
    clock = Clock(duration)
    poller = select.poll() if live else None
    if poller is not None:
        poller.register(handle.selectable_fd(), select.POLLIN)
    captured, reason, error = 0, "", None
    last = (clock.start, 0)
    try:
        with stop.handling_signals():
            while not reason:
                captured, reason, error = _one_batch(source, dumper, captured, count, live)
                if reason:
                    break
                reason = clock.why_stop(stop)
                if not reason and clock.flush_due():
                    reason, error = _write_status(dumper, dumper.flush())
                if not reason and clock.progress_due():
                    yield _progress(source, dumper, clock, captured, last)
                    last = (time.monotonic(), captured)
                if not reason and poller is not None:
                    poller.poll(clock.wait_ms())
    except KeyboardInterrupt:  # off the main thread, where no handler was installed
        reason = "interrupted"
    if live and reason in ("interrupted", "duration"):
        captured = _drain(source, dumper, captured, count, poller)
    flush_reason, flush_error = _write_status(dumper, dumper.flush())
    if flush_reason and not error:
        reason, error = flush_reason, flush_error
    yield Finished(captured, handle.stats() if live else None, reason, error)


def _one_batch(
    source: Source, dumper: Dumper, captured: int, count: int | None, live: bool
) -> tuple[int, str, str | None]:
    """One pcap_dispatch: (captured so far, stop reason or '', error message)."""
    want = -1 if count is None else count - captured
    if not live and (want < 0 or want > _OFFLINE_BATCH):
        want = _OFFLINE_BATCH
    n = dispatch_to(source.handle, dumper, want)
    if n == PCAP_ERROR:
        return captured, "error", source.failure()
    captured += max(n, 0)
    if count is not None and captured >= count:
        return captured, "count", None
    if n == 0 and not live:
        return captured, "end of file", None
    if dumper.failed():
        return (captured, *_write_status(dumper, dumper.flush()))
    return captured, "", None


def _write_status(dumper: Dumper, err: int) -> tuple[str, str | None]:
    """Map a write errno to (reason, message); a reader that went away is no error."""
    if not err:
        return "", None
    if err == errno.EPIPE:
        return "output closed", None
    return "write error", f"cannot write {dumper.target}: {os.strerror(err)}"


def _drain(
    source: Source,
    dumper: Dumper,
    captured: int,
    count: int | None,
    poller: select.poll | None,
) -> int:
    """After a stop: wait one block timeout so packets already received are written too."""
    if poller is None or (count is not None and captured >= count) or dumper.failed():
        return captured
    poller.poll(TIMEOUT_MS + 50)
    want = -1 if count is None else count - captured
    return captured + max(dispatch_to(source.handle, dumper, want), 0)


def _progress(
    source: Source, dumper: Dumper, clock: Clock, captured: int, last: tuple[float, int]
) -> Progress:
    now = time.monotonic()
    stats = source.handle.stats()
    rate = (captured - last[1]) / max(now - last[0], 1e-6)
    return Progress(
        elapsed=now - clock.start,
        packets=captured,
        bytes=dumper.position(),
        rate=rate,
        dropped=stats.dropped if stats else 0,
    )


def trim_partial_record(fd: int) -> int | None:
    """Cut the pcap file open on `fd` after its last whole record (after a disk-full write).

    Returns how many whole records it keeps, or None when the file does not
    even hold a pcap header.  pcapng files are left alone (None).
    """
    try:
        header = os.pread(fd, 24, 0)
        order = _MAGICS.get(header[:4])
        if len(header) < 24 or order is None:
            return None
        record = struct.Struct(order + "IIII")
        size = os.fstat(fd).st_size
        offset, records = 24, 0
        while offset + 16 <= size:
            caplen = record.unpack(os.pread(fd, 16, offset))[2]
            if offset + 16 + caplen > size:
                break
            offset += 16 + caplen
            records += 1
        if offset < size:
            os.ftruncate(fd, offset)
        return records
    except OSError:
        return None
