"""The shell's own commands: help, exit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ExitShell
from ..render import Result
from .registry import Command, Param, Registry

if TYPE_CHECKING:
    from .context import Context

__all__ = ["command_help", "help_lines", "register"]


def help_lines(registry: Registry) -> Iterator[str]:
    """The command list `help` prints, generated from the registry."""
    rows = [
        (c.usage(), c.summary if c.source == "built-in" else f"{c.summary} [{c.source}]")
        for c in registry
    ]
    width = min(max(len(u) for u, _ in rows), 44)
    yield "Commands (help CMD for details; ';' separates commands):"
    for usage, summary in rows:
        if len(usage) > width:
            yield f"  {usage}"
            yield f"  {'':{width}}  {summary}"
        else:
            yield f"  {usage:{width}}  {summary}"
    yield ""
    yield "Tab completes commands, namespaces, interfaces and bridges; Ctrl-C cancels a command;"
    yield "Ctrl-D or 'exit' leaves. Add --json to a command (or to netns-shell) for JSON output."


def command_help(command: Command) -> Iterator[str]:
    """`help CMD`: usage, summary, options, details and examples."""
    yield f"usage: {command.usage()}"
    if command.aliases:
        yield f"aliases: {', '.join(command.aliases)}"
    if command.source != "built-in":
        yield f"from: {command.source}"
    yield ""
    yield command.summary
    if command.params:
        yield ""
        for p in command.params:
            label = ", ".join(p.flags) if p.flags else (p.metavar or p.dest.upper())
            if p.flags and p.metavar:
                label += f" {p.metavar}"
            yield f"  {label:22}  {p.help}"
    if command.details:
        yield ""
        yield command.details
    if command.examples:
        yield ""
        yield "examples:"
        for example in command.examples:
            yield f"  {example}"


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
