"""What a plugin needs to add a command: import from here (API version 1).

    from netns_shell.plugin import API_VERSION, Column, Param

    def register(registry):
        @registry.view("hello", "say which namespace this is",
                       columns=(Column.of("INODE", "inode"),))
        def hello(namespace, args):
            yield {"inode": namespace.inode}

`registry.view` registers a command whose function receives the current
namespace handle and the parsed arguments and yields plain dicts.
Netlink numbers and struct layouts are in `netns_shell.netlink.constants`;
a `NetlinkSocket` made inside the namespace streams a dump with
`sock.dump(type, body)` (sequence numbers, ENOBUFS and interrupted dumps
checked) and `dump_with_retry` retries an interrupted one.
`registry.command` registers a full handler `(session, args) -> Result`;
`registry.completion_kind(name)` adds words Tab offers for `Param(complete=name)`.
Work that must happen inside the namespace goes through `namespace.run(f)`
or a socket made with `namespace.socket(...)`: the shell's own threads
never switch namespace.  Raise NetnsShellError (or a subclass) for an
expected failure: it becomes one line.  Mark commands that change state
with `changes_state=True` so `--read-only` disables them.
"""

from __future__ import annotations

from .commands.kinds import CompletionKind
from .commands.registry import Command, Param, Registry
from .errors import NetlinkError, NetnsShellError, NotFoundError, PrivilegeError, UsageError
from .extensions import API_VERSION
from .namespace import NetNamespace
from .netlink.core import (
    DumpInconsistentError,
    NetlinkSocket,
    dump_with_retry,
    iter_attrs,
    parse_attrs,
)
from .render import Column, Result

__all__ = [
    "API_VERSION",
    "Column",
    "Command",
    "CompletionKind",
    "DumpInconsistentError",
    "NetNamespace",
    "NetlinkError",
    "NetlinkSocket",
    "NetnsShellError",
    "NotFoundError",
    "Param",
    "PrivilegeError",
    "Registry",
    "Result",
    "UsageError",
    "dump_with_retry",
    "iter_attrs",
    "parse_attrs",
]
