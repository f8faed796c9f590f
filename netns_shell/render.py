"""The one place records become text: tables, plain aligned lines, or JSON.

Handlers return a `Result` (records plus the columns that show them); the
CLI and the REPL hand it to a `Renderer`.  Records are consumed as a stream:

* JSON: one array per result, written record by record (ASCII-only, so a
  name with control bytes or invalid UTF-8 still gives valid JSON);
* plain (output is not a terminal): a header and aligned lines, column
  widths taken from the first rows, the rest streamed with the same widths;
* table (a terminal): tabulate; a table taller than the screen goes through
  the pager, with widths from the first screenful.  A table wider than the
  terminal is fitted to it (layout.py: cells wrap at separators, columns of
  low priority are hidden, or one block per record), never cut.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import IO, Any

from .layout import DIM, NORMAL, Fit, block_lines, fit_widths, join_cells, table_lines, wrap_text
from .records import Shared, SharedRecord
from .sanitize import for_terminal, without_controls

__all__ = [
    "Column",
    "ColumnReadsError",
    "Console",
    "Renderer",
    "Result",
    "Wrapped",
    "check_columns",
    "format_cell",
    "silence_stdout",
    "traced_reads",
]

Record = dict[str, Any]
_WIDTH_SAMPLE = 1000


@dataclass(frozen=True)
class Column:
    """A column of a human-readable table: its header and how to get a cell.

    `key` is set for columns that show one record key as is (the renderer then
    reads it directly); `safe` marks values that can never hold control
    characters (numbers, addresses from inet_ntop), which skip sanitizing.

    The keys a computed column reads are found by tracing `value` (see
    `traced_reads`), never taken on trust: with SharedRecords the renderer
    reuses a cell for every record of a Shared when the trace shows it reads
    none of their own keys.  `reads`, when given, is a claim checked against
    the trace: a key read outside it raises ColumnReadsError (a wrong list is
    a bug to fix, not a row to print with another row's value).

    `priority` says what goes when a terminal is too narrow for the table (as
    kubectl's column priority): 0, the key columns (names, kinds, states,
    addresses, problems), are always shown; higher numbers are hidden first.
    No value is ever cut: cells wrap after spaces and commas (see layout.py).
    """

    header: str
    value: Callable[[Record], Any]
    key: str | None = None
    safe: bool = False
    #: the record keys `value` may read (None: not declared); checked, see above
    reads: tuple[str, ...] | None = None
    #: 0: always shown on a terminal; higher: hidden first when the table is too wide
    priority: int = 0

    @classmethod
    def of(cls, header: str, key: str, *, safe: bool = False, priority: int = 0) -> Column:
        """A column showing record[key]."""
        return cls(
            header, lambda r: r.get(key), key=key, safe=safe, reads=(key,), priority=priority
        )


@dataclass
class Result:
    """What a command hands back: records and how to show them, or text."""

    records: Iterable[Record] = ()
    columns: Sequence[Column] = ()
    lines: Iterable[str] = ()
    message: str | None = None
    status: int = 0
    #: JSON documents are printed only for results that carry records.
    has_records: bool = False
    #: records arrive over time (a live capture): write each one at once
    live: bool = False
    #: the text form of the records, used instead of a table when the output is text:
    #: called with the record stream, returns lines (see `stream` and `picture`)
    draw: Callable[[Iterable[Record]], Iterable[str]] | None = None
    #: lines that close a stream (counts, loss): called once the records are consumed;
    #: stdout when the output is text, stderr under --json
    summary: Callable[[], Iterable[str]] | None = None
    #: `lines` are the command's output document (Graphviz, pcap listing) in every mode
    document: bool = False

    @classmethod
    def table(cls, records: Iterable[Record], columns: Sequence[Column]) -> Result:
        return cls(records=records, columns=columns, has_records=True)

    @classmethod
    def stream(
        cls,
        records: Iterable[Record],
        line: Callable[[Record], str],
        *,
        summary: Callable[[], Iterable[str]] | None = None,
        live: bool = True,
    ) -> Result:
        """Records shown one line each as text (`line`), or as JSON records."""
        return cls(
            records=records,
            has_records=True,
            live=live,
            draw=lambda records: map(line, records),
            summary=summary,
        )

    @classmethod
    def picture(
        cls, records: Iterable[Record], draw: Callable[[Iterable[Record]], Iterable[str]]
    ) -> Result:
        """Records for JSON, drawn as text by `draw` (a tree, a report) otherwise."""
        return cls(records=records, has_records=True, draw=draw)

    @classmethod
    def text(cls, lines: Iterable[str], *, status: int = 0) -> Result:
        return cls(lines=lines, status=status)

    @classmethod
    def note(cls, message: str, *, status: int = 0) -> Result:
        return cls(message=message, status=status)


class Wrapped(str):
    """A line of prose that a terminal gets wrapped to its width, at spaces only.

    Continuation lines are indented by `indent` columns (a usage line, an
    example).  With `groups`, spaces inside [...], (...) and {...} do not
    break (a usage line keeps `[--port N]` whole).  An `entry` is a term and
    its explanation from a column on (help's command list, a command's
    options): on a terminal too narrow for that, the explanation goes under
    the term.  Piped, the line is written as it is, like any other.
    """

    indent: int
    groups: bool
    term: str | None
    text: str
    column: int

    def __new__(cls, text: str, indent: int = 0, *, groups: bool = False) -> Wrapped:
        line = super().__new__(cls, text)
        line.indent, line.groups, line.term, line.text, line.column = indent, groups, None, "", 0
        return line

    @classmethod
    def entry(cls, term: str, text: str, column: int) -> Wrapped:
        """`term` (with its indent), then `text` from `column` on (after two spaces at least)."""
        line = cls(f"{term:{column - 2}}  {text}")
        line.term, line.text, line.column = term, text, column
        return line

    def wrap(self, width: int) -> list[str]:
        """The sanitized line in lines of at most `width` columns (a longer word overflows)."""
        if self.term is None:
            return _wrap(for_terminal(str(self)), width, self.indent, groups=self.groups)
        term, text = for_terminal(self.term), for_terminal(self.text)
        if width - self.column >= _ENTRY_TEXT:
            return _wrap(f"{term:{self.column - 2}}  {text}", width, self.column)
        # too narrow for two columns: the term, then its text under it
        lead = (len(term) - len(term.lstrip(" ")) if term.strip() else 2) + 4
        lines = _wrap(term, width, lead, groups=True) if term.strip() else []
        return lines + _wrap(" " * lead + text, width, lead)


#: the narrowest explanation column of an entry beside its term
_ENTRY_TEXT = 40


def _wrap(text: str, width: int, indent: int, *, groups: bool = False) -> list[str]:
    """`text` broken at spaces into lines of `width`, continuations indented by `indent`."""
    import textwrap

    if groups:
        text = _GROUP.sub(lambda m: m.group(0).replace(" ", _KEEP), text)
    lines = textwrap.wrap(
        text,
        width,
        subsequent_indent=" " * min(indent, width // 2),
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_KEEP, " ") for line in lines] or [""]


#: a bracketed group of a usage line, and what stands for its spaces while wrapping
_GROUP = re.compile(r"\[[^\[\]]*\]|\([^()]*\)|\{[^{}]*\}")
_KEEP = "\x00"


def format_cell(value: Any) -> str:
    """A record value as table text: lists joined, None empty, sanitized."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(format_cell(v) for v in value)  # each item escaped once
    return for_terminal(str(value))


def silence_stdout() -> None:
    """After EPIPE (the reader went away), point fd 1 at /dev/null.

    Python flushes sys.stdout again at exit: without this a closed pipe would
    make that flush fail with a second BrokenPipeError and a traceback.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


@dataclass
class Console:
    """The streams a session writes to (swap them in tests)."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    json: bool = False
    pager: bool = True
    #: --read-only: a pager may not run commands or open files (less with LESSSECURE=1 only)
    restricted: bool = False

    @property
    def is_terminal(self) -> bool:
        try:
            return self.stdout.isatty()
        except (AttributeError, ValueError):
            return False

    def error(self, message: str) -> None:
        self.stderr.write(f"netns-shell: {for_terminal(message)}\n")
        self.stderr.flush()

    def end_interrupted_line(self) -> None:
        """After a Ctrl-C the terminal echoed '^C' mid-line: start a new one."""
        try:
            if self.stderr.isatty():
                self.stderr.write("\n")
                self.stderr.flush()
        except (AttributeError, ValueError):
            pass

    def say(self, message: str) -> None:
        """A line about the command on stderr (what it does, counts): not its output."""
        self.stderr.write(for_terminal(message) + "\n")
        self.stderr.flush()

    def warn(self, message: str) -> None:
        self.stderr.write(f"netns-shell: warning: {for_terminal(message)}\n")
        self.stderr.flush()


class Renderer:
    """Writes results to a console in the mode its stream calls for."""

    def __init__(self, console: Console):
        self.console = console

    def render(self, result: Result) -> None:
        """Write `result` as JSON (--json), a table or text lines; this alone decides which."""
        out = self.console.stdout
        if self.console.json and not result.document:
            if result.has_records:
                write_json(result.records, out, batch=1 if result.live else _BATCH)
            elif result.message:
                self.console.stderr.write(for_terminal(result.message) + "\n")
            elif result.lines:
                for line in result.lines:
                    self.console.stderr.write(for_terminal(line) + "\n")
            out.flush()
            self._summary(result, self.console.stderr)
            return
        if result.has_records and result.draw is not None:
            self._lines(result.draw(result.records), out, live=result.live)
        elif result.has_records:
            if self.console.is_terminal:
                self._terminal_table(result)
            else:
                write_plain(result.records, result.columns, out)
        if result.document:
            for line in result.lines:
                out.write(without_controls(line) + "\n")
        else:
            self._lines(result.lines, out, live=result.live)
        if result.message:
            out.write(for_terminal(result.message) + "\n")
        out.flush()
        self._summary(result, out)

    def _lines(self, lines: Iterable[str], out: IO[str], *, live: bool) -> None:
        width = shutil.get_terminal_size((100, 40)).columns if self.console.is_terminal else None
        for line in lines:
            if width is not None and isinstance(line, Wrapped):
                out.write("\n".join(line.wrap(width)) + "\n")
            else:
                out.write(for_terminal(line) + "\n")
            if live:
                out.flush()  # a pipe reader sees each line as it comes, like tcpdump -l

    @staticmethod
    def _summary(result: Result, out: IO[str]) -> None:
        if result.summary is not None:
            for line in result.summary():
                out.write(for_terminal(line) + "\n")
            out.flush()

    # ---------------------------------------------------------- terminal
    def _terminal_table(self, result: Result) -> None:
        """A table laid out for the terminal from its first screenful (see layout.py):
        as it is, fitted (cells wrapped at separators, low-priority columns hidden),
        or one block per record; a dim line under it says what is not shown."""
        size = shutil.get_terminal_size((100, 40))
        screen = max(size.lines - 3, 5)
        columns = result.columns
        rows = iter(result.records)
        first = list(itertools.islice(rows, screen + 1))
        if not first:
            self.console.stdout.write("(none)\n")
            return
        cells = [[format_cell(c.value(r)) for c in columns] for r in first]
        headers = [c.header for c in columns]
        fit = fit_widths(cells, headers, size.columns, [c.priority for c in columns])
        rest: Callable[[IO[str]], None]
        if fit is None:
            head = _tabulate(cells, headers)
            widths = _widths_of(head)

            def rest(out: IO[str]) -> None:
                write_plain_rows(rows, columns, widths, out)

        elif fit.blocks:
            head = "\n\n".join("\n".join(block_lines(headers, row, size.columns)) for row in cells)

            def rest(out: IO[str]) -> None:
                write_blocks(rows, columns, size.columns, out)

        else:
            head = "\n".join(table_lines(headers, fit, cells))

            def rest(out: IO[str]) -> None:
                write_plain_rows(rows, columns, fit.caps, out, fit=fit)

        note = fit.note(headers, size.columns) if fit is not None else None
        tail = ""
        if note:
            dim, normal = (DIM, NORMAL) if _styled() else ("", "")
            tail = "".join(f"{dim}{line}{normal}\n" for line in wrap_text(note, size.columns))
            if fit is not None and fit.blocks:
                tail = "\n" + tail  # apart from the last block, as the blocks are
        more = len(first) > screen
        if not self.console.pager or not (more or head.count("\n") >= screen):
            self.console.stdout.write(head + "\n")
            if more:
                rest(self.console.stdout)
            self.console.stdout.write(tail)
            return
        self._page(head, rest, tail)

    def _page(self, head: str, rest: Callable[[IO[str]], None], tail: str) -> None:
        """`head`, the lines `rest` writes and `tail` through $PAGER (or straight out)."""
        import subprocess

        command = _pager_command(restricted=self.console.restricted)
        pager = None
        if command is not None:
            env = dict(os.environ)
            if self.console.restricted:
                env["LESSSECURE"] = "1"  # no !command, |pipe, v (editor), :e FILE, LESSOPEN
            try:
                pager = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    text=True,
                    encoding="utf-8",
                    errors="surrogateescape",
                    env=env,
                )
            except OSError:
                pass
        if pager is None:  # no pager: print it all
            self.console.stdout.write(head + "\n")
            rest(self.console.stdout)
            self.console.stdout.write(tail)
            return
        assert pager.stdin is not None
        try:
            pager.stdin.write(head + "\n")
            rest(pager.stdin)
            pager.stdin.write(tail)
            pager.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the user quit the pager: stop reading records
        except KeyboardInterrupt:
            pass
        finally:
            try:
                pager.stdin.close()
            except OSError:
                pass
            _wait_ignoring_interrupts(pager)


