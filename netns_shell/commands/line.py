"""Splitting a shell line into words and operators, in one linear pass.

The rules are the POSIX shell's, reduced to what a line of netns-shell
commands needs: blanks separate words; `'...'` is literal; inside `"..."` a
backslash escapes only `"` and `\\`; outside quotes a backslash makes the
next character literal; unquoted `;` separates commands, and a command may
end in `| PROGRAM ARGS ...` (more `|` stages allowed) and/or `> FILE` or
`>> FILE` (see `parse_line`).  Nothing is ever expanded or evaluated.
Each token keeps where it starts in the line, so completion can replace
exactly the word under the cursor, quotes included.

The scan is linear in the length of the line (a 2 MB word takes
milliseconds): pieces are appended to a list and joined once per word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

__all__ = [
    "OPERATORS",
    "CommandLine",
    "Redirect",
    "Token",
    "parse_line",
    "quote",
    "split_commands",
    "tokenize",
]

#: unquoted characters that end a word and stand alone (`>>` is one operator too)
OPERATORS = frozenset(";|>")

_BLANKS = " \t\r\n"
# characters that need no quoting: what shlex.quote leaves alone
_SAFE = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


@dataclass(frozen=True)
class Token:
    """A word (`op` False) or an operator such as ';', and where it starts in the line."""

    text: str
    start: int
    end: int
    op: bool = False
    #: the quote still open at the end of the line ('' when the word is complete)
    open_quote: str = ""


def tokenize(line: str, *, partial: bool = False) -> list[Token]:
    """The tokens of `line`.

    An unbalanced quote is a UsageError, unless `partial` (completion of a line
    being typed): then the last word is returned as typed so far, with
    `open_quote` set.
    """
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch in _BLANKS:
            i += 1
            continue
        if ch in OPERATORS:
            width = 2 if line.startswith(">>", i) else 1
            tokens.append(Token(line[i : i + width], i, i + width, op=True))
            i += width
            continue
        start = i
        pieces: list[str] = []
        open_quote = ""
        while i < n:
            ch = line[i]
            if ch in _BLANKS or ch in OPERATORS:
                break
            if ch == "'":
                end = line.find("'", i + 1)
                if end < 0:
                    pieces.append(line[i + 1 :])
                    open_quote, i = "'", n
                    break
                pieces.append(line[i + 1 : end])
                i = end + 1
            elif ch == '"':
                i, closed = _double_quoted(line, i + 1, pieces)
                if not closed:
                    open_quote = '"'
                    break
            elif ch == "\\":
                if i + 1 < n:
                    pieces.append(line[i + 1])
                i += 2
            else:
                match = _PLAIN.match(line, i)
                assert match is not None  # ch itself is plain
                pieces.append(match.group())
                i = match.end()
        if open_quote and not partial:
            raise UsageError(f"cannot parse the line: no closing quotation ({open_quote})")
        tokens.append(Token("".join(pieces), start, min(i, n), open_quote=open_quote))
    return tokens


_PLAIN = re.compile(r"[^ \t\r\n'\"\\;|>]+")


def _double_quoted(line: str, i: int, pieces: list[str]) -> tuple[int, bool]:
    """Scan a "..." body from `i`; returns (index after the closing quote, closed)."""
    n = len(line)
    while i < n:
        end = _IN_DOUBLE.search(line, i)
        if end is None:
            pieces.append(line[i:])
            return n, False
        pieces.append(line[i : end.start()])
        i = end.start()
        if line[i] == '"':
            return i + 1, True
        # a backslash: it escapes only " and \ (and is kept before anything else)
        if i + 1 < n and line[i + 1] in '"\\':
            pieces.append(line[i + 1])
            i += 2
        else:
            pieces.append("\\")
            i += 1
    return n, False


_IN_DOUBLE = re.compile(r'["\\]')


@dataclass(frozen=True)
class Redirect:
    """`> FILE` (truncate) or `>> FILE` (append) at the end of a command."""

    path: str
    append: bool = False


@dataclass(frozen=True)
class CommandLine:
    """One `;`-separated command: its words, the host programs its output is piped
    through (`| grep x | wc -l`), and where the last of them writes (`> FILE`)."""

    words: tuple[str, ...]
    programs: tuple[tuple[str, ...], ...] = ()
    redirect: Redirect | None = None

    @property
    def plain(self) -> bool:
        """No pipe and no redirection: the command writes to the console."""
        return not self.programs and self.redirect is None


def parse_line(line: str) -> list[CommandLine]:
    """The commands of a line, with their pipes and redirections; UsageError when malformed.

    Grammar of one command: `WORDS [| WORDS]... [> FILE | >> FILE]`; a `;`
    ends it.  A quoted or escaped `|`, `>` or `;` is an ordinary word.
    """
    commands: list[CommandLine] = []
    for group in _groups(tokenize(line)):
        if group:
            commands.append(_command_line(group))
    return commands


def _groups(tokens: list[Token]) -> list[list[Token]]:
    groups: list[list[Token]] = [[]]
    for token in tokens:
        if token.op and token.text == ";":
            groups.append([])
        else:
            groups[-1].append(token)
    return groups


def _command_line(tokens: list[Token]) -> CommandLine:
    stages: list[list[str]] = [[]]
    redirect: Redirect | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if redirect is not None:
            raise UsageError(
                f"unexpected '{token.text}' after '> {redirect.path}': "
                "a redirection ends the command"
            )
        if not token.op:
            stages[-1].append(token.text)
            continue
        if not stages[-1]:
            what = "a command" if len(stages) == 1 else "a program"
            raise UsageError(f"'{token.text}' needs {what} before it")
        if token.text == "|":
            stages.append([])
            continue
        if i >= len(tokens) or tokens[i].op:
            raise UsageError(f"'{token.text}' needs a file name after it")
        redirect = Redirect(tokens[i].text, append=token.text == ">>")
        i += 1
    if not stages[-1]:
        raise UsageError("'|' needs a program after it")
    words, *programs = stages
    return CommandLine(tuple(words), tuple(map(tuple, programs)), redirect)


def split_commands(line: str) -> list[list[str]]:
    """Split a line into commands (on unquoted ';') made of shell-like words.

    Only each command's own words: see `parse_line` for its pipe and redirection.
    """
    return [list(command.words) for command in parse_line(line)]


def quote(word: str) -> str:
    """`word` as the line parser reads it back: unchanged when plain, else single-quoted."""
    if word and _SAFE.fullmatch(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"
