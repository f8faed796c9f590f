"""What the `capture` command does (imported only when it runs: libpcap, scapy).

The handler lives with the other commands; the capture package below it
(netns_shell.capture) knows nothing of commands or sessions.

Three modes: write a pcap file (-w, no Python per packet), a live view
(one decoded line per packet, rate-limited, with "not shown" counts), and
reading a savefile (-r).  The first line (which interface, link type) and
the closing counts go to stderr, as tcpdump prints them, so that `-w -`
keeps stdout for the pcap data; the status line is drawn on stderr only
when it is a terminal.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Generator, Iterator
from typing import IO, TYPE_CHECKING, Any

from ..capture import (
    ANY,
    LINES_PER_SECOND,
    Dumper,
    Finished,
    NotShown,
    PacketSummary,
    Progress,
    Source,
    StopRequest,
    list_interfaces,
    open_dumper,
    open_dumper_fd,
    open_file,
    open_live,
    read_packets,
    trim_partial_record,
    watch_packets,
    write_packets,
)
from ..capture.decode import Decoder, format_time
from ..capture.source import check_interface, name_lookup
from ..errors import CaptureError, NetnsShellError, UsageError
from ..privileges import require
from ..render import Result

if TYPE_CHECKING:
    from .context import Context

__all__ = ["capture", "record_line"]


def record_line(r: dict[str, Any]) -> str:
    """The text line of a packet record, or of a 'not shown' record.

    The summary's own lengths are tcpdump's (ICMP, UDP, TCP payload); the
    frame's length on the wire closes the line, labelled as such.
    """
    if "not_shown" in r:
        return f"... {r['not_shown']} packets not shown ({r['reason']})"
    parts = (format_time(r["time"]), r["ifname"], r["direction"], r["summary"])
    return " ".join(part for part in parts if part) + f" (frame {r['length']} bytes)"


class _Status:
    """The `\\r`-updated status line on stderr (drawn only on a terminal)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        try:
            self.enabled = stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.visible = False

    def show(self, p: Progress) -> None:
        if not self.enabled:
            return
        size = f", {_human_bytes(p.bytes)}" if p.bytes >= 0 else ""
        self.stream.write(
            f"\r\x1b[K{p.packets} packets{size}, {p.rate:.0f} pkt/s, "
            f"{p.dropped} dropped by kernel, {p.elapsed:.0f} s"
        )
        self.stream.flush()
        self.visible = True

    def clear(self) -> None:
        if self.visible:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.visible = False


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _say(session: Context, line: str) -> None:
    session.console.say(line)


# ---------------------------------------------------------------- checks
def _check_arguments(session: Context, args: dict[str, Any]) -> None:
    if args["read"] is not None:
        given = [flag for flag, key in (("-i", "iface"), ("--duration", "duration")) if args[key]]
        if args["no_promisc"]:
            given.append("-p")
        if given:
            raise UsageError(f"capture: {', '.join(given)} cannot be used with -r (a file)")
    if session.read_only and args["write"] not in (None, "-"):
        raise UsageError(
            "capture: -w FILE writes a file on the host: not in --read-only mode "
            "(-w - writes to standard output)"
        )
    if args["write"] == "-" and session.console.is_terminal:
        raise UsageError(
            "capture: refusing to write pcap data to a terminal (-w -); "
            "redirect standard output to a file or a pipe, e.g. -w - | tshark -r -"
        )


# --------------------------------------------------------------- handler
def capture(session: Context, args: dict[str, Any]) -> Result:
    """Run one capture; failures become 'capture: ...' one-liners."""
    try:
        return _capture(session, args)
    except NetnsShellError as exc:
        if str(exc).startswith("capture:"):
            raise
        raise type(exc)(f"capture: {exc}") from None


def _capture(session: Context, args: dict[str, Any]) -> Result:
    _check_arguments(session, args)
    expression = " ".join(args["filter"]).strip()
    if args["read"] is not None:
        source = open_file(args["read"])
        banner = (
            f"reading from file {args['read']}, link-type {source.linktype_text}, "
            f"snapshot length {source.snaplen}"
        )
    else:
        source, banner = _open_interface(session, args)
    try:
        if expression:
            source.handle.set_filter(expression)
        dumper = _open_output(session, source, args["write"])
    except BaseException:
        source.close()
        raise
    _say(session, banner)  # the capture is ready: filter attached, file open
    if dumper is not None:
        return _write(session, source, dumper, args)
    return _view(session, source, args)


