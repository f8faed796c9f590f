"""A thin, typed ctypes binding of libpcap (Debian `libpcap0.8`, 1.10).

Only what capture needs: live and offline handles, BPF compilation,
reading packets, statistics and link-type names (writing savefiles is in
`dumper`).  Failures raise `CaptureError` (`BadFilterError` for a filter
libpcap cannot compile) carrying libpcap's own message.

libpcap is loaded on first use, so the shell starts without it.  ctypes
releases the GIL while a libpcap function runs.  Live handles are used in
non-blocking mode with poll(2) by the capture loops, so `breakloop` (which
wakes a blocked poll through an eventfd in libpcap 1.10) is only needed by
callers that block in libpcap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CaptureError, UsageError

__all__ = [
    "DLT_EN10MB",
    "DLT_LINUX_SLL",
    "DLT_LINUX_SLL2",
    "PCAP_ERROR",
    "PCAP_ERROR_BREAK",
    "BadFilterError",
    "Cursor",
    "Handle",
    "Packet",
    "Stats",
    "datalink_description",
    "datalink_name",
    "libpcap",
    "library_version",
    "with_path",
]

DLT_EN10MB = 1
DLT_LINUX_SLL = 113
DLT_LINUX_SLL2 = 276
PCAP_ERROR = -1
PCAP_ERROR_BREAK = -2
PCAP_ERROR_NO_SUCH_DEVICE = -5
_ERRBUF_SIZE = 256
_NETMASK_UNKNOWN = 0xFFFFFFFF


#: longer filter expressions are refused (tcpdump's own examples stay under 200 characters)
MAX_FILTER_CHARS = 8192
#: libpcap gets this long to compile a filter before the capture gives up on it
COMPILE_SECONDS = 10.0


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class PacketHeader(ctypes.Structure):
    """struct pcap_pkthdr."""

    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


class _Stat(ctypes.Structure):
    _fields_ = [
        ("ps_recv", ctypes.c_uint),
        ("ps_drop", ctypes.c_uint),
        ("ps_ifdrop", ctypes.c_uint),
    ]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "pcap_create": (_P, [_S, _S]),
    "pcap_set_snaplen": (_I, [_P, _I]),
    "pcap_set_buffer_size": (_I, [_P, _I]),
    "pcap_set_timeout": (_I, [_P, _I]),
    "pcap_set_promisc": (_I, [_P, _I]),
    "pcap_set_immediate_mode": (_I, [_P, _I]),
    "pcap_activate": (_I, [_P]),
    "pcap_statustostr": (_S, [_I]),
    "pcap_geterr": (_S, [_P]),
    "pcap_compile": (_I, [_P, ctypes.POINTER(_BpfProgram), _S, _I, ctypes.c_uint32]),
    "pcap_setfilter": (_I, [_P, ctypes.POINTER(_BpfProgram)]),
    "pcap_freecode": (None, [ctypes.POINTER(_BpfProgram)]),
    "pcap_open_offline": (_P, [_S, _S]),
    "pcap_open_dead": (_P, [_I, _I]),
    "pcap_dump_open": (_P, [_P, _S]),
    "pcap_dump_fopen": (_P, [_P, _P]),
    "pcap_dump_flush": (_I, [_P]),
    "pcap_dump_close": (None, [_P]),
    "pcap_dump_file": (_P, [_P]),
    "pcap_dump_ftell64": (ctypes.c_int64, [_P]),
    "pcap_dispatch": (_I, [_P, _I, _P, _P]),
    "pcap_next_ex": (
        _I,
        [_P, ctypes.POINTER(ctypes.POINTER(PacketHeader)), ctypes.POINTER(_P)],
    ),
    "pcap_breakloop": (None, [_P]),
    "pcap_stats": (_I, [_P, ctypes.POINTER(_Stat)]),
    "pcap_datalink": (_I, [_P]),
    "pcap_set_datalink": (_I, [_P, _I]),
    "pcap_list_datalinks": (_I, [_P, ctypes.POINTER(ctypes.POINTER(_I))]),
    "pcap_free_datalinks": (None, [ctypes.POINTER(_I)]),
    "pcap_datalink_val_to_name": (_S, [_I]),
    "pcap_datalink_val_to_description": (_S, [_I]),
    "pcap_snapshot": (_I, [_P]),
    "pcap_setnonblock": (_I, [_P, _I, _S]),
    "pcap_get_selectable_fd": (_I, [_P]),
    "pcap_close": (None, [_P]),
    "pcap_lib_version": (_S, []),
}


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        raise CaptureError(
            "libpcap is not installed (apt-get install libpcap0.8): capture needs it"
        ) from None
    for fname, (restype, argtypes) in _SIGNATURES.items():
        func = getattr(lib, fname)
        func.restype = restype
        func.argtypes = argtypes
    return lib


_lib: ctypes.CDLL | None = None


def libpcap() -> ctypes.CDLL:
    """libpcap, loaded on first use (so the shell starts without it)."""
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def _text(raw: bytes | None) -> str:
    return raw.decode(errors="replace") if raw else ""


def library_version() -> str:
    """libpcap's version string, e.g. 'libpcap version 1.10.3 (with TPACKET_V3)'."""
    return _text(libpcap().pcap_lib_version())


