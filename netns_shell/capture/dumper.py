"""Writing savefiles: libpcap's dumper, fed by pcap_dispatch entirely in C.

`dispatch_to` passes libpcap's own `pcap_dump` as the per-packet callback
(its C address), so no Python runs per packet and ctypes releases the GIL
for the whole batch.  Write errors are read from the stdio stream behind
the dumper (ferror), since pcap_dump itself cannot report them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

from ..errors import CaptureError
from ..files import open_output
from .pcap import Handle, libpcap

__all__ = ["Dumper", "dispatch_to", "open_dumper", "open_dumper_fd"]


class Dumper:
    """An open pcap savefile (`pcap_dumper_t`).

    `fd` is a descriptor of the same file kept by us (-1 for a stream such as
    standard output), so that after a write error the file can be cut after
    its last whole record without opening the path again.
    """

    def __init__(self, pointer: int, target: str, fd: int = -1):
        self.pointer = pointer
        self.target = target
        self.fd = fd
        #: errno seen after the last pcap_dispatch into this dumper (see `flush`)
        self.last_errno = 0

    def failed(self) -> bool:
        """True once a write to the file failed (ferror on its stdio stream)."""
        return bool(_libc().ferror(libpcap().pcap_dump_file(self.pointer)))

    def flush(self) -> int:
        """Flush buffered records; 0, or the errno of the failed write."""
        ctypes.set_errno(0)
        if libpcap().pcap_dump_flush(self.pointer) != 0:
            return ctypes.get_errno() or self.last_errno or errno.EIO
        if self.failed():  # a write inside pcap_dump failed earlier
            return self.last_errno or errno.EIO
        return 0

    def position(self) -> int:
        """Bytes written so far (pcap_dump_ftell64; -1 when not seekable)."""
        return int(libpcap().pcap_dump_ftell64(self.pointer))

    def close(self) -> None:
        """Flush and close the file (pcap_dump_close, then our descriptor); idempotent."""
        self.close_stream()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def close_stream(self) -> None:
        """Flush and close libpcap's stream, keeping `fd` (see `close`)."""
        if self.pointer:
            libpcap().pcap_dump_close(self.pointer)
            self.pointer = 0

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to release it with
            pass


def open_dumper(handle: Handle, path: str) -> Dumper:
    """A pcap file with the handle's link type and snapshot length.

    The file is opened by `files.open_output` (no symlink followed, created
    0600, only a regular file or a FIFO reused) and handed to libpcap open
    (pcap_dump_fopen): libpcap never opens the path itself.
    """
    fd = open_output(path, what="capture file")
    try:
        dumper = open_dumper_fd(handle, fd, path)
    except BaseException:
        os.close(fd)
        raise
    dumper.fd = fd
    return dumper


def open_dumper_fd(handle: Handle, fd: int, label: str) -> Dumper:
    """pcap_dump_fopen on a duplicate of `fd` (closing the dumper closes only the copy)."""
    copy = os.dup(fd)
    stream = _libc().fdopen(copy, b"wb")
    if not stream:
        os.close(copy)
        raise CaptureError(f"cannot write to {label}: {os.strerror(ctypes.get_errno())}")
    pointer = libpcap().pcap_dump_fopen(handle.pointer, stream)
    if not pointer:
        _libc().fclose(stream)
        raise CaptureError(f"cannot write to {label}: {handle.error()}")
    return Dumper(pointer, label)


def dispatch_to(handle: Handle, dumper: Dumper, count: int = -1) -> int:
    """pcap_dispatch with libpcap's pcap_dump as callback: no Python runs per packet.

    Writes the packets that are ready (at most `count`; -1: all) and returns
    how many; 0 when none were ready (non-blocking mode) or at the end of a
    savefile; PCAP_ERROR_BREAK after `breakloop`; PCAP_ERROR (the message is
    in `handle.error()`).  The GIL is released meanwhile.
    """
    lib = libpcap()
    callback = ctypes.cast(lib.pcap_dump, ctypes.c_void_p).value
    ctypes.set_errno(0)
    n = int(lib.pcap_dispatch(handle.pointer, count, callback, dumper.pointer))
    dumper.last_errno = ctypes.get_errno()
    return n


_libc_handle: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    """The C library, for the stdio calls around a dumper (fdopen, ferror, fclose)."""
    global _libc_handle
    if _libc_handle is None:
        from ..namespace import c_library

        libc = c_library()  # the one handle on the C library (dlopen(NULL))
        libc.fdopen.restype = ctypes.c_void_p
        libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.ferror.argtypes = [ctypes.c_void_p]
        _libc_handle = libc
    return _libc_handle
