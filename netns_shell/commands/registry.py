"""Commands as rows in a registry: name, help, argument spec, handler.

One declarative `Param` list per command feeds the parser, `help`, the
generated docs and Tab completion.  Built-ins and plugins register the same
way; registering a name twice is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .grammar import parse_arguments, positive_int, positive_seconds
from .kinds import CompletionKind, CompletionKinds, Gather, builtin_kinds
from .spec import Command, Handler, Param

if TYPE_CHECKING:
    from ..render import Result
    from .context import Context

__all__ = [
    "Command",
    "Param",
    "Registry",
    "parse_arguments",
    "positive_int",
    "positive_seconds",
]


#: what fingers used to iproute2 and friends type -> the command here
_HABITS: dict[str, dict[str, str]] = {
    "ip": {
        **dict.fromkeys(("a", "addr", "address", "l", "li", "link"), "links"),
        **dict.fromkeys(("r", "ro", "route"), "routes"),
        **dict.fromkeys(("n", "ne", "neigh", "neighbor", "neighbour"), "neigh"),
        **dict.fromkeys(("ru", "rule"), "rule"),
        **dict.fromkeys(("mo", "monitor"), "watch"),
        **dict.fromkeys(("netns",), "ns"),
    },
    "bridge": {"fdb": "fdb", "link": "bridges", "monitor": "watch", "vlan": "bridges"},
}
_PROGRAMS = {
    "brctl": "bridges",
    "ss": "sockets",
    "netstat": "sockets",
    "tcpdump": "capture",
    "nsenter": "exec",
    "lsns": "ns",
    "ipvsadm": "ipvs",
    "dig": "dns",
    "nslookup": "dns",
    "iptables-save": "firewall",
    "ip6tables": "firewall",
    "ifconfig": "links",
    "addr": "links",
    "address": "links",
    "addresses": "links",
    "ethtool": "offloads",
    "tracepath": "traceroute",
    "mtr": "traceroute",
    "nc": "tcping",
    "netcat": "tcping",
    "telnet": "tcping",
    "drill": "dns",
}

#: what a key of the prompt does, for the commands other shells have for it
_KEYS = {
    "clear": "Ctrl-L clears the screen",
    "cls": "Ctrl-L clears the screen",
    "history": "Up/Down and Ctrl-R search the history",
}


def iproute2_habit(name: str, rest: Sequence[str] = ()) -> str | None:
    """The command for an iproute2 (or ss, tcpdump...) habit such as `ip a`, or None."""
    if name in _PROGRAMS:
        return _PROGRAMS[name]
    objects = _HABITS.get(name)
    if objects is None:
        return None
    words = [w for w in rest if not w.startswith("-")]
    return objects.get(words[0]) if words else None


@dataclass
class Registry:
    """The command table of one shell (an instance, never a module global).

    `loader`, when set, is called once, the first time a name is not found or
    the whole table is needed (help, completion): plugins load lazily, so a
    script that only runs built-in commands never imports them.
    """

    commands: dict[str, Command] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)
    #: what `add` records as a new command's source (a plugin's name while it loads)
    source: str = "built-in"
    loader: Callable[[Registry], None] | None = None
    #: what `Param.complete` can name (built-ins, and what plugins add)
    kinds: CompletionKinds = field(default_factory=builtin_kinds)

    def completion_kind(self, name: str, *, description: str = "") -> Callable[[Gather], Gather]:
        """Decorator: `func(namespace)` yields the words (or (word, description) pairs) Tab
        offers for params with `complete=name`.

        It runs on the completion refresher's thread after each command, never at Tab
        time; work inside the namespace through `namespace.run` or `namespace.socket`.
        """

        def register(func: Gather) -> Gather:
            kind = CompletionKind(name, description=description, gather=func, source=self.source)
            self.kinds.add(kind)
            return func

        return register

    def add(self, command: Command) -> Command:
        if command.source == "built-in" and self.source != "built-in":
            command = replace(command, source=self.source)
        for name in (command.name, *command.aliases):
            if name in self.commands or name in self._aliases:
                raise ValueError(f"command {name!r} is already registered")
        self.commands[command.name] = command
        for alias in command.aliases:
            self._aliases[alias] = command.name
        return command

    def load(self) -> None:
        """Run the loader (plugins) now, once."""
        loader, self.loader = self.loader, None
        if loader is not None:
            loader(self)

    def view(
        self, name: str, summary: str, *params: Param, columns: Sequence[Any], **options: Any
    ) -> Callable[[Callable[..., Iterable[dict]]], Callable]:
        """Decorator for a command that shows records: func(namespace, args) -> records.

        The function receives the current namespace handle (create sockets
        with `namespace.socket(...)` or work inside it with
        `namespace.run(...)`) and the parsed arguments, and returns or yields
        plain dicts; `columns` (render.Column) say how a terminal shows them,
        --json prints the dicts as they are.
        """

        def register(func: Callable[..., Iterable[dict]]) -> Callable[..., Iterable[dict]]:
            from ..render import Result

            def handler(session: Context, args: dict[str, Any]) -> Result:
                return Result.table(func(session.namespace, args), columns)

            handler.__doc__ = func.__doc__
            self.add(Command(name=name, summary=summary, handler=handler, params=params, **options))
            return func

        return register

    def command(
        self, name: str, summary: str, *params: Param, **options: Any
    ) -> Callable[[Handler], Handler]:
        """Decorator: register the function as the handler of `name`."""

        def register(handler: Handler) -> Handler:
            self.add(Command(name=name, summary=summary, handler=handler, params=params, **options))
            return handler

        return register

    def get(self, name: str) -> Command | None:
        found = self.commands.get(self._aliases.get(name, name))
        if found is None and self.loader is not None:
            self.load()
            found = self.commands.get(self._aliases.get(name, name))
        return found

    def lookup(self, name: str, rest: Sequence[str] = ()) -> Command:
        """The command called `name`; UsageError with a suggestion otherwise (`rest`, the
        words after it, tells `ip a` from `ip r`)."""
        command = self.get(name)
        if command is None:
            habit = iproute2_habit(name, rest)
            if habit and self.get(habit) is not None:
                typed = " ".join([name, *rest[:2]])
                raise UsageError(
                    f"unknown command '{name}'; did you mean '{habit}'? "
                    f"(for `{typed}`, use '{habit}' here)"
                )
            if name in _KEYS:
                raise UsageError(f"unknown command '{name}'; {_KEYS[name]}")
            hint = self.suggest(name)
            extra = f"; did you mean '{hint}'?" if hint else "; type 'help' for the list"
            raise UsageError(f"unknown command '{name}'{extra}")
        return command

    def suggest(self, name: str) -> str | None:
        candidates = difflib.get_close_matches(name, self.names(aliases=True), n=1, cutoff=0.6)
        if candidates:
            return candidates[0]
        prefixed = [n for n in self.names() if n.startswith(name)] if name else []
        return prefixed[0] if len(prefixed) == 1 else None

    def names(self, *, aliases: bool = False) -> list[str]:
        self.load()
        names = sorted(self.commands)
        return sorted(names + list(self._aliases)) if aliases else names

    def __iter__(self) -> Iterator[Command]:
        self.load()
        return iter(self.commands[name] for name in sorted(self.commands))