def compile_filter(
    expression: str, linktype: int, snaplen: int, *, seconds: float = COMPILE_SECONDS
) -> _BpfProgram:
    """A compiled BPF program for `expression` (the caller frees it with pcap_freecode).

    The compilation runs on a worker thread; this thread waits, so signals
    (Ctrl-C, SIGTERM) are handled at once, and after `seconds` the expression
    is refused as too complex.  An abandoned compilation finishes (and frees
    what it made) on its own.
    """
    import threading

    if len(expression) > MAX_FILTER_CHARS:
        raise BadFilterError(
            f"filter expression is {len(expression)} characters long; "
            f"at most {MAX_FILTER_CHARS} are accepted"
        )
    lib = libpcap()
    state: dict[str, Any] = {"abandoned": False}
    lock = threading.Lock()
    done = threading.Event()

    def work() -> None:
        dead = lib.pcap_open_dead(linktype, snaplen)
        program = _BpfProgram()
        status = (
            -1
            if not dead
            else lib.pcap_compile(
                dead, ctypes.byref(program), expression.encode(), 1, _NETMASK_UNKNOWN
            )
        )
        message = _text(lib.pcap_geterr(dead)) if dead and status != 0 else "out of memory"
        with lock:
            abandoned = state["abandoned"]
            if not abandoned:
                state.update(status=status, program=program, message=message)
        if abandoned and status == 0:
            lib.pcap_freecode(ctypes.byref(program))
        if dead:
            lib.pcap_close(dead)
        done.set()

    threading.Thread(target=work, name="bpf-compile", daemon=True).start()
    try:
        finished = done.wait(seconds)
    finally:
        with lock:
            if "status" not in state:
                state["abandoned"] = True
    if not finished and "status" not in state:
        raise BadFilterError(f"filter too complex: libpcap did not compile it within {seconds:g} s")
    if state["status"] != 0:
        raise BadFilterError(f"bad filter '{expression}': {state['message']}")
    return state["program"]


def datalink_name(linktype: int) -> str:
    """The DLT name libpcap uses ('EN10MB', 'LINUX_SLL2'), or the number."""
    return _text(libpcap().pcap_datalink_val_to_name(linktype)) or str(linktype)


def datalink_description(linktype: int) -> str:
    """The human name of a link type ('Ethernet', 'Linux cooked v2')."""
    return _text(libpcap().pcap_datalink_val_to_description(linktype)) or "unknown"


class BadFilterError(UsageError):
    """libpcap could not compile a filter expression (its message says why)."""