def _styled() -> bool:
    """Whether the terminal gets dim text: not with TERM=dumb or NO_COLOR (no-color.org)."""
    return os.environ.get("TERM", "dumb") != "dumb" and not os.environ.get("NO_COLOR")


def _pager_command(*, restricted: bool) -> list[str] | None:
    """$PAGER (default `less -FRSX`) as argv, or None when there is none to run.

    Restricted (--read-only), only less is run, in its secure mode: other
    pagers (more, most, a shell script) can run commands and are not used.
    """
    import shlex

    try:
        command = shlex.split(os.environ.get("PAGER") or "less -FRSX")
    except ValueError:
        return None
    if not command or shutil.which(command[0]) is None:
        return None
    if restricted and os.path.basename(command[0]) != "less":
        return None
    return command


def _wait_ignoring_interrupts(proc: Any) -> None:
    while True:
        try:
            proc.wait()
            return
        except KeyboardInterrupt:
            continue


def _tabulate(cells: list[list[str]], headers: list[str]) -> str:
    import tabulate

    # tabulate pads every header by MIN_PADDING (2); without it a column is as wide as
    # its widest cell or header, the widths fit_widths computes
    padding, tabulate.MIN_PADDING = tabulate.MIN_PADDING, 0
    try:
        return tabulate.tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)
    finally:
        tabulate.MIN_PADDING = padding


