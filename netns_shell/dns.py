"""DNS from inside a namespace, through the resolver its own processes use.

The resolver configuration is the namespace's, not the shell's: the
resolv.conf (and hosts file) of a process holding the namespace, read
through that process's root (/proc/PID/root) with openat2(RESOLVE_IN_ROOT),
so a symlink inside the container resolves inside the container and never
escapes to the host's files.  A named namespace without a process uses
/etc/netns/NAME/resolv.conf when there is one (as `ip netns exec` does),
else the host's.  Docker's embedded 127.0.0.11 works because the query
leaves from a socket created inside the namespace, where Docker's DNAT
rules send it on to the engine's real port.

Queries are built and parsed here (standard library only); UDP, and TCP
when the answer comes back truncated.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import re
import select
import socket
import stat
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import NetnsShellError, NotFoundError, UsageError
from .namespace import c_library

if TYPE_CHECKING:
    from .namespace import NetNamespace

__all__ = [
    "TYPES",
    "Answer",
    "DnsError",
    "ResolverConfig",
    "lookup",
    "query",
    "read_resolver",
    "resolve_address",
]

TYPES = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "NAPTR": 35,
    "ANY": 255,
    "CAA": 257,
}
_TYPE_NAMES = {number: name for name, number in TYPES.items()}
RCODES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED")
_HEADER = struct.Struct("!HHHHHH")
_MAX_FILE = 1 << 16
_RESOLVE_IN_ROOT, _RESOLVE_NO_MAGICLINKS = 0x10, 0x02
_SYS_OPENAT2 = 437  # the same number on every architecture (a new-style syscall)


class DnsError(NetnsShellError):
    """No server answered, or an answer could not be read."""


@dataclass
class ResolverConfig:
    """What resolv.conf says, and where it was read."""

    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    ndots: int = 1
    timeout: float = 5.0
    attempts: int = 2
    source: str = ""
    #: the hosts file of the same root, name -> addresses (probes use it, as glibc does)
    hosts: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    """One server's reply to one question."""

    server: str
    qname: str
    qtype: str
    rcode: str
    time_ms: float
    records: list[dict[str, Any]]
    transport: str = "udp"


