"""How a table fits the width of a terminal, and how text wraps in it.

One policy for every table, declared per column (`render.Column.priority`):

1. A value is never cut and never split inside a word: an address, a MAC, an
   interface or container name stays whole.  A cell may wrap onto further
   lines, but only after a space or a comma (the separators of the lists and
   phrases that cells hold), so a column is never narrower than its longest
   word or its header.
2. When the columns, each at its natural width, are wider than the terminal,
   the wide ones give up width evenly (their cells wrap), down to their
   longest word.
3. When even that does not fit, or a cell would wrap onto more than four
   lines, columns are hidden: the highest `priority` first (the rightmost of
   equals); priority 0 columns are never hidden, nor a column for the sake
   of its own tall cells.  A hidden column comes back
   when it fits beside the others after all, unless a column of a lower
   priority number stays hidden.  A dim line under the table names the
   hidden columns.
4. When the priority 0 columns alone cannot fit, the table becomes one block
   per record (a `HEADER  value` line per column, like psql's expanded mode),
   and a dim line says so.

Only a terminal gets this: piped output and --json keep every column and
every value whole (see render.Renderer).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Fit",
    "block_lines",
    "fit_widths",
    "join_cells",
    "longest_word",
    "table_lines",
    "words",
    "wrap_text",
]

_GAP = 2  # two spaces between columns, as tabulate's 'simple' format
#: a word: what runs up to a separator, with the separators after it
_WORD = re.compile(r"[^ ,]+[ ,]*|[ ,]+")
#: a cell wrapped onto more lines than this makes a row too tall to read: columns of
#: higher priority are hidden first to give it room
_TALL = 4
#: the widest label column of the block layout (a longer header pushes its value)
_LABEL_MAX = 16
#: dim text on a terminal (SGR 2), for the line under a table that says what is not shown
DIM, NORMAL = "\x1b[2m", "\x1b[0m"


def words(cell: str) -> list[str]:
    """`cell` as the pieces a line may break after: each word with its trailing separators."""
    return _WORD.findall(cell) or [cell]


def longest_word(cell: str) -> int:
    """The width of the widest piece of `cell` that must stay on one line."""
    return max((len(w.rstrip(" ")) for w in words(cell)), default=0)


def wrap_text(cell: str, width: int, *, hard: bool = False) -> list[str]:
    """`cell` in lines of at most `width` characters, broken only after spaces and commas.

    A word wider than `width` stays whole on a line of its own (it overflows),
    unless `hard`, where it is broken into `width`-sized pieces (the last
    resort of the block layout, for a value with no separator at all).
    """
    if len(cell) <= width:
        return [cell]
    lines: list[str] = []
    line = ""
    for word in words(cell):
        if line and len((line + word).rstrip(" ")) > width:
            lines.append(line.rstrip(" "))
            line = ""
        line += word
        while hard and len(line.rstrip(" ")) > width:
            lines.append(line[:width])
            line = line[width:]
    if line.strip(" ") or not lines:
        lines.append(line.rstrip(" "))
    return lines


@dataclass(frozen=True)
class Fit:
    """How a table is shown on a terminal that cannot hold it at its natural width.

    `shown` are the indexes of the columns shown, `caps` their widths (cells
    wrap at separators to stay within them), `hidden` the columns left out,
    most important last.  `blocks`: no table fits, show one block per record.
    """

    shown: tuple[int, ...] = ()
    caps: tuple[int, ...] = ()
    hidden: tuple[int, ...] = ()
    blocks: bool = False

    def cell_lines(self, row: Sequence[str]) -> list[list[str]]:
        """The physical lines of one table row (shown columns only): one, or more
        when a cell wraps."""
        parts = [wrap_text(row[i], cap) for i, cap in zip(self.shown, self.caps, strict=True)]
        return [list(line) for line in itertools.zip_longest(*parts, fillvalue="")]

    def headers(self, headers: Sequence[str]) -> list[str]:
        return [headers[i] for i in self.shown]

    def note(self, headers: Sequence[str], width: int) -> str | None:
        """The line under the table that says what the terminal does not show, or None."""
        if self.blocks:
            return f"(one block per record: the table needs more than {width} columns)"
        if not self.hidden:
            return None
        names = ", ".join(headers[i] or "#" for i in sorted(self.hidden))
        return f"(hidden at {width} columns: {names}; widen or pipe to see all)"


def fit_widths(
    cells: Sequence[Sequence[str]],
    headers: Sequence[str],
    width: int,
    priorities: Sequence[int] | None = None,
) -> Fit | None:
    """How the table of `cells` (a sample of its rows) fits `width` columns; None
    when it fits as it is.  See the module's docstring for the policy."""
    count = len(headers)
    priorities = list(priorities or [0] * count)
    natural = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    if sum(natural) + _GAP * (count - 1) <= width:
        return None
    floor = [max([len(h)] + [longest_word(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def layout(columns: Sequence[int]) -> tuple[tuple[int, ...] | None, int, set[int]]:
        """(the widths of `columns` or None when they cannot fit, the height of the
        tallest row, the columns that make a row taller than _TALL)."""
        if sum(floor[i] for i in columns) + _GAP * (len(columns) - 1) > width:
            return None, 0, set()
        caps = _share(
            [natural[i] for i in columns],
            [floor[i] for i in columns],
            width - _GAP * (len(columns) - 1),
        )
        height, tall = 1, set()
        for i, cap in zip(columns, caps, strict=True):
            if cap < natural[i]:
                lines = max(len(wrap_text(row[i], cap)) for row in cells)
                height = max(height, lines)
                if lines > _TALL:
                    tall.add(i)
        return caps, height, tall

    shown = list(range(count))
    hidden: list[int] = []
    caps, height, tall = layout(shown)
    while caps is None or tall:
        # hidden to make room: never a column for its own tall cells (they would go too)
        optional = [i for i in shown if priorities[i] > 0 and i not in tall]
        if not optional:
            if caps is None:
                return Fit(blocks=True)
            break  # tall rows, but nothing else to give them room
        victim = max(optional, key=lambda i: (priorities[i], i))
        shown.remove(victim)
        hidden.append(victim)
        caps, height, tall = layout(shown)
    # hiding a wide column may have left room for a narrow one, but a column never shows
    # while one of a lower priority number stays hidden
    blocked = None
    for i in sorted(hidden, key=lambda i: (priorities[i], i)):
        if blocked is not None and priorities[i] > blocked:
            break
        wider, taller, _ = layout(sorted([*shown, i]))
        if wider is None or taller > max(height, _TALL):
            blocked = priorities[i]
        else:
            shown, caps, height = sorted([*shown, i]), wider, taller
            hidden.remove(i)
    assert caps is not None
    return Fit(tuple(shown), caps, tuple(hidden))


def _share(natural: list[int], floor: list[int], room: int) -> tuple[int, ...]:
    """Widths between `floor` and `natural` summing to at most `room`: the widest
    columns give up width first, down to an even level (water-filling)."""
    if sum(natural) <= room:
        return tuple(natural)
    low, high = 0, max(natural)
    while low < high:  # the highest level that still fits
        level = (low + high + 1) // 2
        if sum(max(f, min(n, level)) for n, f in zip(natural, floor, strict=True)) <= room:
            low = level
        else:
            high = level - 1
    caps = [max(f, min(n, low)) for n, f in zip(natural, floor, strict=True)]
    spare = room - sum(caps)
    for i, n in enumerate(natural):  # the rounding left over, to the leftmost wrapped columns
        if spare <= 0:
            break
        if caps[i] < n:
            caps[i] += 1
            spare -= 1
    return tuple(caps)


def table_lines(headers: Sequence[str], fit: Fit, rows: Sequence[Sequence[str]]) -> list[str]:
    """A fitted table: header, rule and rows, each row on one line or more."""
    head = fit.headers(headers)
    out = [join_cells(head, fit.caps), join_cells(["-" * cap for cap in fit.caps], fit.caps)]
    for row in rows:
        out.extend(join_cells(line, fit.caps) for line in fit.cell_lines(row))
    return out


def join_cells(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Cells padded to their widths, two spaces apart, trailing blanks removed."""
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def block_lines(headers: Sequence[str], row: Sequence[str], width: int) -> list[str]:
    """One record as a block: a `HEADER  value` line per non-empty cell, values
    wrapped at separators to `width` with their continuation under the value."""
    label = min(max((len(h) for h in headers), default=0), _LABEL_MAX)
    room = max(width - label - _GAP, 8)
    out = []
    for header, cell in zip(headers, row, strict=True):
        if not cell:
            continue
        lines = wrap_text(cell, room, hard=True)
        out.append(f"{header:{label}}  {lines[0]}".rstrip())
        out.extend(f"{'':{label}}  {line}" for line in lines[1:])
    return out
