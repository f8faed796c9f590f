"""The shell's own commands: help, exit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ExitShell
from ..render import Result, Wrapped
from .registry import Command, Param, Registry

if TYPE_CHECKING:
    from .context import Context

__all__ = ["command_help", "help_lines", "register"]


def help_lines(registry: Registry) -> Iterator[str]:
    """The command list `help` prints, generated from the registry.

    Lines are `Wrapped`: a terminal gets them wrapped at spaces, a summary's
    continuation under the summary, a usage's under its command.
    """
    rows = [
        (c.usage(), c.summary if c.source == "built-in" else f"{c.summary} [{c.source}]")
        for c in registry
    ]
    width = min(max(len(u) for u, _ in rows), 44)
    yield "Commands (help CMD for details; ';' separates commands):"
    for usage, summary in rows:
        if len(usage) > width:
            yield Wrapped(f"  {usage}", 4, groups=True)
            yield Wrapped.entry("", summary, width + 4)
        else:
            yield Wrapped.entry(f"  {usage}", summary, width + 4)
    yield ""
    yield Wrapped("Tab completes commands, namespaces, interfaces and bridges.")
    yield Wrapped("Ctrl-C cancels a command; Ctrl-D or 'exit' leaves.")
    yield Wrapped("Add --json to a command (or to netns-shell) for JSON output.")


def command_help(command: Command) -> Iterator[str]:
    """`help CMD`: usage, summary, options, details and examples (`Wrapped` lines:
    continuations under the text they continue)."""
    yield Wrapped(f"usage: {command.usage()}", 7, groups=True)
    if command.aliases:
        yield f"aliases: {', '.join(command.aliases)}"
    if command.source != "built-in":
        yield f"from: {command.source}"
    yield ""
    yield Wrapped(command.summary)
    if command.params:
        yield ""
        for p in command.params:
            label = ", ".join(p.flags) if p.flags else (p.metavar or p.dest.upper())
            if p.flags and p.metavar:
                label += f" {p.metavar}"
            yield Wrapped.entry(f"  {label}", p.help, 26)
    if command.details:
        yield ""
        yield Wrapped(command.details)
    if command.examples:
        yield ""
        yield "examples:"
        for example in command.examples:
            yield Wrapped(f"  {example}", 6)


def help_(session: Context, args: dict[str, Any]) -> Result:
    if args["command"]:
        return Result.text(command_help(session.registry.lookup(args["command"])))
    return Result.text(help_lines(session.registry))


def exit_(session: Context, args: dict[str, Any]) -> Result:
    raise ExitShell(args["status"] or 0)


def register(registry: Registry) -> None:
    registry.command(
        "help",
        "list the commands, or explain one",
        Param("command", metavar="CMD", complete="command", help="a command"),
        aliases=("?",),
        examples=("help", "help fdb"),
    )(help_)
    registry.command(
        "exit",
        "leave the shell (Ctrl-D does the same)",
        Param("status", metavar="STATUS", convert=int, help="exit status (default 0)"),
        aliases=("quit",),
    )(exit_)
