"""`trace --probe`: real packets along the predicted path, captured at every namespace at once.

One libpcap handle (device `any`) per namespace of the static path, opened
on a thread inside that namespace (architecture.md facts 1, 6), filtered on the
probe's ICMP id (or UDP payload marker), both plain and inside VXLAN (UDP
4789: outer UDP 8 + VXLAN 8 + Ethernet 14 + IPv4 20 bytes before the inner
header).  Every captured frame must also hold the probe's 16-byte payload
marker.  The probes are sent with DF set (IP_PMTUDISC_DO) and `--size`
bytes from the source namespace.  Then each hop says `seen` or not, and the
last hop gets the last namespace where a probe was seen and the first
where it was expected and missing.

Where tracefs can be used, the `skb:kfree_skb` tracepoint is read in an
instance of our own during the probe window; it has no namespace field
(architecture.md fact 14), so the reasons are those of every drop on the host in
that window with an IPv4 protocol, minus NOT_SPECIFIED: the report says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..capture.pcap import Handle
from ..errors import CaptureError, NamespaceError
from ..namespace import NetNamespace

if TYPE_CHECKING:
    from .records import TraceRequest
    from .tracer import Tracer

__all__ = ["probe_path"]

Record = dict[str, Any]
_WINDOW = 0.6  # seconds to wait for the probes after the last one is sent
_PROBES = 2
_IP_MTU_DISCOVER, _IP_PMTUDISC_DO = 10, 2


def probe_path(
    tracer: Tracer, source: NetNamespace, request: TraceRequest, hops: list[Record]
) -> list[Record]:
    """The hops with `seen` per hop and the probe's findings on the last one."""
    if request.proto == "tcp":
        hops[-1]["probe"] = "not sent: --probe sends icmp or udp only"
        return hops
    marker = secrets.token_bytes(16)
    ident = int.from_bytes(marker[:2], "big")
    # where the kernel really sends it past a judgement (Tracer.trace): captured as well
    beyond = hops[-1].get("beyond") or []
    walked = hops + beyond
    paths = []
    for hop in walked:
        if hop.get("path") and hop["path"] not in paths:
            paths.append(hop["path"])
    started = time.monotonic()
    captures = _open_captures(paths, _filter(request, marker, ident))
    try:
        with _kfree_skb() as drops:
            sent = _send(source, request, marker, ident)
            seen = _collect(captures, marker, time.monotonic() + _WINDOW)
    finally:
        for handle in captures.values():
            if handle is not None:
                handle.close()
    for hop in walked:
        if hop.get("path") in captures and captures[hop["path"]] is not None:
            hop["seen"] = seen.get(hop["path"], 0) > 0
    last_seen = next((h for h in reversed(walked) if h.get("seen")), None)
    first_missing = next((h for h in walked if h.get("seen") is False), None)
    summary = f"sent {_PROBES} x {request.size} B with DF: {sent}"
    if last_seen is not None:
        summary += f"; last seen at hop {last_seen['hop']} ({_where(last_seen)})"
        if any(last_seen is h for h in beyond):
            summary += f", past hop {hops[-1]['hop']}"
    else:
        summary += "; seen nowhere"
    if first_missing is not None:
        summary += f"; first missing at hop {first_missing['hop']} ({_where(first_missing)})"
    elif last_seen is not None:
        summary += "; seen at every hop"
    summary += _agreement(hops[-1], first_missing, beyond)
    unopened = [p for p, h in captures.items() if h is None]
    if unopened:
        summary += f"; no capture in {', '.join(os.path.basename(p) for p in unopened)}"
    summary += f" ({time.monotonic() - started:.2f} s)"
    hops[-1]["probe"] = summary
    hops[-1]["kfree_skb"] = drops.get("text", "")
    return hops


def _agreement(dead: Record, first_missing: Record | None, beyond: list[Record]) -> str:
    """Where the probe died against where the static trace drops it (sets `probe_agrees`).

    With `beyond` (the trace drops it on a judgement, the kernel still sends it on) the
    probe is followed on that way: where it went, and why it dies there."""
    if dead["verdict"] != "dropped" or "seen" not in dead:
        return ""
    if beyond and dead["seen"]:
        end = beyond[-1]
        past = f"; past hop {dead['hop']}, where the trace drops it, the kernel still sent it on"
        if first_missing is None and end.get("seen"):
            dead["probe_agrees"] = True
            if end["verdict"] == "dropped":
                return (
                    f"{past}: it dies inside {_where(end)} (hop {end['hop']}, {end['step']}): "
                    f"{end.get('reason')}: {end.get('evidence', '')}"
                )
            return f"{past}: it ends at {_where(end)} (hop {end['hop']}): {end['verdict']}"
        if first_missing is not None and first_missing["hop"] > dead["hop"]:
            dead["probe_agrees"] = True
            return f"{past}: missing from hop {first_missing['hop']} on"
    if dead["seen"] and first_missing is None:
        dead["probe_agrees"] = True
        return f"; it dies inside {_where(dead)} (hop {dead['hop']}), where the trace drops it"
    if first_missing is dead:
        dead["probe_agrees"] = True
        return f"; missing from hop {dead['hop']} on, where the trace drops it"
    dead["probe_agrees"] = False
    return f"; the trace drops it at hop {dead['hop']}: the probe disagrees"


