"""Tab completion in two layers: what is expected at the cursor, then candidates of that kind.

Candidates come from a `CompletionState` snapshot (namespace names, the
current namespace's interfaces and bridges) that is rebuilt in the
background after each command and swapped in whole, so completing never
touches the kernel and never runs on a thread in the wrong namespace.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .commands.grammar import Walker
from .commands.line import quote, tokenize
from .commands.registry import Command, Registry
from .errors import UsageError
from .sanitize import for_terminal

if TYPE_CHECKING:
    from prompt_toolkit.completion import CompleteEvent, Completion
    from prompt_toolkit.document import Document

    from .namespace import NetNamespace
    from .session import Session

__all__ = ["CompletionState", "Expectation", "StateRefresher", "candidates", "expected_at"]


@dataclass(frozen=True)
class CompletionState:
    """What completion can offer, captured at one moment."""

    namespaces: dict[str, str] = field(default_factory=dict)  # name -> description
    interfaces: dict[str, str] = field(default_factory=dict)  # ifname -> kind
    bridges: tuple[str, ...] = ()
    tables: tuple[str, ...] = ("all", "main", "local", "default")
    #: what each gathered kind (commands/kinds.py) found: kind -> (word, description) pairs
    gathered: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Expectation:
    """The kind of word expected at the cursor and the part already typed."""

    kind: str  # 'command', 'option', 'namespace', 'interface', ... or 'none'
    prefix: str
    command: Command | None = None
    options: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    #: where the word under the cursor starts in the text (its quotes included)
    start: int = 0
    #: the option the word starts with when its value is attached ('-i' of '-ieth',
    #: '--count=' of '--count=5'): kept in front of each candidate
    attached: str = ""


def _words(text: str) -> tuple[str, list[str], bool, int]:
    """The operator the cursor's command part follows ('' at the start, ';', '|', '>', '>>'),
    the words since it, whether the cursor starts a new word, and where the word under
    the cursor starts in `text` (its quotes included)."""
    tokens = tokenize(text, partial=True)
    last_op = max((i for i, t in enumerate(tokens) if t.op), default=-1)
    words = tokens[last_op + 1 :]
    after = tokens[last_op].text if last_op >= 0 else ""
    trailing = not words or words[-1].end < len(text)
    start = len(text) if trailing else words[-1].start
    return after, [t.text for t in words], trailing, start


def expected_at(registry: Registry, text: str) -> Expectation:
    """Work out what the word under the cursor should be.

    Within a command, the words are read by the parser's own walker
    (commands/grammar.py), so Tab offers what the parser accepts there.
    After `|` come a host program and its arguments (file names), after `>`
    a file name.
    """
    after, words, trailing, start = _words(text)
    if after in ("|", ">", ">>"):
        expect = _after_operator(after, words, trailing)
    else:
        expect = _expected(registry, words, trailing)
    return replace(expect, start=start)


def _after_operator(operator: str, words: list[str], trailing: bool) -> Expectation:
    prefix = "" if trailing else words[-1]
    done = len(words) if trailing else len(words) - 1
    if operator == "|":
        return Expectation("program" if done == 0 else "file", prefix)
    return Expectation("file" if done == 0 else "none", prefix)


def _expected(registry: Registry, words: list[str], trailing: bool) -> Expectation:
    if not words or (len(words) == 1 and not trailing):
        return Expectation("command", words[0] if words else "")
    command = registry.get(words[0])
    if command is None:
        return Expectation("none", "")
    prefix = "" if trailing else words[-1]
    walker = Walker(command)
    for word in words[1:] if trailing else words[1:-1]:
        try:
            walker.feed(word)
        except UsageError:
            continue  # a word the parser will refuse: complete the rest as best we can
    step = walker.next(prefix)
    if step.param is None:
        kind = "option" if step.value.startswith("-") and step.options else "none"
        return Expectation(kind, step.value, command, options=step.options)
    kind = step.param.complete or "none"
    if step.rest_tail and kind == "program":
        kind = "file"  # the program's own arguments
    return Expectation(
        kind,
        step.value,
        command,
        options=step.options,
        choices=step.param.choices,
        attached=step.attached,
    )


def candidates(
    expect: Expectation, registry: Registry, state: CompletionState
) -> Iterator[tuple[str, str]]:
    """(word, description) pairs for the expectation, filtered by its prefix."""
    pool: Iterable[tuple[str, str]]
    kind = registry.kinds.get(expect.kind)
    pool = kind.candidates(state, registry) if kind is not None else ()
    pool = list(pool) + [(c, "") for c in expect.choices]
    if expect.kind not in ("command", "option") and not expect.prefix.startswith("-"):
        pool += [(o, "option") for o in expect.options if not o.startswith("-")]
    if expect.kind == "option":
        pool = [(o, _option_help(expect.command, o)) for o in expect.options]
    seen: set[str] = set()
    for word, meta in pool:
        if word.startswith(expect.prefix) and word not in seen:
            seen.add(word)
            yield expect.attached + word, meta


def _option_help(command: Command | None, flag: str) -> str:
    if command is None:
        return ""
    for p in command.params:
        if flag in p.flags:
            return p.help
    return ""


_PROGRAMS: list[str] | None = None
#: at most this many words of one gathered kind are kept in a snapshot
_GATHER_LIMIT = 10_000


def programs_on_path() -> list[str]:
    """The names of the executables on $PATH (cached for the process)."""
    global _PROGRAMS  # cached once per process: PATH rarely changes under a shell
    if _PROGRAMS is None:
        found = set()
        for directory in os.environ.get("PATH", "").split(":"):
            try:
                for entry in os.scandir(directory):
                    if entry.is_file() and os.access(entry.path, os.X_OK):
                        found.add(entry.name)
            except OSError:
                continue
        _PROGRAMS = sorted(found)
    return _PROGRAMS


def build_state(session: Session, ns: NetNamespace) -> CompletionState:
    """Snapshot what completion offers for namespace `ns`; safe on any thread."""
    from .netlink.links import list_links

    namespaces: dict[str, str] = {}
    for entry in session.catalogue.discover():
        if entry.inode is None:
            continue
        namespaces[entry.name] = entry.kind
        for alias in entry.labels.get("aliases", ()):
            what = entry.labels.get("container") or entry.labels.get("pod") or entry.kind
            namespaces.setdefault(alias, what)
    interfaces: dict[str, str] = {}
    bridges: list[str] = []
    for link in list_links(ns, addresses=False):
        kind = link.get("linkinfo", {}).get("info_kind", link.get("link_type", ""))
        interfaces[link["ifname"]] = kind
        if kind == "bridge":
            bridges.append(link["ifname"])
    tables = list(CompletionState.tables)
    try:  # every table a policy rule names (`routes table X` accepts each)
        from .netlink.rules import list_rules

        tables += [r["table"] for r in list_rules(ns) if "table" in r]
    except Exception:  # completion is best effort
        pass
    try:  # and every table that holds routes, from a bounded look at them all
        from .netlink.routes import list_routes

        routes = itertools.islice(list_routes(ns, table=0), _GATHER_LIMIT)
        tables += [str(r["table"]) for r in routes if "table" in r]
        del routes  # the dump's socket closes with its generator
    except Exception:
        pass
    gathered: dict[str, tuple[tuple[str, str], ...]] = {}
    for kind in session.registry.kinds.gathered():
        try:
            gathered[kind.name] = kind.collect(ns, _GATHER_LIMIT)
        except Exception as exc:  # a plugin's kind failing costs its words only
            session.debug_log.record(f"completion kind {kind.name} ({kind.source})", exc)
    return CompletionState(
        namespaces=namespaces,
        interfaces=interfaces,
        bridges=tuple(bridges),
        tables=tuple(dict.fromkeys(tables)),
        gathered=gathered,
    )


#: how long Tab waits for the completion state of a namespace just entered
READY_WAIT = 5.0


class StateRefresher:
    """Rebuilds the completion state on a background thread and swaps it in whole."""

    def __init__(self, session: Session):
        self.session = session
        self.state = CompletionState()
        self._lock = threading.Lock()
        self._generation = 0
        #: set while the state is that of the current namespace (cleared by refresh)
        self._ready = threading.Event()

    def refresh(self, *, wait: bool = False) -> None:
        """Start a rebuild (call on the thread that owns the session)."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._ready.clear()
        # the worker gets its own handle: the session may close the current one meanwhile
        try:
            ns = self.session.namespace.duplicate()
        except Exception:  # the namespace is going: keep the words there are
            self._ready.set()
            raise
        worker = threading.Thread(
            target=self._build, args=(generation, ns), daemon=True, name="completion-state"
        )
        worker.start()
        if wait:
            worker.join(timeout=5)

    def _build(self, generation: int, ns: NetNamespace) -> None:
        state = None
        try:
            with ns:
                state = build_state(self.session, ns)
        except Exception:  # completion is best effort; the shell goes on without it
            pass
        with self._lock:
            if generation == self._generation:
                if state is not None:
                    self.state = state
                self._ready.set()

    def current(self, wait: float = READY_WAIT) -> CompletionState:
        """The state of the current namespace: Tab pressed right after `use` waits (up to
        `wait` seconds) for its rebuild rather than offer the previous namespace's words."""
        self._ready.wait(wait)
        return self.state


