"""Splitting a shell line into words and operators, in one linear pass.

The rules are the POSIX shell's, reduced to what a line of netns-shell
commands needs: blanks separate words; `'...'` is literal; inside `"..."` a
backslash escapes only `"` and `\\`; outside quotes a backslash makes the
next character literal; unquoted `;` separates commands.  Nothing is ever
expanded or evaluated.  Each token keeps where it starts in the line, so
completion can replace exactly the word under the cursor, quotes included.

The scan is linear in the length of the line (a 2 MB word takes
milliseconds): pieces are appended to a list and joined once per word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

__all__ = ["OPERATORS", "Token", "quote", "split_commands", "tokenize"]

#: unquoted characters that end a word and stand alone
OPERATORS = frozenset(";")

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
            tokens.append(Token(ch, i, i + 1, op=True))
            i += 1
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


_PLAIN = re.compile(r"[^ \t\r\n'\"\\;]+")


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


def split_commands(line: str) -> list[list[str]]:
    """Split a line into commands (on unquoted ';') made of shell-like words."""
    commands: list[list[str]] = [[]]
    for token in tokenize(line):
        if token.op:
            commands.append([])
        else:
            commands[-1].append(token.text)
    return [words for words in commands if words]


def quote(word: str) -> str:
    """`word` as the line parser reads it back: unchanged when plain, else single-quoted."""
    if word and _SAFE.fullmatch(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"
