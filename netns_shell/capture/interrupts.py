"""Ending a capture on Ctrl-C or SIGTERM without an exception in the middle of a write.

While a capture runs, SIGINT and SIGTERM only set a flag that the capture
loop checks between batches (every ~100 ms at most), so the file is always
flushed and closed and the counts printed.  The previous handlers come back
when the capture ends.  Off the main thread (no signal handlers possible)
a KeyboardInterrupt is caught by the loops instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .. import shutdown

__all__ = ["StopRequest"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """A flag set by a signal (or by `stop()`); `signal` says which one."""

    def __init__(self) -> None:
        self.signal: int | None = None
        #: how many times a stop was asked for (a second Ctrl-C skips the final drain)
        self.requests = 0

    @property
    def requested(self) -> bool:
        return self.requests > 0

    def stop(self, signum: int | None = None) -> None:
        self.signal = signum
        self.requests += 1

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGINT:
            shutdown.request(signum)  # SIGTERM/SIGHUP: end the shell once the file is closed
        else:
            shutdown.interrupt()
        self.stop(signum)

    @contextmanager
    def handling_signals(self) -> Iterator[StopRequest]:
        """Route SIGINT/SIGTERM to this flag for the duration of the block."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {signum: signal.signal(signum, self._handler) for signum in _SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
