"""A lean rtnetlink socket that streams dump replies message by message.

Only the standard library is used here: pyroute2's generic parser costs
tens of microseconds per message and imports in ~0.3 s (architecture.md fact 5), so
the hot dump path parses with `struct.unpack_from` and hands each message to
a per-object decoder while the next recv() is still to come.

A socket is created inside a namespace through `NetNamespace.socket`, so it
is bound to that namespace whichever thread uses it later.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import NetlinkError, PrivilegeError
from .constants import (
    I32,
    NETLINK_ADD_MEMBERSHIP,
    NETLINK_EXT_ACK,
    NETLINK_GET_STRICT_CHK,
    NETLINK_ROUTE,
    NLA,
    NLA_TYPE_MASK,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_OVERRUN,
    NLMSGERR_ATTR_MSG,
    NLMSGHDR,
    SO_RCVBUFFORCE,
    SOL_NETLINK,
    U32,
)

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = [
    "DumpInconsistentError",
    "DumpInterruptedError",
    "MalformedMessageError",
    "Message",
    "NetlinkSocket",
    "dump_chunks_with_retry",
    "dump_with_retry",
    "iter_attrs",
    "kstr",
    "parse_attrs",
    "robust",
    "span_bytes",
    "span_u8",
    "span_u32",
]

T = TypeVar("T")

_NLMSGHDR, _NLA, _I32 = NLMSGHDR, NLA, I32
_SO_RCVBUFFORCE = SO_RCVBUFFORCE

_RECV_SIZE = 1 << 16
_RCVBUF = 4 << 20

#: (message type, the bytes it lives in, payload start, message end)
Message = tuple[int, bytes, int, int]


class DumpInterruptedError(NetlinkError):
    """A dump is incomplete or inconsistent: the table changed (NLM_F_DUMP_INTR) or
    messages were lost (ENOBUFS).  `dump_with_retry` retries it."""

    def __init__(self, what: str, reason: str = "was interrupted by a change (NLM_F_DUMP_INTR)"):
        super().__init__(f"the {what} dump {reason}; run the command again", errno.EINTR)


class MalformedMessageError(NetlinkError):
    """A message too short or inconsistent to decode (never sent by a sane kernel)."""

    def __init__(self, what: str, detail: str):
        super().__init__(f"malformed {what} message ({detail})", errno.EBADMSG)


class DumpInconsistentError(NetlinkError):
    """A warning: the rows shown come from a dump the kernel flagged as inconsistent."""

    exit_status = 0

    def __init__(self, message: str):
        super().__init__(
            message.replace("; run the command again", "") + "; the rows above may be inconsistent",
            errno.EINTR,
        )


def robust(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: decoding errors (short attributes, bad lengths) become MalformedMessageError."""

    def wrap(parse: Callable[..., T]) -> Callable[..., T]:
        def decode(*args: Any, **kwargs: Any) -> T:
            try:
                return parse(*args, **kwargs)
            except (struct.error, IndexError, ValueError, OverflowError) as exc:
                raise MalformedMessageError(what, f"{type(exc).__name__}: {exc}") from None

        decode.__name__ = parse.__name__
        decode.__doc__ = parse.__doc__
        decode.__wrapped__ = parse  # type: ignore[attr-defined]
        return decode

    return wrap


