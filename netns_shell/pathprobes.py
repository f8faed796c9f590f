"""Probes of a path from inside a namespace: a TCP connect (`tcping`) and `traceroute`.

Both use ordinary sockets created inside the namespace.  traceroute sends UDP
datagrams with growing TTLs and reads the routers' ICMP answers from the
socket's error queue (IP_RECVERR), as traceroute(8) does without raw sockets.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .probes import Reply, open_probe_socket

if TYPE_CHECKING:
    from .namespace import NetNamespace

__all__ = ["tcping", "traceroute"]

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}


def _connect_once(
    ns: NetNamespace, family: int, address: str, port: int, timeout: float, iface: str | None
) -> tuple[str, float | None, str | None]:
    """(result, ms, error): open, refused, unreachable, timeout or error."""
    sock = open_probe_socket(ns, family, socket.SOCK_STREAM, 0, iface=iface)
    try:
        sock.setblocking(False)
        # close with a RST: no TIME_WAIT left behind by a probe
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        started = time.monotonic()
        code = sock.connect_ex((address, port))
        if code not in (0, errno.EINPROGRESS):
            return _classify(code), None, os.strerror(code)
        if code == errno.EINPROGRESS:
            _, writable, _ = select.select([], [sock], [], timeout)
            if not writable:
                return "timeout", None, None
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        elapsed = (time.monotonic() - started) * 1000
        return _classify(code), elapsed, os.strerror(code) if code else None
    finally:
        sock.close()


def _classify(code: int) -> str:
    if code == 0:
        return "open"
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in _UNREACHABLE:
        return "unreachable"
    if code == errno.ETIMEDOUT:
        return "timeout"
    return "error"


def tcping(
    ns: NetNamespace,
    family: int,
    address: str,
    port: int,
    *,
    count: int = 4,
    interval: float = 1.0,
    timeout: float = 2.0,
    iface: str | None = None,
) -> Iterator[Reply]:
    """TCP connects to address:port from inside `ns`; time to SYN-ACK (or to the RST)."""
    for seq in range(1, count + 1):
        started = time.monotonic()
        result, ms, error = _connect_once(ns, family, address, port, timeout, iface)
        extra: dict[str, Any] = {"to": address, "port": port, "result": result}
        if error and result != "open":
            extra["error"] = error
        yield Reply(seq, address if result == "open" else None, ms, extra)
        if seq < count:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))


# --------------------------------------------------------------- traceroute
_IP_RECVERR, _IPV6_RECVERR = 11, 25
_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6 = 2, 3
_EXTENDED_ERR = struct.Struct("=IBBBBII")
_BASE_PORT = 33434
_UNREACH_MARKS_V4 = {0: "!N", 1: "!H", 2: "!P", 9: "!X", 10: "!X", 13: "!X"}
_UNREACH_MARKS_V6 = {0: "!N", 1: "!X", 3: "!H"}


def _probe(
    ns: NetNamespace, family: int, address: str, ttl: int, port: int, timeout: float
) -> tuple[str | None, float | None, bool, str | None]:
    """One UDP probe: (who answered, ms, the trace ends here, mark like !H)."""
    sock = ns.socket(family, socket.SOCK_DGRAM, 0)
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        sock.connect((address, port))
        started = time.monotonic()
        try:
            sock.send(b"\0" * 32)
        except OSError as exc:
            return None, None, False, f"({exc.strerror})"
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR)
        if not poller.poll(timeout * 1000):
            return None, None, False, None
        elapsed = (time.monotonic() - started) * 1000
        try:
            _, ancdata, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
        except BlockingIOError:
            return address, elapsed, True, None  # a real UDP answer: the port is open
        except OSError:
            sock.recv(512)  # a datagram came back from the destination itself
            return address, elapsed, True, None
        for _level, _kind, data in ancdata:
            if len(data) < _EXTENDED_ERR.size:
                continue
            _err, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(data)
            offender = data[_EXTENDED_ERR.size :]
            who = _offender(offender, family)
            if origin == _SO_EE_ORIGIN_ICMP:
                if icmp_type == 11:
                    return who, elapsed, False, None
                if icmp_type == 3:
                    mark = None if code == 3 else _UNREACH_MARKS_V4.get(code, f"!<{code}>")
                    return who, elapsed, True, mark
            elif origin == _SO_EE_ORIGIN_ICMP6:
                if icmp_type == 3:
                    return who, elapsed, False, None
                if icmp_type == 1:
                    mark = None if code == 4 else _UNREACH_MARKS_V6.get(code, f"!<{code}>")
                    return who, elapsed, True, mark
        return None, elapsed, False, None
    finally:
        sock.close()


def _offender(raw: bytes, family: int) -> str | None:
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None


def traceroute(
    ns: NetNamespace,
    family: int,
    address: str,
    *,
    max_hops: int = 30,
    queries: int = 3,
    timeout: float = 2.0,
) -> Iterator[dict[str, Any]]:
    """One record per hop: {hop, address, addresses, rtt_ms, reached, marks}."""
    for ttl in range(1, max_hops + 1):
        answers: list[str] = []
        rtts: list[float | None] = []
        marks: list[str] = []
        stop = False
        for query in range(queries):
            port = _BASE_PORT + (ttl - 1) * queries + query
            who, ms, done, mark = _probe(ns, family, address, ttl, port, timeout)
            rtts.append(None if ms is None or who is None else round(ms, 3))
            if who is not None and who not in answers:
                answers.append(who)
            if mark:
                marks.append(mark)
            stop = stop or done
        # reached: the destination itself answered (port unreachable), not a router's !H/!X
        reached = stop and not marks and address in answers
        yield {
            "hop": ttl,
            "address": answers[0] if answers else None,
            "addresses": answers,
            "rtt_ms": rtts,
            "reached": reached,
            "marks": marks,
            "to": address,
        }
        if stop:
            return