def _widths_of(table: str) -> list[int]:
    """Column widths from tabulate's 'simple' rule line (the second line)."""
    rule = table.splitlines()[1]
    return [len(part) for part in rule.split("  ")]


_CELL_CACHE_LIMIT = 4096
_KEYED_CELL_LIMIT = 65536
_BATCH = 256


def format_safe_cell(value: Any) -> str:
    """format_cell for values that cannot hold control characters."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


class ColumnReadsError(AssertionError):
    """A column read a record key its declared `reads` does not list (a programming error)."""

    def __init__(self, column: Column, extra: Iterable[str]):
        super().__init__(
            f"column {column.header!r} declares reads={column.reads!r} but its value function "
            f"read {sorted(extra)!r}: correct `reads` (or leave it out: reads are traced)"
        )


class _KeyTrace(dict):
    """A copy of a record that notes which keys are looked at (presence checks too).

    Anything that sees the whole record (iteration, items, len, copy, equality)
    counts as reading every key.
    """

    __slots__ = ("keys_read", "whole")

    def __init__(self, record: Record):
        super().__init__(record)
        self.keys_read: set[str] = set()
        self.whole = False

    def __getitem__(self, key: Any) -> Any:
        self.keys_read.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.keys_read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.keys_read.add(key)  # type: ignore[arg-type]
        return super().__contains__(key)

    def __iter__(self) -> Iterator[Any]:
        self.whole = True
        return super().__iter__()

    def __len__(self) -> int:
        self.whole = True
        return super().__len__()

    def __eq__(self, other: object) -> bool:
        self.whole = True
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def keys(self) -> Any:
        self.whole = True
        return super().keys()

    def items(self) -> Any:
        self.whole = True
        return super().items()

    def values(self) -> Any:
        self.whole = True
        return super().values()

    def copy(self) -> dict:
        self.whole = True
        return dict(self)


def traced_reads(column: Column, record: Record) -> tuple[Any, frozenset[str] | None]:
    """(value, the keys `column.value` read on `record`); None for "the whole record".

    For a deterministic value function the keys read on one record, presence
    checks included, decide its result: another record agreeing on those keys
    (and lacking the same ones) gets the same value.  Raises ColumnReadsError
    when the column declares `reads` and read a key outside it.
    """
    if column.key is not None:
        return record.get(column.key), frozenset((column.key,))
    trace = _KeyTrace(record)
    value = column.value(trace)
    reads = None if trace.whole else frozenset(trace.keys_read)
    if column.reads is not None:
        extra = set(record) if reads is None else reads
        extra = extra - set(column.reads)
        if extra:
            raise ColumnReadsError(column, extra)
    return value, reads


def check_columns(records: Iterable[Record], columns: Sequence[Column]) -> int:
    """Trace every column over every record (ColumnReadsError on a wrong `reads`); the count."""
    count = 0
    for record in records:
        for column in columns:
            traced_reads(column, record)
        count += 1
    return count


class RowFormatter:
    """Turns records into aligned lines, fast enough for tables of a million rows.

    Cells are formatted once per distinct value and column (small bounded
    caches: devices, gateways, states repeat; unique values just miss), and a
    row is one %-format of the cells with the widths fixed up front.
    """

    def __init__(self, columns: Sequence[Column], widths: Sequence[int]):
        self.columns = list(columns)
        self._caches: list[dict[Any, str]] = [{} for _ in columns]
        self._shared: dict[Shared, tuple[list[str], list[list]]] = {}
        self._keyed_size = 0  # cells held by the per-Shared caches of computed columns
        self._lines: dict[Shared, tuple[str, list[list], bool]] = {}
        self._widths = list(widths)
        self._format = "  ".join(f"%-{w}s" for w in widths[:-1])
        self._format = f"{self._format}  %s" if self._format else "%s"

    def cell(self, index: int, record: Record) -> str:
        column, cache = self.columns[index], self._caches[index]
        value = record.get(column.key) if column.key is not None else column.value(record)
        kind = value.__class__
        if kind is str and column.safe:
            return value
        if kind is str or kind is int or value is None:
            cell = cache.get(value)
            if cell is None:
                cell = format_safe_cell(value) if column.safe else format_cell(value)
                if len(cache) < _CELL_CACHE_LIMIT:
                    cache[value] = cell
            return cell
        if kind is list and not value:
            return ""
        return format_safe_cell(value) if column.safe else format_cell(value)

    def cells(self, record: Record) -> tuple[str, ...]:
        if record.__class__ is SharedRecord:
            shared = record.shared
            entry = self._shared.get(shared)
            if entry is None:
                entry = self._shared_cells(record)
            template, todo = entry
            if not todo:
                return tuple(template)
            out = template.copy()
            step_cell = self._step_cell
            for step in todo:
                out[step[0]] = step_cell(step, record)
            return tuple(out)
        return tuple([self.cell(index, record) for index in range(len(self.columns))])

    def _step_cell(self, step: list, record: Record) -> str:
        """The cell of a column that varies between the records of one Shared (see below)."""
        index, key, cache = step[0], step[1], step[2]
        if key is None:
            if step[4]:  # a safe computed column: a str value is the cell (a call saved per row)
                value = self.columns[index].value(record)
                if value.__class__ is str:
                    return value
            return self.cell(index, record)
        value = record.get(key)
        if value.__class__ is not str:
            return self.cell(index, record)
        if cache is None:  # a safe column showing the key as is
            return value
        step[3] += 1
        cell = cache.get(value)
        if cell is None:
            cell = self._keyed_cell(index, key, record)
            if cell is None:  # this value made it read another own key
                return self.cell(index, record)
            if len(cache) >= 64 and len(cache) * 2 > step[3]:
                step[1:4] = [None, None, 0]  # values rarely repeat: stop caching
                self._keyed_size -= len(cache)
            elif self._keyed_size < _KEYED_CELL_LIMIT:
                cache[value] = cell
                self._keyed_size += 1
        return cell

    def line(self, record: Record) -> str:
        """The record's aligned line, trailing blanks removed.

        For a SharedRecord the cells common to its Shared are laid out once into
        a %-format of the line, leaving only the varying cells to format.
        """
        if record.__class__ is SharedRecord:
            entry = self._lines.get(record.shared)
            if entry is None:
                entry = self._shared_line(record)
            text_format, todo, strip = entry
            if len(todo) == 1:
                text = text_format % self._step_cell(todo[0], record)
            else:
                step_cell = self._step_cell
                text = text_format % tuple([step_cell(step, record) for step in todo])
            return text.rstrip() if strip else text
        return (self._format % self.cells(record)).rstrip()

    def _shared_line(self, record: SharedRecord) -> tuple[str, list[list], bool]:
        """(line format with the shared cells laid in, the varying steps, rstrip needed?)."""
        entry = self._shared.get(record.shared)
        if entry is None:
            entry = self._shared_cells(record)
        template, todo = entry
        varying = {step[0] for step in todo}
        last = len(template) - 1
        pieces = []
        for index, cell in enumerate(template):
            width = self._widths[index]
            if index in varying:
                pieces.append("%s" if index == last else f"%-{width}s")
            else:
                text = cell.replace("%", "%%")
                pieces.append(text if index == last else text + " " * max(width - len(cell), 0))
        # laid-in cells after the last varying one: strip their blanks now, once
        tail_start = max(varying) + 1 if varying else 0
        head = "  ".join(pieces[:tail_start])
        tail = "  ".join(pieces[tail_start:]).rstrip()
        if not tail:
            strip = True
            text_format = head
        else:
            strip = False
            text_format = f"{head}  {tail}" if head else tail
        if varying and not tail:
            # the last varying cell ends the line: its padding goes with rstrip
            strip = True
        if len(self._lines) >= _CELL_CACHE_LIMIT:
            self._lines.clear()
        entry_line = self._lines[record.shared] = (text_format, todo, strip)
        return entry_line

    def _shared_cells(self, record: SharedRecord) -> tuple[list[str], list[list]]:
        """Cells every record of `record.shared` has in common, and how to get the others.

        Which keys a column reads is traced on this record (see `traced_reads`):
        a column that read none of the Shared's own keys shows the same cell on
        every record of it.  A cell to compute is [index, key, cache, lookups]:
        a safe column of one own key takes the value as is (cache None); a
        computed column that read exactly one own key caches its cells by that
        key's value, each cached cell traced to depend on no other own key,
        while at least half the lookups hit; other cells are formatted each
        time (key None).
        """
        own = record.shared.own_keys
        template: list[str] = []
        todo: list[list] = []
        for index, column in enumerate(self.columns):
            _value, reads = traced_reads(column, record)
            if reads is not None and own.isdisjoint(reads):
                template.append(self.cell(index, record))
                continue
            template.append("")
            varying = own.intersection(reads) if reads is not None else ()
            computed_safe = column.key is None and column.safe
            if column.key is not None and column.safe:
                todo.append([index, column.key, None, 0, False])
            elif column.key is None and len(varying) == 1:
                todo.append([index, next(iter(varying)), {}, 0, computed_safe])
            else:
                todo.append([index, None, None, 0, computed_safe])
        if len(self._shared) >= _CELL_CACHE_LIMIT:
            self._shared.clear()
            self._keyed_size = 0
        entry = self._shared[record.shared] = (template, todo)
        return entry

    def _keyed_cell(self, index: int, key: str, record: Record) -> str | None:
        """The cell, or None when it depends on more own keys than `key` (do not cache it)."""
        column = self.columns[index]
        _value, reads = traced_reads(column, record)
        cell = self.cell(index, record)
        if reads is None or len(record.shared.own_keys.intersection(reads) - {key}):  # type: ignore[attr-defined]
            return None
        return cell

    @property
    def row_format(self) -> str:
        """The %-format of a line (apply to `cells(record)`, then rstrip)."""
        return self._format

    def join(self, cells: tuple[str, ...]) -> str:
        """Cells (from `cells`) as an aligned line, trailing blanks removed."""
        return (self._format % cells).rstrip()


def write_plain(records: Iterable[Record], columns: Sequence[Column], out: IO[str]) -> None:
    """Header and aligned lines; widths from the first rows, the rest streamed."""
    rows = iter(records)
    sample = list(itertools.islice(rows, _WIDTH_SAMPLE))
    probe = RowFormatter(columns, [0] * len(columns))
    cells = [probe.cells(r) for r in sample]
    headers = tuple(c.header for c in columns)
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    formatter = RowFormatter(columns, widths)
    out.write("\n".join(formatter.join(row) for row in [headers, *cells]) + "\n")
    write_plain_rows(rows, columns, widths, out)


def write_plain_rows(
    rows: Iterable[Record],
    columns: Sequence[Column],
    widths: Sequence[int],
    out: IO[str],
    *,
    fit: Fit | None = None,
) -> None:
    """Format and write rows with fixed widths, in batches of lines.

    `fit` (from layout.fit_widths) lays each row out as the first screen of
    the table was: only the columns shown, cells wrapped at separators onto
    further lines; `widths` are then the shown columns' widths.
    """
    if fit is None:
        line = RowFormatter(columns, widths).line
    else:
        cells = RowFormatter(columns, [0] * len(columns)).cells
        caps = fit.caps

        def line(record: Record) -> str:
            return "\n".join(join_cells(row, caps) for row in fit.cell_lines(cells(record)))

    _write_batched(map(line, rows), out)


def write_blocks(
    rows: Iterable[Record], columns: Sequence[Column], width: int, out: IO[str]
) -> None:
    """Rows one block each (layout.block_lines), a blank line before each block."""
    cells = RowFormatter(columns, [0] * len(columns)).cells
    headers = [c.header for c in columns]
    _write_batched(("\n" + "\n".join(block_lines(headers, cells(r), width)) for r in rows), out)


def _write_batched(lines: Iterable[str], out: IO[str]) -> None:
    batch: list[str] = []
    append = batch.append
    for text in lines:
        append(text)
        if len(batch) >= _BATCH:
            out.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")


class JsonRows:
    """The compact JSON text of records, exactly as `json.dumps` would write it.

    A SharedRecord's shared keys are encoded once per Shared: its rows are one
    %-format of their own values (records of one Shared that hold the same keys
    hold them in the same order: see records.SharedRecord).  Other records go
    to the C encoder whole.
    """

    def __init__(self) -> None:
        self.encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
        self._templates: dict[Shared, tuple[int, str, tuple[str, ...]]] = {}

    def text(self, record: Record) -> str:
        if record.__class__ is SharedRecord:
            entry = self._templates.get(record.shared)
            if entry is None:
                entry = self._template(record)
            if entry is not None and len(record) == entry[0]:
                return entry[1] % tuple(
                    [
                        _json_string(v) if v.__class__ is str else self.encode(v)
                        for v in map(record.__getitem__, entry[2])
                    ]
                )
        return self.encode(record)

    def _template(self, record: SharedRecord) -> tuple[int, str, tuple[str, ...]] | None:
        """(length, format, own keys in order) from a record holding every own key."""
        shared = record.shared
        own = shared.own_keys
        if len(record) != len(shared.values) + len(own) or not own <= record.keys():
            return None  # wait for a record holding every own key
        pieces, order = [], []
        for key, value in record.items():
            name = _json_string(key).replace("%", "%%")
            if key in own:
                pieces.append(f"{name}:%s")
                order.append(key)
            else:
                pieces.append(f"{name}:" + self.encode(value).replace("%", "%%"))
        if len(self._templates) >= _CELL_CACHE_LIMIT:
            self._templates.clear()
        entry = self._templates[shared] = (len(record), "{" + ",".join(pieces) + "}", tuple(order))
        return entry

    def texts(self, records: list[Record]) -> str:
        """The records as the inside of a JSON array."""
        text = self.text
        return ",".join([text(r) for r in records])


def write_json(records: Iterable[Record], out: IO[str], *, batch: int = _BATCH) -> None:
    """One JSON array, written as records arrive; always valid ASCII JSON.

    Records are encoded in batches (see JsonRows): the array is compact, like
    `ip -j`.  `batch=1` writes and flushes every record as it comes (live output).
    """
    rows = iter(records)
    first = next(rows, None)  # errors surface before anything is written
    if first is None:
        out.write("[]\n")
        return
    texts = JsonRows().texts
    pending = [first]
    out.write("[")
    separator = ""
    try:
        while pending:
            try:
                pending.extend(itertools.islice(rows, batch - len(pending)))
            finally:  # what arrived before a failure is written: the array stays whole
                out.write(separator + texts(pending))
            if batch == 1:
                out.flush()
            separator = ","
            pending = []
            nxt = next(rows, None)
            if nxt is not None:
                pending.append(nxt)
    finally:
        out.write("]\n")
