"""Tab completion in two layers: what is expected at the cursor, then candidates of that kind.

Candidates come from a `CompletionState` snapshot (namespace names, the
current namespace's interfaces and bridges) that is rebuilt in the
background after each command and swapped in whole, so completing never
touches the kernel and never runs on a thread in the wrong namespace.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .commands.line import quote, tokenize
from .commands.registry import Command, Param, Registry
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


def _words(text: str) -> tuple[list[str], bool, int]:
    """Words of the last command in `text`, whether the cursor starts a new word, and
    where the word under the cursor starts in `text` (its quotes included)."""
    tokens = tokenize(text, partial=True)
    last_op = max((i for i, t in enumerate(tokens) if t.op), default=-1)
    words = tokens[last_op + 1 :]
    trailing = not words or words[-1].end < len(text)
    start = len(text) if trailing else words[-1].start
    return [t.text for t in words], trailing, start


def expected_at(registry: Registry, text: str) -> Expectation:
    """Work out what the word under the cursor should be."""
    words, trailing, start = _words(text)
    return replace(_expected(registry, words, trailing), start=start)


def _expected(registry: Registry, words: list[str], trailing: bool) -> Expectation:
    if not words or (len(words) == 1 and not trailing):
        return Expectation("command", words[0] if words else "")
    command = registry.get(words[0])
    if command is None:
        return Expectation("none", "")
    prefix = "" if trailing else words[-1]
    done = words[1:] if trailing else words[1:-1]
    by_flag = {flag: p for p in command.params for flag in p.flags}
    if done and done[-1] in by_flag and not by_flag[done[-1]].is_switch:
        param = by_flag[done[-1]]
        return Expectation(param.complete or "none", prefix, command, choices=param.choices)
    positional = _next_positional(command, done, by_flag)
    if positional is not None and positional.rest and _rest_started(command, done, by_flag):
        if positional.choices:
            return Expectation("none", prefix, command, choices=positional.choices)
        return Expectation("file", prefix, command)
    used = set(done)
    options = tuple(
        flag
        for p in command.params
        for flag in p.flags
        if flag not in used and (prefix.startswith("-") or not flag.startswith("-"))
    )
    if prefix.startswith("-"):
        return Expectation("option", prefix, command, options=options)
    kind = positional.complete if positional is not None and positional.complete else "none"
    choices = positional.choices if positional is not None else ()
    return Expectation(kind, prefix, command, options=options, choices=choices)


def _next_positional(command: Command, done: list[str], by_flag: dict[str, Param]) -> Param | None:
    positionals = [p for p in command.params if p.is_positional]
    filled = 0
    i = 0
    while i < len(done):
        param = by_flag.get(done[i])
        if param is not None:
            i += 1 if param.is_switch else 2
            continue
        if positionals and positionals[min(filled, len(positionals) - 1)].rest:
            return positionals[-1]
        filled += 1
        i += 1
    return positionals[filled] if filled < len(positionals) else None


def _rest_started(command: Command, done: list[str], by_flag: dict[str, Param]) -> bool:
    i = 0
    while i < len(done):
        param = by_flag.get(done[i])
        if param is None:
            return True
        i += 1 if param.is_switch else 2
    return False


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
            yield word, meta


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
    for entry in session.discover():
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

        tables += [r["table"] for r in list_rules(ns) if "table" in r and r["table"] not in tables]
    except Exception:  # completion is best effort
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


class StateRefresher:
    """Rebuilds the completion state on a background thread and swaps it in whole."""

    def __init__(self, session: Session):
        self.session = session
        self.state = CompletionState()
        self._lock = threading.Lock()
        self._generation = 0

    def refresh(self, *, wait: bool = False) -> None:
        """Start a rebuild (call on the thread that owns the session)."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        # the worker gets its own handle: the session may close the current one meanwhile
        ns = self.session.namespace.duplicate()
        worker = threading.Thread(
            target=self._build, args=(generation, ns), daemon=True, name="completion-state"
        )
        worker.start()
        if wait:
            worker.join(timeout=5)

    def _build(self, generation: int, ns: NetNamespace) -> None:
        try:
            with ns:
                state = build_state(self.session, ns)
        except Exception:  # completion is best effort; the shell goes on without it
            return
        with self._lock:
            if generation == self._generation:
                self.state = state


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
                yield from paths.get_completions(_last_word_document(document), complete_event)
                return
            replaced = expect.start - len(document.text_before_cursor)
            for word, meta in candidates(expect, registry, refresher.state):
                # quoted for the line parser: a name holding ';' or a quote stays one word
                yield Completion(
                    quote(word),
                    start_position=replaced,
                    display=for_terminal(word),
                    display_meta=for_terminal(meta),
                )

    return ShellCompleter()


def _last_word_document(document: Document) -> Document:
    from prompt_toolkit.document import Document as Doc

    word = document.text_before_cursor.split(" ")[-1]
    return Doc(word, len(word))