def iter_attrs(buf: bytes, off: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (type, value start, value end) for each netlink attribute in buf[off:end]."""
    unpack = _NLA.unpack_from
    while off + 4 <= end:
        length, kind = unpack(buf, off)
        if length < 4 or off + length > end:
            return
        yield kind & NLA_TYPE_MASK, off + 4, off + length
        off += (length + 3) & ~3


def kstr(buf: bytes, start: int, end: int) -> str:
    """A NUL-terminated kernel string; undecodable bytes survive as surrogates."""
    raw = bytes(buf[start:end])
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return raw.decode("utf-8", "surrogateescape")


def span_u8(buf: bytes, span: tuple[int, int]) -> int:
    """The u8 value of an attribute found by parse_attrs."""
    return buf[span[0]]


def span_u32(buf: bytes, span: tuple[int, int]) -> int:
    """The u32 (host order) value of an attribute found by parse_attrs."""
    return U32.unpack_from(buf, span[0])[0]


def span_bytes(buf: bytes, span: tuple[int, int]) -> bytes:
    """The raw value of an attribute found by parse_attrs."""
    return bytes(buf[span[0] : span[1]])


def parse_attrs(buf: bytes, off: int, end: int) -> dict[int, tuple[int, int]]:
    """Map attribute type -> (value start, value end); the last one of a type wins."""
    attrs: dict[int, tuple[int, int]] = {}
    unpack = _NLA.unpack_from
    while off + 4 <= end:
        length, kind = unpack(buf, off)
        if length < 4 or off + length > end:
            break
        attrs[kind & NLA_TYPE_MASK] = (off + 4, off + length)
        off += (length + 3) & ~3
    return attrs


def _error_message(buf: bytes, off: int, end: int, flags: int) -> str:
    """The kernel's extended-ack text after an NLMSG_ERROR, or ''."""
    if not flags & NLM_F_ACK_TLVS:
        return ""
    # payload: int error, then the original header (and only the header when capped)
    inner_len = _NLMSGHDR.unpack_from(buf, off + 4)[0] if off + 4 + 16 <= end else 16
    tlv_off = off + 4 + (inner_len if not flags & NLM_F_CAPPED else 16)
    for kind, start, stop in iter_attrs(buf, tlv_off, end):
        if kind == NLMSGERR_ATTR_MSG:
            return buf[start:stop].rstrip(b"\0").decode(errors="replace")
    return ""


class NetlinkSocket:
    """An rtnetlink socket inside one namespace.

    `dump(type, body)` streams the reply; `request(type, body, flags)` sends a
    non-dump request and waits for its acknowledgement.
    """

    def __init__(
        self,
        namespace: NetNamespace | None = None,
        protocol: int = NETLINK_ROUTE,
        groups: int = 0,
        *,
        strict: bool = True,
    ):
        try:
            if namespace is None:
                sock = socket.socket(
                    socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol
                )
            else:
                sock = namespace.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        except PermissionError:
            raise PrivilegeError("cannot open a netlink socket: permission denied") from None
        self._sock = sock
        self.namespace = namespace
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        for option in (NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK) if strict else (NETLINK_EXT_ACK,):
            try:
                sock.setsockopt(SOL_NETLINK, option, 1)
            except OSError:
                pass  # older kernels: filters are then applied in Python
        sock.bind((0, groups))
        self.port = sock.getsockname()[0]
        self._seq = 0
        self._peek = bytearray(16)

    def fileno(self) -> int:
        return self._sock.fileno()

    def join_group(self, group: int) -> None:
        """Receive the multicast group's events (NETLINK_ADD_MEMBERSHIP)."""
        self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def set_receive_buffer(self, size: int) -> None:
        """The socket buffer (SO_RCVBUFFORCE as root, else SO_RCVBUF)."""
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
        except OSError:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ sending
    def _send(self, msg_type: int, flags: int, body: bytes) -> int:
        self._seq += 1
        header = _NLMSGHDR.pack(16 + len(body), msg_type, flags, self._seq, 0)
        self._sock.send(header + body)
        return self._seq

    def recv(self) -> bytes:
        """One whole datagram from the socket (several messages; raises OSError).

        The datagram's size is peeked first (MSG_PEEK|MSG_TRUNC, as iproute2's
        rtnl_recvmsg does): a message larger than any fixed buffer, such as a
        link with hundreds of altnames, is received whole instead of being cut
        off by the kernel and lost.
        """
        size = self._sock.recv_into(self._peek, 16, socket.MSG_PEEK | socket.MSG_TRUNC)
        return self._sock.recv(size if size > _RECV_SIZE else _RECV_SIZE)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def dump_chunks(
        self, msg_type: int, body: bytes, *, what: str = "netlink"
    ) -> Iterator[tuple[bytes, list[tuple[int, int, int]]]]:
        """Send a dump request; per datagram received, yield (data, [(type, start, end)]).

        `start` is where the message payload begins in `data`.  This is the hot
        path of big tables: callers loop over a chunk's messages without a
        generator resume per message.  Raises DumpInterruptedError at the end of
        a dump the kernel flagged inconsistent (NLM_F_DUMP_INTR) or that lost
        messages (ENOBUFS), and NetlinkError for an error reply.
        """
        seq = self._send(msg_type, NLM_F_REQUEST | NLM_F_DUMP, body)
        interrupted = lost = False
        unpack = _NLMSGHDR.unpack_from
        recv = self.recv
        while True:
            try:
                data = recv()
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                lost = True  # read on to the end of the dump, then report it
                continue
            messages = []
            off, size = 0, len(data)
            while off + 16 <= size:
                length, kind, flags, mseq, _ = unpack(data, off)
                if length < 16 or off + length > size:
                    raise MalformedMessageError(what, f"a message claims {length} bytes")
                if mseq == seq:
                    if flags & NLM_F_DUMP_INTR:
                        interrupted = True
                    if kind > NLMSG_OVERRUN:
                        messages.append((kind, off + 16, off + length))
                    elif kind == NLMSG_DONE or kind == NLMSG_ERROR:
                        if messages:
                            yield data, messages
                        self._finish(data, off, length, kind, flags, what, interrupted)
                        if lost:
                            raise DumpInterruptedError(what, "lost messages (ENOBUFS)")
                        return
                off += (length + 3) & ~3
            if messages:
                yield data, messages

    def _finish(
        self,
        data: bytes,
        off: int,
        length: int,
        kind: int,
        flags: int,
        what: str,
        interrupted: bool,
    ) -> None:
        """Check the message that ends a dump (NLMSG_DONE or NLMSG_ERROR)."""
        code = _I32.unpack_from(data, off + 16)[0] if length >= 20 else 0
        if code < 0:
            detail = (
                _error_message(data, off + 16, off + length, flags) if kind == NLMSG_ERROR else ""
            )
            raise _netlink_error(-code, what, detail)
        if interrupted:
            raise DumpInterruptedError(what)

    def dump(self, msg_type: int, body: bytes, *, what: str = "netlink") -> Iterator[Message]:
        """Send a dump request; yield each reply message (type, data, start, end)."""
        for data, messages in self.dump_chunks(msg_type, body, what=what):
            for kind, start, end in messages:
                yield kind, data, start, end

    def get(self, msg_type: int, body: bytes, *, what: str = "netlink") -> Message:
        """Send a single (non-dump) request and return the kernel's reply message."""
        seq = self._send(msg_type, NLM_F_REQUEST, body)
        while True:
            data = self.recv()
            off = 0
            while off + 16 <= len(data):
                length, kind, flags, mseq, _ = _NLMSGHDR.unpack_from(data, off)
                if length < 16 or off + length > len(data):
                    raise MalformedMessageError(what, f"a message claims {length} bytes")
                if mseq == seq:
                    if kind == NLMSG_ERROR:
                        code = -_I32.unpack_from(data, off + 16)[0]
                        raise _netlink_error(
                            code, what, _error_message(data, off + 16, off + length, flags)
                        )
                    return kind, data, off + 16, off + length
                off += (length + 3) & ~3

    def request(self, msg_type: int, body: bytes, flags: int = 0, *, what: str = "netlink") -> None:
        """Send a request with NLM_F_ACK and wait for the kernel's answer."""
        seq = self._send(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, body)
        while True:
            data = self.recv()
            off = 0
            while off + 16 <= len(data):
                length, kind, mflags, mseq, _ = _NLMSGHDR.unpack_from(data, off)
                if length < 16 or off + length > len(data):
                    raise MalformedMessageError(what, f"a message claims {length} bytes")
                if mseq == seq and kind == NLMSG_ERROR:
                    code = -_I32.unpack_from(data, off + 16)[0]
                    if code:
                        raise _netlink_error(
                            code, what, _error_message(data, off + 16, off + length, mflags)
                        )
                    return
                off += (length + 3) & ~3


def _netlink_error(code: int, what: str, detail: str) -> NetlinkError:
    text = os.strerror(code)
    if code in (errno.EPERM, errno.EACCES):
        return PrivilegeError(f"{what}: {text} (needs CAP_NET_ADMIN)")
    suffix = f": {detail}" if detail else ""
    return NetlinkError(f"{what}: {text}{suffix}", code)


def dump_with_retry(
    open_dump: Callable[[], Iterator[T]], *, buffer_limit: int = 4096, retries: int = 3
) -> Iterator[T]:
    """Stream a dump, retrying it when the kernel flags it as interrupted.

    The first `buffer_limit` records are held back until the dump ends or the
    limit is passed, so small tables (the common case, and the one where an
    interface vanishing mid-dump matters) are retried transparently and
    printed once.  When every attempt is interrupted (the table keeps
    changing), the last one is shown, like iproute2 does, and then
    DumpInconsistentError (a warning) is raised; so it is for a big table
    interrupted after its rows began to stream.
    """
    return _retrying(open_dump, buffer_limit, retries, weigh=None)


def dump_chunks_with_retry(
    open_dump: Callable[[], Iterator[list[T]]], *, buffer_limit: int = 4096, retries: int = 3
) -> Iterator[list[T]]:
    """`dump_with_retry` for dumps that yield lists of records (one per datagram).

    The hot path of big tables: callers flatten the lists with
    `itertools.chain.from_iterable`, so no generator is resumed per record.
    `buffer_limit` counts records, not lists.
    """
    return _retrying(open_dump, buffer_limit, retries, weigh=len)


def _retrying(
    open_dump: Callable[[], Iterator[Any]],
    buffer_limit: int,
    retries: int,
    weigh: Callable[[Any], int] | None,
) -> Iterator[Any]:
    """The retry loop of both: items are weighed 1 each, or by `weigh` (a list's length)."""
    for attempt in range(retries + 1):
        held: list[Any] = []
        count = 0
        items = open_dump()
        try:
            for item in items:
                held.append(item)
                count += 1 if weigh is None else weigh(item)
                if count >= buffer_limit:
                    break
            else:
                yield from held
                return
        except DumpInterruptedError as exc:
            if attempt < retries:
                continue
            yield from held
            raise DumpInconsistentError(str(exc)) from None
        # large table: stream the rest
        yield from held
        try:
            yield from items
        except DumpInterruptedError as exc:
            raise DumpInconsistentError(str(exc)) from None
        return
