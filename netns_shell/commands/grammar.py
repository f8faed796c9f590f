"""The one reading of a command's words against its `Param` list.

`Walker` consumes words one at a time and says which param each (part of
a) word belongs to; `parse_arguments` (the dispatcher) and Tab completion
(`completion.expected_at`) both walk with it, so what the parser accepts at
a position is what completion offers there:

* options: `-c 5`, `--count 5`, `--count=5`, iproute2 keywords `dev eth0`;
* short clusters as people type them: `-c1`, `-ieth0`, combined switches
  `-4a`, `-nc5` and `-nc 5` (tcpdump, ping, ip);
* `--` ends the options; a `rest` positional takes every word after its first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from .spec import Command, Param

__all__ = ["Next", "Step", "Walker", "parse_arguments", "positive_int", "positive_seconds"]


@dataclass(frozen=True)
class Step:
    """A param given by (part of) a word: a switch, an option's value or a positional."""

    param: Param
    #: the text of the value (a switch: its `const`)
    value: Any
    #: how an error names it: the flag, or the positional's metavar
    label: str


@dataclass(frozen=True)
class Next:
    """What the grammar accepts for a word being typed (see `Walker.next`)."""

    #: the param whose value the word is (None: no value expected, only `options`)
    param: Param | None = None
    #: the leading part of the word that names an option ('-i', '-ni', '--count='); the value
    #: follows it
    attached: str = ""
    #: the typed part of the value (or of the option, when `param` is None)
    value: str = ""
    #: option words accepted instead (flags or keywords not given yet)
    options: tuple[str, ...] = ()
    #: a word after the first of a `rest` positional (a program's arguments)
    rest_tail: bool = False


class Walker:
    """Reads a command's words one by one (see the module's docstring)."""

    def __init__(self, command: Command):
        self.command = command
        self.by_flag = {flag: p for p in command.params for flag in p.flags}
        self.positionals = [p for p in command.params if p.is_positional]
        self.only_positionals = False
        #: an option given without its value yet: (param, flag)
        self.pending: tuple[Param, str] | None = None
        #: the `rest` positional once its first word came
        self.rest: Param | None = None
        #: the option words given so far
        self.given: set[str] = set()

    def feed(self, word: str) -> list[Step]:
        """The params `word` gives (none for `--` or a flag waiting for its value).

        Raises UsageError (naming the command and its usage) for a word that does not fit.
        """
        if self.pending is not None:
            (param, flag), self.pending = self.pending, None
            return [Step(param, word, flag)]
        if self.rest is not None:
            return [Step(self.rest, word, _label(self.rest))]
        if not self.only_positionals:
            if word == "--":
                self.only_positionals = True
                return []
            flag, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
            param = self.by_flag.get(flag)
            if param is not None:
                self.given.add(flag)
                if param.is_switch:
                    if inline:
                        raise self.error(f"option {flag} takes no value")
                    return [Step(param, param.const, flag)]
                if inline:
                    return [Step(param, inline, flag)]
                self.pending = (param, flag)
                return []
            if _is_short_cluster(word):
                return self._cluster(word)
            if word.startswith("-") and len(word) > 1 and not _is_number(word):
                raise self.error(f"unknown option '{word}'")
        if not self.positionals:
            raise self.error(f"unexpected argument '{word}'")
        param = self.positionals[0]
        if param.rest:
            self.rest = param
        else:
            self.positionals.pop(0)
        return [Step(param, word, _label(param))]

    def _cluster(self, word: str) -> list[Step]:
        """-XYZ: each letter a one-letter switch until one takes a value: the rest of the
        word is then that value (`-c1`, `-ieth0`), or the next word when nothing is left."""
        steps: list[Step] = []
        for pos in range(1, len(word)):
            flag = "-" + word[pos]
            param = self.by_flag.get(flag)
            if param is None:
                raise self.error(f"unknown option '{flag}' in '{word}'")
            self.given.add(flag)
            if param.is_switch:
                steps.append(Step(param, param.const, flag))
                continue
            value = word[pos + 1 :]
            if value:
                steps.append(Step(param, value, flag))
            else:
                self.pending = (param, flag)
            break
        return steps

    def finish(self) -> None:
        """Raise UsageError when the words ended while an option waited for its value."""
        if self.pending is not None:
            param, flag = self.pending
            raise self.error(f"{flag} needs a value ({param.metavar})")

    def next(self, typed: str) -> Next:
        """What the grammar accepts for the word `typed` so far, after the words fed."""
        if self.pending is not None:
            return Next(self.pending[0], value=typed)
        if self.rest is not None:
            return Next(self.rest, value=typed, rest_tail=True)
        positional = self.positionals[0] if self.positionals else None
        if self.only_positionals:
            return Next(positional, value=typed)
        if typed.startswith("--") and "=" in typed:
            flag, _, value = typed.partition("=")
            param = self.by_flag.get(flag)
            if param is None or param.is_switch:
                return Next()
            return Next(param, attached=flag + "=", value=value)
        if _is_short_cluster(typed):
            return self._typing_cluster(typed)
        if typed.startswith("-") and not _is_number(typed):
            return Next(value=typed, options=self._options(dashed=True))
        return Next(positional, value=typed, options=self._options(dashed=False))

    def _typing_cluster(self, typed: str) -> Next:
        for pos in range(1, len(typed)):
            param = self.by_flag.get("-" + typed[pos])
            if param is None:
                return Next(value=typed, options=self._options(dashed=True))
            if not param.is_switch:
                return Next(param, attached=typed[: pos + 1], value=typed[pos + 1 :])
        return Next(value=typed, options=self._options(dashed=True))

    def _options(self, *, dashed: bool) -> tuple[str, ...]:
        """Option words not given yet: flags (`dashed`) or iproute2-style keywords."""
        return tuple(
            flag
            for p in self.command.params
            for flag in p.flags
            if flag not in self.given and flag.startswith("-") == dashed
        )

    def error(self, message: str) -> UsageError:
        return _usage(self.command, message)


def parse_arguments(command: Command, words: list[str]) -> dict[str, Any]:
    """Match `words` against the command's params; UsageError when they do not fit."""
    args: dict[str, Any] = {}
    for p in command.params:
        args.setdefault(p.dest, [] if p.rest else None)
    walker = Walker(command)
    for word in words:
        for step in walker.feed(word):
            param = step.param
            if param.is_switch:
                args[param.dest] = step.value
            elif param.rest:
                args[param.dest].append(_convert(command, param, step.value, step.label))
            else:
                args[param.dest] = _convert(command, param, step.value, step.label)
    walker.finish()
    for p in command.params:
        if p.required and not args.get(p.dest):
            raise _usage(command, f"missing {p.metavar or p.dest.upper()}")
    return args


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


def _label(param: Param) -> str:
    return param.metavar or param.dest


def _is_short_cluster(word: str) -> bool:
    """-XYZ: one dash, two or more characters after it, not a negative number."""
    return len(word) > 2 and word[0] == "-" and word[1] != "-" and not _is_number(word)


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _convert(command: Command, param: Param, value: str, label: str) -> Any:
    if param.choices and value not in param.choices:
        raise _usage(command, f"{label}: expected one of {', '.join(param.choices)}, got '{value}'")
    convert: Callable[[str], Any] | None = param.convert
    if convert is None:
        return value
    try:
        return convert(value)
    except UsageError as exc:
        raise _usage(command, str(exc)) from None
    except (ValueError, TypeError):
        raise _usage(command, f"{label}: invalid value '{value}'") from None


def _usage(command: Command, message: str) -> UsageError:
    return UsageError(f"{command.name}: {message} (usage: {command.usage()})")
