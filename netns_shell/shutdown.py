"""A request to end the whole shell (SIGTERM, SIGHUP), noticed between commands.

The signal handler records the request and interrupts what runs; a command
that stops cleanly on it (a capture closing its file) still finishes, and
the session then ends instead of running the next command.
"""

from __future__ import annotations

__all__ = ["clear", "interrupt", "interrupts", "request", "requested"]

_signal: int | None = None
_interrupts = 0


def request(signum: int) -> None:
    global _signal
    _signal = signum


def requested() -> int | None:
    """The signal that asked the shell to end, or None."""
    return _signal


def clear() -> None:
    global _signal
    _signal = None


def interrupt() -> None:
    """Record a Ctrl-C (SIGINT), also one a command caught to end itself (watch, capture)."""
    global _interrupts
    _interrupts += 1


def interrupts() -> int:
    """How many Ctrl-C the process has seen: a line stops when a command saw one."""
    return _interrupts