def _where(hop: Record) -> str:
    return f"{hop['node']} {hop['netns']}"


def _filter(request: TraceRequest, marker: bytes, ident: int) -> str:
    if request.proto == "udp":
        word = int.from_bytes(marker[:4], "big")
        return f"(udp and udp[8:4] = {word}) or (udp port 4789 and udp[58:4] = {word})"
    return f"(icmp and icmp[4:2] = {ident}) or (udp port 4789 and udp[54:2] = {ident})"


def _open_captures(paths: list[str], expression: str) -> dict[str, Handle | None]:
    """path -> a live, non-blocking handle on `any` in that namespace (None: could not)."""
    handles: dict[str, Handle | None] = {}
    for path in paths:
        try:
            with NetNamespace.open_path(path) as ns:
                handles[path] = ns.run(_activate, expression)
        except (CaptureError, NamespaceError, OSError):
            handles[path] = None
    return handles


def _activate(expression: str) -> Handle:
    handle = Handle.create("any")
    try:
        handle.configure(snaplen=65535, buffer_size=4 << 20, timeout_ms=10, promisc=False,
                         immediate=True)  # fmt: skip
        handle.activate()
        handle.set_filter(expression)
        handle.set_nonblocking(True)
    except BaseException:
        handle.close()
        raise
    return handle


def _collect(captures: dict[str, Handle | None], marker: bytes, deadline: float) -> dict[str, int]:
    seen = dict.fromkeys(captures, 0)
    live = {h.selectable_fd(): (p, h) for p, h in captures.items() if h is not None}
    while live:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select(list(live), [], [], remaining)
        for fd in ready:
            path, handle = live[fd]
            while True:
                packet = handle.next_packet()
                if isinstance(packet, int):
                    break
                if marker in packet.data:
                    seen[path] += 1
    return seen


def _send(source: NetNamespace, request: TraceRequest, marker: bytes, ident: int) -> str:
    """Send the probes from the source namespace; 'ok' or the kernel's refusal."""
    payload_size = max(request.size - 28, len(marker))
    payload = (marker * (payload_size // len(marker) + 1))[:payload_size]
    if request.proto == "udp":
        sock = source.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
        packets = [payload] * _PROBES
    else:
        sock = source.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        packets = [_echo(ident, seq, payload) for seq in range(1, _PROBES + 1)]
    errors = []
    try:
        sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO)
        for data in packets:
            try:
                sock.sendto(data, (request.dst, request.port or 0))
            except OSError as exc:
                errors.append(exc.strerror or str(exc))
            time.sleep(0.05)
    finally:
        sock.close()
    return f"send refused: {errors[0]}" if errors else "sent"


def _echo(ident: int, seq: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    checksum = _checksum(header + payload)
    return struct.pack("!BBHHH", 8, 0, checksum, ident, seq) + payload


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# ------------------------------------------------------------------ tracefs
@contextlib.contextmanager
def _kfree_skb() -> Iterator[dict[str, str]]:
    """Read skb:kfree_skb during the block, in a tracefs instance of our own."""
    out: dict[str, str] = {}
    mounted = None
    root = "/sys/kernel/tracing"
    if not os.path.isdir(os.path.join(root, "instances")):
        mounted = tempfile.mkdtemp(prefix="netns-shell-tracefs-")
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", mounted], capture_output=True,
                              text=True)  # fmt: skip
        if done.returncode != 0:
            os.rmdir(mounted)
            out["text"] = f"kfree_skb: tracefs is not available here ({done.stderr.strip()})"
            yield out
            return
        root = mounted
    instance = os.path.join(root, "instances", f"netns-shell-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        try:
            os.mkdir(instance)
            event = os.path.join(instance, "events", "skb", "kfree_skb")
            _write(os.path.join(event, "filter"), "protocol == 2048")
            _write(os.path.join(event, "enable"), "1")
        except OSError as exc:
            out["text"] = f"kfree_skb: the tracepoint cannot be used here ({exc.strerror})"
            yield out
            return
        yield out
        _write(os.path.join(event, "enable"), "0")
        with open(os.path.join(instance, "trace")) as fh:
            out["text"] = _reasons(fh.read())
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(instance)
        if mounted:
            subprocess.run(["umount", mounted], capture_output=True)
            with contextlib.suppress(OSError):
                os.rmdir(mounted)


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _reasons(trace: str) -> str:
    counts: dict[str, int] = {}
    for line in trace.splitlines():
        if "kfree_skb:" not in line or "reason:" not in line:
            continue
        reason = line.split("reason:", 1)[1].split()[0]
        found = re.search(r"location[=:]\s*(\S+)", line)
        location = found.group(1) if found else "?"
        if reason == "NOT_SPECIFIED":
            continue
        key = f"{reason} at {location}"
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return "kfree_skb: no IPv4 drop with a reason on this host during the probe window"
    shown = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"kfree_skb during the probe window (whole host, no namespace field): {shown}"