@dataclass(frozen=True)
class Stats:
    """PACKET_STATISTICS as libpcap reports them (cumulative since activation)."""

    received: int  # passed the filter (includes dropped ones)
    dropped: int  # passed the filter, but the kernel had no room in the buffer
    interface_dropped: int


@dataclass(frozen=True)
class Packet:
    """One packet copied out of libpcap's buffer."""

    time: float
    length: int  # on the wire
    data: bytes  # captured bytes (at most the snapshot length)


class Cursor:
    """pcap_next_ex with its out-parameters allocated once: ~3 us per packet.

    `advance()` returns pcap_next_ex's status (1: a packet; 0: none ready;
    -1: error; -2: end of file); after 1, `length` is cheap and `packet()`
    copies the bytes out (only for packets that are decoded).  The packet
    stays valid until the next `advance()`.
    """

    def __init__(self, handle: Handle):
        self._header = ctypes.POINTER(PacketHeader)()
        self._data = ctypes.c_void_p()
        self.advance: Callable[[], int] = functools.partial(
            libpcap().pcap_next_ex,
            handle.pointer,
            ctypes.byref(self._header),
            ctypes.byref(self._data),
        )

    @property
    def length(self) -> int:
        return int(self._header.contents.len)

    def packet(self) -> Packet:
        h = self._header.contents
        data = ctypes.string_at(self._data.value, h.caplen)
        return Packet(h.ts.tv_sec + h.ts.tv_usec / 1e6, h.len, data)


