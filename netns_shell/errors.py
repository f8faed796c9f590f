"""Typed errors: every expected failure becomes one line at the error boundary.

`UsageError` means the user asked for something malformed (exit status 2);
every other `NetnsShellError` is a runtime failure (exit status 1).
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "ExitShell",
    "NamespaceError",
    "NetlinkError",
    "NetnsShellError",
    "NotFoundError",
    "PrivilegeError",
    "UsageError",
]


class NetnsShellError(Exception):
    """An expected failure, reported to the user as one line."""

    exit_status = 1


class UsageError(NetnsShellError):
    """Malformed command line, unknown command, option or argument."""

    exit_status = 2


class NamespaceError(NetnsShellError):
    """A path, PID or name does not lead to a usable network namespace."""


class NotFoundError(NetnsShellError):
    """A named object (interface, bridge, table, namespace) does not exist."""


class PrivilegeError(NetnsShellError):
    """The process lacks a privilege (root or a capability) the operation needs."""


class NetlinkError(NetnsShellError):
    """The kernel answered a netlink request with an error."""

    def __init__(self, message: str, errno: int = 0):
        super().__init__(message)
        self.errno = errno


class CaptureError(NetnsShellError):
    """A packet capture could not start or could not continue."""


class ExitShell(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by `exit`/`quit` to leave the shell with a status."""

    def __init__(self, status: int = 0):
        super().__init__(status)
        self.status = status
