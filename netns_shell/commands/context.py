"""What a command handler is given: the narrow context of one running shell.

A handler is `handler(session, args) -> Result`; `session` (the name stays,
for plugins and handlers written against it) is anything with the members
below.  The shell's `Session` is one; a test or a script may pass its own.
This module imports neither the registry nor the session, so the two no
longer name each other: both depend on this protocol.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..catalogue import Catalogue
    from ..namespace import NetNamespace
    from ..render import Console

__all__ = ["CommandTable", "Context"]


class CommandTable(Protocol):
    """The commands a shell knows (for `help`): see registry.Registry."""

    def lookup(self, name: str) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Context(Protocol):
    """The context of a command handler."""

    #: the namespaces on the host: listing, engine names, resolution, labels
    catalogue: Catalogue
    #: the output streams and settings (the renderer decides text or JSON)
    console: Console
    #: the commands, for `help`
    registry: CommandTable
    #: True with --read-only: commands that would write files or change state refuse
    read_only: bool

    @property
    def namespace(self) -> NetNamespace:
        """The namespace the command acts on (owned by the shell: do not close it)."""
        ...

    def label(self, ns: NetNamespace | None = None) -> str:
        """How to name a namespace (default: the current one) to the user."""
        ...

    def switch_to(self, ns: NetNamespace) -> None:
        """Make `ns` the current namespace (`use`)."""
        ...

    def go_home(self) -> None:
        """Back to the namespace the shell process itself is in (`host`)."""
        ...