class Handle:
    """A pcap_t: a live capture (`create` + `activate`) or a savefile (`open_file`)."""

    def __init__(self, pointer: int, source: str):
        self.pointer = pointer
        self.source = source
        self._cursor: Cursor | None = None

    # ------------------------------------------------------------ opening
    @classmethod
    def create(cls, device: str) -> Handle:
        """pcap_create: an inactive live handle on `device` ('any' for all)."""
        errbuf = ctypes.create_string_buffer(_ERRBUF_SIZE)
        pointer = libpcap().pcap_create(device.encode(), errbuf)
        if not pointer:
            raise CaptureError(f"{device}: {_text(errbuf.value)}")
        return cls(pointer, device)

    @classmethod
    def open_file(cls, path: str) -> Handle:
        """pcap_open_offline: a handle reading the savefile `path` ('-' for stdin)."""
        errbuf = ctypes.create_string_buffer(_ERRBUF_SIZE)
        pointer = libpcap().pcap_open_offline(os.fsencode(path), errbuf)
        if not pointer:
            raise CaptureError(with_path("cannot read", path, _text(errbuf.value)))
        return cls(pointer, path)

    def configure(
        self,
        *,
        snaplen: int,
        buffer_size: int,
        timeout_ms: int,
        promisc: bool,
        immediate: bool = False,
    ) -> None:
        """Settings of an inactive live handle (before `activate`)."""
        lib = libpcap()
        lib.pcap_set_snaplen(self.pointer, snaplen)
        lib.pcap_set_buffer_size(self.pointer, buffer_size)
        lib.pcap_set_timeout(self.pointer, timeout_ms)
        lib.pcap_set_promisc(self.pointer, int(promisc))
        lib.pcap_set_immediate_mode(self.pointer, int(immediate))

    def activate(self) -> list[str]:
        """pcap_activate: open the packet socket.  Returns warnings; raises on errors.

        The socket belongs to the namespace of the calling thread (architecture.md fact 1).
        """
        lib = libpcap()
        status = lib.pcap_activate(self.pointer)
        if status == 0:
            return []
        detail = _text(lib.pcap_geterr(self.pointer)) or _text(lib.pcap_statustostr(status))
        if status > 0:
            return [detail]
        if status == PCAP_ERROR_NO_SUCH_DEVICE:
            raise CaptureError(f"{self.source}: no such interface ({detail})")
        raise CaptureError(f"{self.source}: {detail}")

    # ------------------------------------------------------------ facts
    def error(self) -> str:
        """The last error message of this handle (pcap_geterr)."""
        return _text(libpcap().pcap_geterr(self.pointer))

    @property
    def linktype(self) -> int:
        return int(libpcap().pcap_datalink(self.pointer))

    @property
    def snaplen(self) -> int:
        return int(libpcap().pcap_snapshot(self.pointer))

    def linktypes(self) -> list[int]:
        """Every link type the device offers (pcap_list_datalinks)."""
        lib = libpcap()
        array = ctypes.POINTER(_I)()
        count = lib.pcap_list_datalinks(self.pointer, ctypes.byref(array))
        if count < 0:
            return [self.linktype]
        try:
            return [array[i] for i in range(count)]
        finally:
            lib.pcap_free_datalinks(array)

    def set_linktype(self, linktype: int) -> None:
        if libpcap().pcap_set_datalink(self.pointer, linktype) != 0:
            raise CaptureError(f"{self.source}: {self.error()}")

    def stats(self) -> Stats | None:
        """Kernel counters (pcap_stats), or None for a savefile."""
        stat = _Stat()
        if libpcap().pcap_stats(self.pointer, ctypes.byref(stat)) != 0:
            return None
        return Stats(stat.ps_recv, stat.ps_drop, stat.ps_ifdrop)

    def selectable_fd(self) -> int:
        return int(libpcap().pcap_get_selectable_fd(self.pointer))

    # ------------------------------------------------------------ filter
    def set_filter(self, expression: str) -> None:
        """Compile `expression` (tcpdump syntax) and attach it (SO_ATTACH_FILTER).

        Raises BadFilterError carrying libpcap's message for a bad expression.
        libpcap's optimiser can take minutes on a huge expression and cannot be
        interrupted, so the expression is bounded in size and compiled on a
        worker thread (against a dead handle of the same link type): Ctrl-C,
        SIGTERM or the time limit abandon it there.
        """
        lib = libpcap()
        program = compile_filter(expression, self.linktype, self.snaplen)
        try:
            if lib.pcap_setfilter(self.pointer, ctypes.byref(program)) != 0:
                raise CaptureError(f"cannot attach filter '{expression}': {self.error()}")
        finally:
            lib.pcap_freecode(ctypes.byref(program))

    def set_nonblocking(self, enabled: bool = True) -> None:
        errbuf = ctypes.create_string_buffer(_ERRBUF_SIZE)
        if libpcap().pcap_setnonblock(self.pointer, int(enabled), errbuf) != 0:
            raise CaptureError(f"{self.source}: {_text(errbuf.value)}")

    # ------------------------------------------------------------ reading
    def next_packet(self) -> Packet | int:
        """pcap_next_ex: a Packet, or the status (0 timeout/none ready, -1 error, -2 end)."""
        cursor = self.cursor()
        status = cursor.advance()
        return cursor.packet() if status == 1 else status

    def cursor(self) -> Cursor:
        """A reusable pcap_next_ex reader (the fast path of the live view)."""
        if self._cursor is None:
            self._cursor = Cursor(self)
        return self._cursor

    def breakloop(self) -> None:
        """Ask a running loop to return (safe from another thread)."""
        if self.pointer:
            libpcap().pcap_breakloop(self.pointer)

    def close(self) -> None:
        """Close the capture (pcap_close); idempotent."""
        self._cursor = None
        if self.pointer:
            libpcap().pcap_close(self.pointer)
            self.pointer = 0

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to release it with
            pass

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def with_path(action: str, path: str, message: str) -> str:
    """libpcap says '<path>: <reason>'; make it '<action> <path>: <reason>'."""
    reason = message[len(path) + 2 :] if message.startswith(path + ": ") else message
    return f"{action} {path}: {reason}"
