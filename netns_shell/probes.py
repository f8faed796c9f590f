"""Probes sent from inside a namespace: ICMP echo (`ping`) and ARP requests (`arping`).

The sockets are created inside the namespace (raw ICMP, or AF_PACKET bound
by an interface name resolved on that very socket), so the probes leave from
the namespace's own interfaces and routes.  A ping also makes the kernel of
that namespace resolve the target's MAC, which fills its neighbour table, as
the netshoot walk-through does before reading `ip neigh`.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import NotFoundError, UsageError
from .netlink.links import list_links
from .netlink.routes import route_get

if TYPE_CHECKING:
    from .namespace import NetNamespace

__all__ = ["Reply", "arping", "literal_family", "ping", "resolve_host"]

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
_ICMP_ECHO = {socket.AF_INET: (8, 0), socket.AF_INET6: (128, 129)}  # request, reply


@dataclass(frozen=True)
class Reply:
    """One answer (or a timeout when `address` is None)."""

    seq: int
    address: str | None
    rtt_ms: float | None
    extra: dict[str, Any]


def literal_family(text: str) -> int | None:
    """AF_INET or AF_INET6 when `text` is an IP address literal, else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
        except OSError:
            continue
        return family
    return None


def resolve_host(ns: NetNamespace, host: str) -> tuple[int, str]:
    """(family, address) of `host`: a literal, or a name resolved inside the namespace."""
    family = literal_family(host)
    if family is not None:
        return family, host
    try:
        info = ns.run(socket.getaddrinfo, host, None, 0, socket.SOCK_RAW)
    except socket.gaierror as exc:
        raise NotFoundError(f"ping: cannot resolve {host!r}: {exc.strerror}") from None
    family, _, _, _, sockaddr = info[0]
    return family, sockaddr[0]


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


PMTU_MODES = {"dont": 0, "want": 1, "do": 2, "probe": 3}
_IP_MTU_DISCOVER, _IPV6_MTU_DISCOVER = 10, 23
_IP_MTU, _IPV6_MTU = 14, 24
_SO_BINDTODEVICE = 25
# ICMP errors that quote an echo request: (family, type) -> text
_ICMP_ERRORS = {
    (socket.AF_INET, 3): "destination unreachable",
    (socket.AF_INET, 11): "time to live exceeded",
    (socket.AF_INET6, 1): "destination unreachable",
    (socket.AF_INET6, 2): "packet too big",
    (socket.AF_INET6, 3): "hop limit exceeded",
}
_UNREACH_CODES_V4 = {
    0: "net unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "net prohibited",
    10: "host prohibited",
    13: "communication prohibited",
}


def open_probe_socket(
    ns: NetNamespace,
    family: int,
    kind: int,
    proto: int,
    *,
    iface: str | None = None,
    pmtu: str | None = None,
) -> socket.socket:
    """A socket inside `ns`, bound to an interface or source address, with a PMTU mode."""
    sock = ns.socket(family, kind, proto)
    try:
        if iface:
            try:
                socket.inet_pton(family, iface)
            except OSError:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, iface.encode())
                except OSError as exc:
                    if exc.errno == 19:  # ENODEV
                        raise NotFoundError(
                            f"no interface named {iface!r} in this namespace"
                        ) from None
                    raise
            else:
                sock.bind((iface, 0))
        if pmtu is not None:
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, PMTU_MODES[pmtu])
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, PMTU_MODES[pmtu])
    except BaseException:
        sock.close()
        raise
    return sock


def path_mtu(ns: NetNamespace, family: int, address: str, iface: str | None) -> int | None:
    """The path MTU the namespace's kernel knows towards `address` (IP_MTU of a
    connected UDP socket; nothing is sent)."""
    try:
        sock = open_probe_socket(ns, family, socket.SOCK_DGRAM, 0, iface=iface)
    except OSError:
        return None
    try:
        sock.connect((address, 9))
        if family == socket.AF_INET:
            return sock.getsockopt(socket.IPPROTO_IP, _IP_MTU)
        return sock.getsockopt(socket.IPPROTO_IPV6, _IPV6_MTU)
    except OSError:
        return None
    finally:
        sock.close()


def ping(
    ns: NetNamespace,
    host: str,
    *,
    count: int = 4,
    interval: float = 1.0,
    timeout: float = 1.0,
    size: int = 56,
    iface: str | None = None,
    pmtu: str | None = None,
) -> Iterator[Reply]:
    """Send `count` ICMP echo requests from inside `ns`; yield a Reply (or timeout) for each.

    `size` bytes of payload (like ping -s), `pmtu` 'do' sets Don't Fragment (ping -M
    do), `iface` binds to an interface or source address (ping -I).  An ICMP error
    quoting the request (fragmentation needed, unreachable, TTL exceeded) is reported
    with the router that sent it; a packet larger than the known path MTU with DF set
    fails at once with that MTU.
    """
    family, address = resolve_host(ns, host)
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = open_probe_socket(ns, family, socket.SOCK_RAW, proto, iface=iface, pmtu=pmtu)
    ident = os.getpid() & 0xFFFF
    request, reply_type = _ICMP_ECHO[family]
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    try:
        # not connect()ed: a connected raw socket drops the ICMP errors routers send
        for seq in range(1, count + 1):
            header = struct.pack("!BBHHH", request, 0, 0, ident, seq)
            packet = header + payload[:size]
            if family == socket.AF_INET:  # the kernel sums ICMPv6 itself
                packet = header[:2] + struct.pack("!H", _checksum(packet)) + packet[4:]
            sent = time.monotonic()
            try:
                sock.sendto(packet, (address, 0))
            except OSError as exc:
                extra: dict[str, Any] = {"to": address, "error": exc.strerror or str(exc)}
                if exc.errno == 90:  # EMSGSIZE: DF set and bigger than the path MTU
                    mtu = path_mtu(ns, family, address, iface)
                    if mtu:
                        extra["mtu"] = mtu
                        extra["error"] = f"message too long, path MTU {mtu}"
                yield Reply(seq, None, None, extra)
            else:
                reply = _await_echo(sock, family, ident, seq, reply_type, sent, timeout)
                reply.extra["to"] = address
                yield reply
            if seq < count:
                time.sleep(max(0.0, interval - (time.monotonic() - sent)))
    finally:
        sock.close()


