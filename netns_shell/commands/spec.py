"""A command's declaration: its `Param` list and the `Command` row (no behaviour).

Below both the registry (which holds the rows) and the grammar (which reads
words against a `Param` list), so neither needs the other to be described.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..render import Result
    from .context import Context

__all__ = ["Command", "Handler", "Param"]

Handler = Callable[["Context", dict[str, Any]], "Result"]


@dataclass(frozen=True)
class Param:
    """One argument of a command.

    * a switch: `flags` set, `metavar` None (stores `const`);
    * an option with a value: `flags` set and `metavar` names the value;
      iproute2-style keywords (`dev IF`, `table ID`) are options too;
    * a positional: no `flags`; `rest` takes every remaining word.

    `complete` names the kind of value for Tab completion, a kind of the
    registry's `kinds` (commands/kinds.py): built in are 'namespace',
    'interface', 'bridge', 'table', 'command' (a netns-shell command),
    'program' (a host executable) and 'file'; plugins add more.

    `changes_state` says what the option does beyond reading ("creates a container on
    each node's engine"): `--read-only` then refuses the command when the option is
    given, with those words, before the handler runs.  `changes_state_with` narrows it
    to some values of the option (`--via container`), the others staying allowed.
    """

    dest: str
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    help: str = ""
    const: Any = True
    convert: Callable[[str], Any] | None = None
    choices: tuple[str, ...] = ()
    complete: str | None = None
    rest: bool = False
    required: bool = False
    changes_state: str = ""
    changes_state_with: tuple[str, ...] = ()

    @property
    def is_switch(self) -> bool:
        return bool(self.flags) and self.metavar is None

    @property
    def is_positional(self) -> bool:
        return not self.flags

    def changes_state_as(self, value: Any) -> bool:
        """Whether the parsed `value` of this param (None: not given) changes state."""
        if not self.changes_state or value is None or value == []:
            return False
        return not self.changes_state_with or value in self.changes_state_with

    def usage_of(self, value: Any) -> str:
        """The param as given with its parsed `value` (`--via container`)."""
        if self.is_positional:
            return str(value)
        return self.flags[0] if self.is_switch else f"{self.flags[0]} {value}"

    def usage(self) -> str:
        if self.is_positional:
            text = f"{self.metavar or self.dest.upper()}{' ...' if self.rest else ''}"
            return text if self.required else f"[{text}]"
        flag = self.flags[0]
        return f"[{flag}]" if self.is_switch else f"[{flag} {self.metavar}]"


@dataclass(frozen=True)
class Command:
    """A registered command."""

    name: str
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    details: str = ""
    examples: tuple[str, ...] = ()
    #: True when the command changes state on the host (disabled by --read-only).
    changes_state: bool = False
    #: True when the command moves the session to another namespace (use, host): when it
    #: fails, the rest of the line is not run
    moves: bool = False
    source: str = "built-in"

    def usage(self) -> str:
        seen: list[str] = []
        switches_by_dest: dict[str, list[str]] = {}
        for p in self.params:
            if p.is_switch:
                switches_by_dest.setdefault(p.dest, []).append(p.flags[0])
        done: set[str] = set()
        for p in self.params:
            if p.is_switch and len(switches_by_dest[p.dest]) > 1:
                if p.dest not in done:
                    seen.append("[" + "|".join(switches_by_dest[p.dest]) + "]")
                    done.add(p.dest)
                continue
            seen.append(p.usage())
        return " ".join([self.name, *seen])

    def state_changes(self, args: dict[str, Any]) -> list[tuple[str, str]]:
        """What the parsed `args` would change: (the option as given, what it does) per
        param that changes state; empty for a command line that only reads."""
        return [
            (p.usage_of(args[p.dest]), p.changes_state)
            for p in self.params
            if p.changes_state_as(args.get(p.dest))
        ]

    def option_words(self) -> list[str]:
        return [flag for p in self.params for flag in p.flags]
