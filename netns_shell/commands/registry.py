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
from .kinds import CompletionKind, CompletionKinds, Gather, builtin_kinds

if TYPE_CHECKING:
    from ..render import Result
    from ..session import Session

__all__ = [
    "Command",
    "Param",
    "Registry",
    "parse_arguments",
    "positive_int",
    "positive_seconds",
]

Handler = Callable[["Session", dict[str, Any]], "Result"]


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

    @property
    def is_switch(self) -> bool:
        return bool(self.flags) and self.metavar is None

    @property
    def is_positional(self) -> bool:
        return not self.flags

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

    def option_words(self) -> list[str]:
        return [flag for p in self.params for flag in p.flags]


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

            def handler(session: Session, args: dict[str, Any]) -> Result:
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

    def lookup(self, name: str) -> Command:
        """The command called `name`; UsageError with a suggestion otherwise."""
        command = self.get(name)
        if command is None:
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


def positive_int(text: str) -> int:
    """A Param converter: a whole number above zero (counts)."""
    value = int(text)
    if value <= 0:
        raise UsageError(f"expected a positive number, got '{text}'")
    return value


def positive_seconds(text: str) -> float:
    """A Param converter: a number of seconds above zero (durations, timeouts)."""
    value = float(text)
    if not 0 < value <= _MAX_SECONDS:  # also refuses NaN and infinity
        raise UsageError(
            f"expected a positive number of seconds (at most {_MAX_SECONDS}), got '{text}'"
        )
    return value


#: a year and then some: beyond it timers overflow (and nobody means it)
_MAX_SECONDS = 100_000_000


def parse_arguments(command: Command, words: list[str]) -> dict[str, Any]:
    """Match `words` against the command's params; UsageError when they do not fit."""
    args: dict[str, Any] = {}
    for p in command.params:
        args.setdefault(p.dest, [] if p.rest else None)
    by_flag = {flag: p for p in command.params for flag in p.flags}
    positionals = [p for p in command.params if p.is_positional]
    i = 0
    only_positionals = False
    while i < len(words):
        word = words[i]
        i += 1
        if not only_positionals and word == "--":
            only_positionals = True
            continue
        if not only_positionals:
            flag, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
            param = by_flag.get(flag)
            if param is not None:
                if param.is_switch:
                    if inline:
                        raise _usage(command, f"option {flag} takes no value")
                    args[param.dest] = param.const
                    continue
                if inline:
                    value = inline
                elif i < len(words):
                    value = words[i]
                    i += 1
                else:
                    raise _usage(command, f"{flag} needs a value ({param.metavar})")
                args[param.dest] = _convert(command, param, value, flag)
                continue
            if _is_short_cluster(word):
                # attached values and combined switches, as people type them:
                # -c1, -ieth0, -4a, -nc5 (tcpdump, ping, ip)
                i = _parse_cluster(command, by_flag, word, words, i, args)
                continue
            if word.startswith("-") and len(word) > 1 and not _is_number(word):
                raise _usage(command, f"unknown option '{word}'")
        if not positionals:
            raise _usage(command, f"unexpected argument '{word}'")
        param = positionals[0]
        if param.rest:
            label = param.metavar or param.dest
            args[param.dest].extend(_convert(command, param, w, label) for w in [word, *words[i:]])
            break
        args[param.dest] = _convert(command, param, word, param.metavar or param.dest)
        positionals.pop(0)
    for p in command.params:
        if p.required and not args.get(p.dest):
            raise _usage(command, f"missing {p.metavar or p.dest.upper()}")
    return args


def _is_short_cluster(word: str) -> bool:
    """-XYZ: one dash, two or more characters after it, not a negative number."""
    return len(word) > 2 and word[0] == "-" and word[1] != "-" and not _is_number(word)


def _parse_cluster(
    command: Command,
    by_flag: dict[str, Param],
    word: str,
    words: list[str],
    i: int,
    args: dict[str, Any],
) -> int:
    """Read one -XYZ word into `args`; return the index of the next word.

    Each letter is a one-letter switch until one takes a value: the rest of the
    word is then that value (`-c1`, `-ieth0`), or the next word when nothing is left
    (`-nc 5`).
    """
    for pos in range(1, len(word)):
        flag = "-" + word[pos]
        param = by_flag.get(flag)
        if param is None:
            raise _usage(command, f"unknown option '{flag}' in '{word}'")
        if param.is_switch:
            args[param.dest] = param.const
            continue
        value = word[pos + 1 :]
        if not value:
            if i >= len(words):
                raise _usage(command, f"{flag} needs a value ({param.metavar})")
            value = words[i]
            i += 1
        args[param.dest] = _convert(command, param, value, flag)
        return i
    return i


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _convert(command: Command, param: Param, value: str, label: str) -> Any:
    if param.choices and value not in param.choices:
        raise _usage(command, f"{label}: expected one of {', '.join(param.choices)}, got '{value}'")
    if param.convert is None:
        return value
    try:
        return param.convert(value)
    except UsageError as exc:
        raise _usage(command, str(exc)) from None
    except (ValueError, TypeError):
        raise _usage(command, f"{label}: invalid value '{value}'") from None


def _usage(command: Command, message: str) -> UsageError:
    return UsageError(f"{command.name}: {message} (usage: {command.usage()})")
