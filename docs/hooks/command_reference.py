"""MkDocs hook: the command reference, generated from the command registry.

`docs/commands.md` holds two markers that this hook replaces when MkDocs
reads the page (`on_page_markdown`), so `mkdocs build` and `mkdocs serve`
both show the current registry and the reference never drifts from the code:

* ``<!-- netns-shell:commands -->``: every command of
  `netns_shell.commands.build_registry()` plus the plugins shipped in the
  repository's `plugins/` directory: usage, summary, aliases, a table of its
  arguments, details, examples, and where it comes from;
* ``<!-- netns-shell:cli-options -->``: the options of
  `netns_shell.cli.build_parser()`.

It also turns links written as ``[text](repo:PATH)`` into links to PATH in
the source repository (`repo_url` in mkdocs.yml); while no `repo_url` is set
they render as the path in code style, so `--strict` never sees a file
outside docs/.

Only the shipped plugins are documented: plugins installed through entry
points or found in NETNS_SHELL_PLUGIN_PATH belong to one machine, not to
netns-shell.  A shipped plugin that fails to load is a warning, so
`mkdocs build --strict` fails.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any

COMMANDS_MARKER = "<!-- netns-shell:commands -->"
CLI_MARKER = "<!-- netns-shell:cli-options -->"
REFERENCE_PAGE = "commands.md"

log = logging.getLogger("mkdocs.hooks.command_reference")

_REPO_LINK = re.compile(r"\[([^\]]+)\]\(repo:([^)\s]+)\)")
_MARKDOWN_SPECIALS = re.compile(r"([\\*_\[\]{}#!])")


# ----------------------------------------------------------- MkDocs events
def on_config(config: Any) -> Any:
    """Document the checkout next to mkdocs.yml, not whatever netns_shell is installed."""
    root = _repo_root(config)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """`mkdocs serve` rebuilds when a shipped plugin changes (they are reloaded each build;
    restart it after changing a built-in command: those modules stay imported)."""
    plugins = os.path.join(_repo_root(config), "plugins")
    if os.path.isdir(plugins):
        server.watch(plugins)
    return server


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri == REFERENCE_PAGE:
        for marker in (COMMANDS_MARKER, CLI_MARKER):
            if marker not in markdown:
                log.warning("%s: the marker %s is missing", REFERENCE_PAGE, marker)
        if COMMANDS_MARKER in markdown:
            registry = load_registry(log.warning)
            markdown = markdown.replace(COMMANDS_MARKER, render_commands(registry))
        if CLI_MARKER in markdown:
            markdown = markdown.replace(CLI_MARKER, render_cli_options())
    return _resolve_repo_links(markdown, config)


def _repo_root(config: Any) -> str:
    return os.path.dirname(os.path.abspath(config.config_file_path))


def _resolve_repo_links(markdown: str, config: Any) -> str:
    repo_url = (config.repo_url or "").rstrip("/")
    branch = (config.extra or {}).get("repo_branch", "main")

    def link(match: re.Match[str]) -> str:
        text, path = match.group(1), match.group(2)
        if not repo_url:  # no link target: show where the file is
            if text.strip("`") == path:
                return f"`{path}`"
            return f"{text} (`{path}` in the repository)"
        return f"[{text}]({repo_url}/blob/{branch}/{path})"

    return _REPO_LINK.sub(link, markdown)


# --------------------------------------------------------------- registry
def load_registry(warn=None):
    """The built-in commands plus the shipped plugins (no others); `warn` gets failures."""
    from netns_shell.commands import build_registry
    from netns_shell.extensions import ENTRY_POINT_GROUP, PluginLoader, builtin_plugin_names

    shipped = set(builtin_plugin_names())
    registry = build_registry()
    PluginLoader(warn or log.warning, disabled=_entry_point_names(ENTRY_POINT_GROUP) - shipped)(
        registry
    )
    for command in list(registry):
        if not _documented_source(command.source, shipped):
            registry.commands.pop(command.name)
    return registry


def _entry_point_names(group: str) -> set[str]:
    from importlib.metadata import entry_points

    try:
        return {ep.name for ep in entry_points(group=group)}
    except Exception:  # broken metadata of an unrelated distribution
        return set()


def _documented_source(source: str, shipped: set[str]) -> bool:
    return source == "built-in" or source.removeprefix("plugin ") in shipped


# -------------------------------------------------------------- rendering
def inline(text: str) -> str:
    """Text for a Markdown paragraph or table cell: `code` kept, everything else literal."""
    parts = text.split("`")
    out = []
    for index, part in enumerate(parts):
        escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(part, quote=False))
        escaped = escaped.replace("|", "&#124;")
        if index % 2 == 0:
            out.append(escaped)
        elif index < len(parts) - 1:
            out.append(f"<code>{escaped}</code>")
        else:  # an unpaired backtick stays a backtick
            out.append("\\`" + escaped)
    return "".join(out)


def _code(text: str) -> str:
    return inline(f"`{text}`")


def _fence(lines: Iterable[str]) -> list[str]:
    return ["```text", *lines, "```"]


def _source(command: Any) -> str:
    if command.source == "built-in":
        return "built-in"
    name = command.source.removeprefix("plugin ")
    return f"shipped plugin {_code(name)} ([plugins/{name}.py](repo:plugins/{name}.py))"


def _param_rows(command: Any) -> Iterator[str]:
    yield "| argument | value | help |"
    yield "|---|---|---|"
    for p in command.params:
        if p.is_positional:
            name = _code(p.metavar or p.dest.upper())
            value = "the remaining words" if p.rest else "positional"
            if p.required:
                value += ", required"
        else:
            name = ", ".join(_code(flag) for flag in p.flags)
            value = _code(p.metavar) if p.metavar else "switch"
        if p.choices:
            value += "; one of " + ", ".join(_code(c) for c in p.choices)
        help_text = inline(p.help)
        if p.changes_state:
            values = " or ".join(_code(v) for v in p.changes_state_with) or "given"
            effect = inline(p.changes_state)
            help_text += f" Changes state when {values} ({effect}): refused by `--read-only`."
        yield f"| {name} | {value} | {help_text} |"


def render_command(command: Any) -> list[str]:
    lines = [f"### {command.name} {{#{anchor(command.name)}}}", ""]
    lines += [*_fence([command.usage()]), ""]
    lines += [inline(command.summary[:1].upper() + command.summary[1:]) + ".", ""]
    facts = []
    if command.aliases:
        facts.append("Aliases: " + ", ".join(_code(a) for a in command.aliases) + ".")
    facts.append(f"Source: {_source(command)}.")
    if command.changes_state:
        facts.append("Changes state: disabled by `--read-only`.")
    lines += [" ".join(facts), ""]
    if command.params:
        lines += [*_param_rows(command), ""]
    if command.details:
        lines += [inline(command.details), ""]
    if command.examples:
        lines += ["Examples:", "", *_fence(command.examples), ""]
    return lines


def anchor(name: str) -> str:
    return "cmd-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def render_commands(registry: Any) -> str:
    commands = list(registry)
    lines = ["| command | what it does | source |", "|---|---|---|"]
    for c in commands:
        lines.append(f"| [{_code(c.name)}](#{anchor(c.name)}) | {inline(c.summary)} | {c.source} |")
    lines.append("")
    for command in commands:
        lines += render_command(command)
    return "\n".join(lines)


def _option_value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "switch"
    if action.metavar:
        return _code(str(action.metavar))
    if action.choices:
        return "one of " + ", ".join(_code(str(c)) for c in action.choices)
    return _code(action.dest.upper())


def render_cli_options() -> str:
    from netns_shell.cli import build_parser

    parser = build_parser()
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100)
    lines = [*_fence([parser.format_usage().strip()]), ""]
    lines += [inline(parser.description or ""), ""]
    lines += ["| option | value | help |", "|---|---|---|"]
    for action in parser._actions:  # argparse keeps no public list of its options
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            name = ", ".join(_code(o) for o in action.option_strings)
            value = _option_value(action)
        else:
            name = _code(action.metavar or action.dest.upper())
            value = "positional, optional" if action.nargs == "?" else "positional"
        help_text = action.help or ""
        if isinstance(action, argparse._AppendAction):
            help_text += "" if "repeated" in help_text else " (may be repeated)"
        lines.append(f"| {name} | {value} | {inline(help_text)} |")
    lines.append("")
    if parser.epilog:
        lines += [inline(parser.epilog), ""]
    return "\n".join(lines)