# --------------------------------------------------------- resolver config
def _openat2(dirfd: int, path: str) -> int:
    how = struct.pack(
        "=QQQ",
        os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY,
        0,
        _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS,
    )
    syscall = c_library().syscall
    syscall.restype = ctypes.c_long
    fd = syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(path.encode()),
        ctypes.c_char_p(how),
        ctypes.c_size_t(len(how)),
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def _read_in_root(root: str, path: str) -> str | None:
    """A small regular file at `path` under `root`, resolved inside it; None if absent."""
    try:
        rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = _openat2(rootfd, path)
    except OSError as exc:
        if exc.errno == errno.ENOSYS:  # kernel < 5.6: no symlinks followed at all then
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=rootfd)
            except OSError:
                return None
        else:
            return None
    finally:
        os.close(rootfd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(_MAX_FILE).decode("utf-8", "replace")
    finally:
        os.close(fd)


def parse_resolv_conf(text: str) -> ResolverConfig:
    config = ResolverConfig()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            config.nameservers.append(words[1].split("%", 1)[0])
        elif words[0] in ("search", "domain"):
            config.search = words[1:]
        elif words[0] == "options":
            for option in words[1:]:
                name, _, value = option.partition(":")
                if name in ("ndots", "attempts") and value.isdigit():
                    setattr(config, name, min(int(value), 15))
                elif name == "timeout" and value.isdigit():
                    config.timeout = float(min(max(int(value), 1), 30))
    if not config.nameservers:
        config.nameservers = ["127.0.0.1"]  # glibc's default
    return config


def _parse_hosts(text: str) -> dict[str, list[str]]:
    hosts: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        for name in words[1:]:
            hosts.setdefault(name.lower(), []).append(words[0])
    return hosts


def _still_in(ns: NetNamespace, root: str) -> bool:
    """Whether the process behind /proc/PID/root is (still) in the namespace `ns`."""
    try:
        st = os.stat(root.replace("/root", "/ns/net"))
    except OSError:
        return False
    try:
        ns.check_process()
    except NetnsShellError:
        return False
    return (st.st_dev, st.st_ino) == ns.key


def read_resolver(ns: NetNamespace, pids: list[int], name: str | None = None) -> ResolverConfig:
    """The resolver of the namespace: a holder process's resolv.conf, else /etc/netns/NAME,
    else the host's."""
    candidates: list[tuple[str, str, str]] = []
    for pid in ([ns.pid] if ns.pid else []) + [p for p in pids if p != ns.pid]:
        candidates.append((f"/proc/{pid}/root", "etc/", f"PID {pid}"))
    if name and "/" not in name:
        candidates.append((f"/etc/netns/{name}", "", f"/etc/netns/{name}"))
    candidates.append(("/", "etc/", "the host"))
    for root, prefix, who in candidates:
        text = _read_in_root(root, prefix + "resolv.conf")
        if text is None:
            continue
        if root.startswith("/proc/") and not _still_in(ns, root):
            continue  # the process left (or its PID was reused) while we read
        config = parse_resolv_conf(text)
        where = "/etc/resolv.conf" if prefix else "resolv.conf"
        config.source = f"{where} of {who}" if prefix else f"{root}/resolv.conf"
        hosts = _read_in_root(root if prefix else "/", "etc/hosts")
        config.hosts = _parse_hosts(hosts or "")
        return config
    raise NotFoundError("no resolv.conf found for this namespace")


# ------------------------------------------------------------------ wire
def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split(".") if name not in (".", "") else []:
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise UsageError(f"dns: bad name {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(qname: str, qtype: int, ident: int) -> bytes:
    return (
        _HEADER.pack(ident, 0x0100, 1, 0, 0, 0) + _encode_name(qname) + struct.pack("!HH", qtype, 1)
    )


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    hops = 0
    while True:
        length = msg[off]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((length & 0x3F) << 8) | msg[off + 1]
            hops += 1
            if hops > 64:
                raise DnsError("dns: compression loop in the answer")
            continue
        if length == 0:
            off += 1
            break
        labels.append(msg[off + 1 : off + 1 + length].decode("ascii", "backslashreplace"))
        off += 1 + length
    return (".".join(labels) + ".") if labels else ".", end if end is not None else off


def _rdata(msg: bytes, kind: int, start: int, length: int) -> Any:
    data = msg[start : start + length]
    if kind == 1 and length == 4:
        return socket.inet_ntop(socket.AF_INET, data)
    if kind == 28 and length == 16:
        return socket.inet_ntop(socket.AF_INET6, data)
    if kind in (2, 5, 12):
        return _read_name(msg, start)[0]
    if kind == 15:
        return f"{struct.unpack_from('!H', msg, start)[0]} {_read_name(msg, start + 2)[0]}"
    if kind == 33:
        priority, weight, port = struct.unpack_from("!HHH", msg, start)
        return f"{priority} {weight} {port} {_read_name(msg, start + 6)[0]}"
    if kind == 16:
        texts, off = [], 0
        while off < len(data):
            texts.append(data[off + 1 : off + 1 + data[off]].decode("utf-8", "backslashreplace"))
            off += 1 + data[off]
        return " ".join(f'"{t}"' for t in texts)
    if kind == 6:
        mname, off = _read_name(msg, start)
        rname, off = _read_name(msg, off)
        numbers = struct.unpack_from("!IIIII", msg, off)
        return " ".join([mname, rname, *map(str, numbers)])
    return "\\# " + str(length) + " " + data.hex()


def parse_reply(msg: bytes, ident: int) -> tuple[str, bool, list[dict[str, Any]]]:
    """(rcode, truncated, answer records) of a reply to query `ident`."""
    try:
        rid, flags, qdcount, ancount, _ns, _ar = _HEADER.unpack_from(msg, 0)
        if rid != ident or not flags & 0x8000:
            raise DnsError("dns: a reply to another query")
        off = _HEADER.size
        for _ in range(qdcount):
            off = _read_name(msg, off)[1] + 4
        records = []
        for _ in range(ancount):
            name, off = _read_name(msg, off)
            kind, _cls, ttl, length = struct.unpack_from("!HHIH", msg, off)
            off += 10
            records.append(
                {
                    "name": name,
                    "type": _TYPE_NAMES.get(kind, f"TYPE{kind}"),
                    "ttl": ttl,
                    "data": _rdata(msg, kind, off, length),
                }
            )
            off += length
    except (struct.error, IndexError, UnicodeError) as exc:
        raise DnsError(f"dns: malformed answer ({exc})") from None
    rcode = flags & 0xF
    return (RCODES[rcode] if rcode < len(RCODES) else str(rcode)), bool(flags & 0x0200), records


def _family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _exchange_udp(
    ns: NetNamespace, server: str, port: int, packet: bytes, ident: int, timeout: float
) -> bytes:
    sock = ns.socket(_family_of(server), socket.SOCK_DGRAM, 0)
    try:
        sock.connect((server, port))
        sock.send(packet)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise TimeoutError
            reply = sock.recv(65535)
            if len(reply) >= 2 and struct.unpack_from("!H", reply)[0] == ident:
                return reply
    finally:
        sock.close()


def _exchange_tcp(ns: NetNamespace, server: str, port: int, packet: bytes, timeout: float) -> bytes:
    sock = ns.socket(_family_of(server), socket.SOCK_STREAM, 0)
    try:
        sock.settimeout(timeout)
        sock.connect((server, port))
        sock.sendall(struct.pack("!H", len(packet)) + packet)
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack_from("!H", data)[0]:
            chunk = sock.recv(65535)
            if not chunk:
                raise DnsError(f"dns: {server} closed the TCP connection")
            data += chunk
        return data[2 : 2 + struct.unpack_from("!H", data)[0]]
    except TimeoutError:
        raise TimeoutError from None
    finally:
        sock.close()


def query(
    ns: NetNamespace, server: str, qname: str, qtype: int, *, port: int = 53, timeout: float = 3.0
) -> Answer:
    """Ask one server one question from inside `ns` (UDP; TCP when truncated)."""
    ident = random.getrandbits(16)
    packet = build_query(qname, qtype, ident)
    started = time.monotonic()
    transport = "udp"
    try:
        reply = _exchange_udp(ns, server, port, packet, ident, timeout)
        rcode, truncated, records = parse_reply(reply, ident)
        if truncated:
            transport = "tcp"
            reply = _exchange_tcp(ns, server, port, packet, timeout)
            rcode, _, records = parse_reply(reply, ident)
    except TimeoutError:
        raise DnsError(f"dns: no answer from {server} within {timeout:g} s") from None
    except OSError as exc:
        raise DnsError(f"dns: {server}: {exc.strerror or exc}") from None
    elapsed = (time.monotonic() - started) * 1000
    name = _TYPE_NAMES.get(qtype, str(qtype))
    return Answer(server, qname, name, rcode, round(elapsed, 3), records, transport)


def reverse_name(address: str) -> str | None:
    """The PTR name of an IP literal (like dig -x), or None for a name."""
    try:
        raw = socket.inet_pton(socket.AF_INET, address)
        return ".".join(str(b) for b in reversed(raw)) + ".in-addr.arpa."
    except OSError:
        pass
    try:
        raw = socket.inet_pton(socket.AF_INET6, address)
    except OSError:
        return None
    return ".".join(reversed(raw.hex())) + ".ip6.arpa."


def candidates(name: str, config: ResolverConfig) -> list[str]:
    """The names glibc tries, in order (search list and ndots)."""
    if name.endswith("."):
        return [name]
    with_search = [f"{name}.{domain}." for domain in config.search if domain != "."]
    as_is = [name + "."]
    return as_is + with_search if name.count(".") >= config.ndots else with_search + as_is


def lookup(
    ns: NetNamespace,
    config: ResolverConfig,
    name: str,
    qtype: int,
    *,
    servers: list[str] | None = None,
    port: int = 53,
    search: bool = True,
) -> Iterator[Answer | DnsError]:
    """Ask like the namespace's resolver: each candidate name, each server in order.

    Yields every exchange (answers and failures); the last one is the result: the
    first NOERROR with records, or the last answer when nothing matched.
    """
    names = candidates(name, config) if search else [name if name.endswith(".") else name + "."]
    timeout = min(config.timeout, 3.0)
    for candidate in names:
        answered = False
        for server in servers or config.nameservers:
            try:
                answer = query(ns, server, candidate, qtype, port=port, timeout=timeout)
            except DnsError as exc:
                yield exc
                continue
            yield answer
            if answer.rcode in ("SERVFAIL", "REFUSED"):
                continue
            answered = True
            if answer.rcode == "NOERROR" and answer.records:
                return
            break
        if not answered:
            continue


def resolve_address(
    ns: NetNamespace, config: ResolverConfig, host: str, families: tuple[int, ...] | None = None
) -> tuple[int, str, str]:
    """(family, address, how) for a probe target: a literal, the hosts file, or DNS."""
    from .probes import literal_family

    family = literal_family(host)
    if family is not None:
        return family, host, "literal"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", host):
        raise UsageError(f"cannot resolve {host!r}: not a host name")
    wanted = families or (socket.AF_INET, socket.AF_INET6)
    for address in config.hosts.get(host.lower().rstrip("."), []):
        family = _family_of(address)
        if family in wanted:
            return family, address, f"hosts file ({config.source.replace('resolv.conf', 'hosts')})"
    for family in wanted:
        qtype = 1 if family == socket.AF_INET else 28
        exchanges = list(lookup(ns, config, host, qtype))
        result = exchanges[-1] if exchanges else None
        if isinstance(result, Answer):
            for record in result.records:
                if record["type"] == ("A" if qtype == 1 else "AAAA"):
                    return family, record["data"], f"DNS server {result.server}"
    raise NotFoundError(f"cannot resolve {host!r} with the namespace's resolver ({config.source})")
