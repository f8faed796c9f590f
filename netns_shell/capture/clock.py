"""The timing of a capture loop: --duration, the status line, flushes, notices."""

from __future__ import annotations

import time

from .interrupts import StopRequest
from .source import TIMEOUT_MS

__all__ = ["Clock"]

PROGRESS_EVERY = 0.5  # status line updates
FLUSH_EVERY = 1.0  # savefile flushes (a reader of the growing file sees whole seconds)
NOTICE_EVERY = 1.0  # "N packets not shown" lines


class Clock:
    """A capture's deadline and schedules, on the monotonic clock."""

    def __init__(self, duration: float | None):
        self.start = time.monotonic()
        self.deadline = self.start + duration if duration else None
        self._next = {
            "progress": self.start + PROGRESS_EVERY,
            "flush": self.start + FLUSH_EVERY,
            "notice": self.start + NOTICE_EVERY,
        }

    @property
    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def why_stop(self, stop: StopRequest) -> str:
        """'interrupted', 'duration' or '' (go on)."""
        if stop.requested:
            return "interrupted"
        if self.expired:
            return "duration"
        return ""

    def wait_ms(self) -> int:
        """How long poll may sleep: one block timeout, cut short by the deadline."""
        limit = TIMEOUT_MS
        if self.deadline is not None:
            left = int((self.deadline - time.monotonic()) * 1000) + 1
            limit = min(limit, max(0, left))
        return limit

    def _due(self, what: str, every: float) -> bool:
        now = time.monotonic()
        if now < self._next[what]:
            return False
        self._next[what] = now + every
        return True

    def progress_due(self) -> bool:
        return self._due("progress", PROGRESS_EVERY)

    def flush_due(self) -> bool:
        return self._due("flush", FLUSH_EVERY)

    def notice_due(self) -> bool:
        return self._due("notice", NOTICE_EVERY)