def _open_interface(session: Context, args: dict[str, Any]) -> tuple[Source, str]:
    """Open the requested (or default) interface; returns the source and tcpdump's line."""
    require("CAP_NET_RAW")
    namespace = session.namespace
    interfaces = list_interfaces(namespace)
    device = args["iface"]
    why = ""
    if device:
        check_interface(interfaces, device, session.label())
    else:
        device = interfaces.default()
        count = len(interfaces.names)
        why = " (its only interface besides lo)" if device != ANY else f" ({count} interfaces)"
    source = open_live(
        namespace,
        device,
        promisc=not args["no_promisc"] and not session.read_only,
        names=name_lookup(namespace, interfaces),
    )
    for warning in source.warnings:
        _say(session, f"capture: warning: {warning}")
    banner = (
        f"capturing on {device}{why} in {session.label()}, link-type {source.linktype_text}, "
        f"snapshot length {source.snaplen} bytes"
    )
    return source, banner


def _open_output(session: Context, source: Source, target: str | None) -> Dumper | None:
    if target is None:
        return None
    if target != "-":
        return open_dumper(source.handle, target)
    stdout = session.console.stdout
    stdout.flush()
    try:
        fd = stdout.fileno()
    except (AttributeError, ValueError, OSError):
        raise UsageError("capture: -w -: standard output is not a file descriptor") from None
    return open_dumper_fd(source.handle, fd, "standard output")


# ------------------------------------------------------------- -w FILE
def _write(session: Context, source: Source, dumper: Dumper, args: dict[str, Any]) -> Result:
    live = args["read"] is None
    status = _Status(session.console.stderr)
    finished: Finished | None = None
    events = write_packets(
        source, dumper, StopRequest(), count=args["count"], duration=args["duration"], live=live
    )
    try:
        try:
            for event in events:
                if isinstance(event, Progress):
                    status.show(event)
                else:
                    finished = event
        finally:
            status.clear()
            events.close()
            dumper.close_stream()
            source.close()
        assert finished is not None
        if live:
            for line in finished.lines():
                _say(session, line)
        else:
            _say(session, f"{finished.captured} packets written")
        if finished.error:
            state = _file_state(args["write"], dumper, finished)
            raise CaptureError(f"capture: {finished.error}; {state}")
    finally:
        dumper.close()
    return Result()


def _file_state(target: str, dumper: Dumper, finished: Finished) -> str:
    """What the user holds after a capture that ended on an error."""
    if target == "-":
        return "the pcap stream ends after the last whole packet written"
    if finished.reason == "write error" and _is_regular_file(dumper.fd):
        kept = trim_partial_record(dumper.fd)
        if kept is None:
            return f"{target} holds no packets"
        return f"{target} was cut after its last whole packet ({kept} packets)"
    return f"{target} is complete up to that point"


def _is_regular_file(fd: int) -> bool:
    try:
        return fd >= 0 and stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


# -------------------------------------------------- live view and -r FILE
def _view(session: Context, source: Source, args: dict[str, Any]) -> Result:
    ifname = None if source.device == ANY or args["read"] is not None else source.device
    decoder = Decoder(source.linktype, ifname=ifname, names=source.names)
    stop = StopRequest()
    if args["read"] is not None:
        events: Generator[Any] = read_packets(source, decoder, stop, count=args["count"])
    else:
        rate = LINES_PER_SECOND["terminal" if session.console.is_terminal else "pipe"]
        events = watch_packets(
            source, decoder, stop, count=args["count"], duration=args["duration"], rate=rate
        )
    result = Result.stream([], record_line)
    result.records = _shown(session, source, events, result)
    return result


def _shown(
    session: Context, source: Source, events: Generator[Any], result: Result
) -> Iterator[dict[str, Any]]:
    """Packet records for the renderer; status line and counts on stderr.

    An error that ends the capture (the interface went away) is reported at
    the end through the console and `result.status`, so the lines (or the
    JSON array) already written stay complete.
    """
    status = _Status(session.console.stderr)
    out = session.console.stdout
    finished: Finished | None = None
    try:
        for event in events:
            if isinstance(event, (PacketSummary, NotShown)):
                status.clear()
                yield event.record()
            elif isinstance(event, Progress):
                out.flush()  # a pipe reader sees lines as they come, like tcpdump -l
                status.show(event)
            else:
                finished = event
    finally:
        status.clear()
        events.close()
        source.close()
    out.flush()
    if finished is not None and finished.stats is not None:
        for line in finished.lines():
            _say(session, line)
    if finished is not None and finished.error:
        session.console.error(f"capture: {finished.error}; the capture ended there")
        result.status = 1