def make_completer(registry: Registry, refresher: StateRefresher):  # -> prompt_toolkit Completer
    """The prompt_toolkit completer over the two layers above."""
    from prompt_toolkit.completion import Completer, Completion, PathCompleter

    paths = PathCompleter(expanduser=True)

    class ShellCompleter(Completer):
        def get_completions(
            self, document: Document, complete_event: CompleteEvent
        ) -> Iterator[Completion]:
            expect = expected_at(registry, document.text_before_cursor)
            kind = registry.kinds.get(expect.kind)
            if kind is not None and kind.paths:
                yield from paths.get_completions(_path_document(expect), complete_event)
                return
            replaced = expect.start - len(document.text_before_cursor)
            for word, meta in candidates(expect, registry, refresher.current()):
                # quoted for the line parser: a name holding ';' or a quote stays one word
                yield Completion(
                    quote(word),
                    start_position=replaced,
                    display=for_terminal(word),
                    display_meta=for_terminal(meta),
                )

    return ShellCompleter()


def _path_document(expect: Expectation) -> Document:
    """The file name typed so far, as its own document (its quotes and any option that
    carries it removed: `-w/tmp/x` -> `/tmp/x`): the path completer replaces its tail."""
    from prompt_toolkit.document import Document as Doc

    return Doc(expect.prefix, len(expect.prefix))