def _quoted_echo(data: bytes, family: int) -> tuple[int, int] | None:
    """(ident, seq) of the echo request an ICMP error quotes, or None."""
    inner = data[8:]
    if family == socket.AF_INET:
        if len(inner) < 20:
            return None
        inner = inner[(inner[0] & 0x0F) * 4 :]
        expected = 8
    else:
        if len(inner) < 40:
            return None
        inner = inner[40:]
        expected = 128
    if len(inner) < 8 or inner[0] != expected:
        return None
    return struct.unpack_from("!HH", inner, 4)


def _error_text(family: int, kind: int, code: int, data: bytes) -> tuple[str, dict[str, Any]]:
    text = _ICMP_ERRORS[(family, kind)]
    extra: dict[str, Any] = {}
    if family == socket.AF_INET and kind == 3:
        text = _UNREACH_CODES_V4.get(code, f"{text} (code {code})")
        if code == 4:
            extra["mtu"] = struct.unpack_from("!H", data, 6)[0]
            text += f", next-hop MTU {extra['mtu']}"
    elif family == socket.AF_INET6 and kind == 2:
        extra["mtu"] = struct.unpack_from("!I", data, 4)[0]
        text += f", MTU {extra['mtu']}"
    return text, extra


def _await_echo(
    sock: socket.socket,
    family: int,
    ident: int,
    seq: int,
    reply_type: int,
    sent: float,
    timeout: float,
) -> Reply:
    deadline = sent + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return Reply(seq, None, None, {})
        try:
            data, source = sock.recvfrom(65535)
        except OSError as exc:  # an ICMP error queued on the connected socket
            return Reply(seq, None, None, {"error": exc.strerror or str(exc)})
        now = time.monotonic()
        ttl = None
        if family == socket.AF_INET:
            ttl = data[8]
            data = data[(data[0] & 0x0F) * 4 :]
        if len(data) < 8:
            continue
        kind, code, _, r_ident, r_seq = struct.unpack("!BBHHH", data[:8])
        if kind == reply_type and r_ident == ident and r_seq == seq:
            extra: dict[str, Any] = {"bytes": len(data)}
            if ttl is not None:
                extra["ttl"] = ttl
            return Reply(seq, source[0], (now - sent) * 1000, extra)
        if (family, kind) in _ICMP_ERRORS and _quoted_echo(data, family) == (ident, seq):
            text, extra = _error_text(family, kind, code, data)
            return Reply(seq, None, None, {"error": text, "error_from": source[0], **extra})


def _arp_interface(ns: NetNamespace, target: str, iface: str | None) -> tuple[str, bytes, str]:
    """(ifname, its MAC, sender IP) to ask for `target` from."""
    route = route_get(ns, target)
    if iface is None:
        if route is None or "dev" not in route:
            raise NotFoundError(f"arping: no route to {target} in this namespace")
        iface = route["dev"]
    links = {link["ifname"]: link for link in list_links(ns)}
    link = links.get(iface)
    if link is None:
        raise NotFoundError(f"arping: no interface named '{iface}' in this namespace")
    sender = (route or {}).get("prefsrc") or next(
        (a["local"] for a in link.get("addr_info", ()) if a.get("family") == "inet"), "0.0.0.0"
    )
    return iface, bytes.fromhex(link.get("address", "00:00:00:00:00:00").replace(":", "")), sender


def arping(
    ns: NetNamespace,
    target: str,
    *,
    count: int = 3,
    interval: float = 1.0,
    timeout: float = 1.0,
    iface: str | None = None,
) -> Iterator[Reply]:
    """Broadcast ARP requests for `target` from inside `ns`; yield each answer or timeout."""
    try:
        target_raw = socket.inet_pton(socket.AF_INET, target)
    except OSError:
        raise UsageError(f"arping: '{target}' is not an IPv4 address") from None
    ifname, mac, sender = _arp_interface(ns, target, iface)
    sock = ns.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((ifname, ETH_P_ARP))  # resolved on this socket: the namespace's ifindex
        arp = struct.pack(
            "!HHBBH6s4s6s4s",
            1,
            ETH_P_IP,
            6,
            4,
            1,
            mac,
            socket.inet_aton(sender),
            b"\0" * 6,
            target_raw,
        )
        frame = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP) + arp
        for seq in range(1, count + 1):
            sent = time.monotonic()
            sock.send(frame)
            yield _await_arp(sock, target_raw, seq, sent, timeout, ifname)
            if seq < count:
                time.sleep(max(0.0, interval - (time.monotonic() - sent)))
    finally:
        sock.close()


def _await_arp(
    sock: socket.socket, target: bytes, seq: int, sent: float, timeout: float, ifname: str
) -> Reply:
    deadline = sent + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            return Reply(seq, None, None, {"dev": ifname})
        frame = sock.recv(2048)
        if len(frame) < 42:
            continue
        op, sha, spa = struct.unpack_from("!6xH6s4s", frame, 14)  # the ARP header
        if op == 2 and spa == target:
            return Reply(
                seq,
                socket.inet_ntoa(spa),
                (time.monotonic() - sent) * 1000,
                {"lladdr": sha.hex(":"), "dev": ifname},
            )
