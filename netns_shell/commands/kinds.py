"""Completion kinds: what `Param.complete` names, as rows in a table plugins can extend.

A kind says where Tab finds the words for an argument.  Two sorts:

* **gathered** kinds have a `gather(namespace)` function.  The completion
  refresher calls it on its background thread after each command (and after
  `use`), with the current namespace's handle, and keeps what it returns in
  the completion snapshot: pressing Tab never touches the kernel.  Plugins
  add kinds of this sort (`registry.completion_kind`);
* **offered** kinds read what is in memory at Tab time through
  `offer(state, registry)`: the snapshot's namespace and interface lists,
  the command names, the programs on PATH.  The built-ins are of this sort;
  `paths` marks the one kind that file-name completion answers.

Registering a kind name twice is an error, as for commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["CompletionKind", "CompletionKinds", "Gather", "Offer"]

#: (namespace) -> words, or (word, description) pairs
Gather = Callable[["NetNamespace"], Iterable["str | tuple[str, str]"]]
#: (completion state, command registry) -> (word, description) pairs
Offer = Callable[[Any, Any], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class CompletionKind:
    """One kind of word Tab completes (see the module's docstring)."""

    name: str
    #: shown beside a candidate that comes without a description
    description: str = ""
    gather: Gather | None = None
    offer: Offer | None = None
    #: completed as file names (prompt_toolkit's path completer)
    paths: bool = False
    source: str = "built-in"

    def candidates(self, state: Any, registry: Any) -> Iterable[tuple[str, str]]:
        """(word, description) pairs of this kind, from the snapshot `state`."""
        if self.offer is not None:
            return self.offer(state, registry)
        return state.gathered.get(self.name, ())

    def collect(self, namespace: NetNamespace, limit: int) -> tuple[tuple[str, str], ...]:
        """Run `gather` (on the refresher's thread) and normalize what it gives: at most
        `limit` (word, description) pairs of strings."""
        assert self.gather is not None
        pairs: list[tuple[str, str]] = []
        for item in self.gather(namespace):
            word, meta = (item, self.description) if isinstance(item, str) else item
            pairs.append((str(word), str(meta)))
            if len(pairs) >= limit:
                break
        return tuple(pairs)


@dataclass
class CompletionKinds:
    """The kinds of one registry, by name."""

    kinds: dict[str, CompletionKind] = field(default_factory=dict)

    def add(self, kind: CompletionKind) -> CompletionKind:
        if kind.name in self.kinds:
            raise ValueError(f"completion kind {kind.name!r} is already registered")
        if (kind.gather is None) == (kind.offer is None) and not kind.paths:
            raise ValueError(f"completion kind {kind.name!r}: give gather or offer (one)")
        self.kinds[kind.name] = kind
        return kind

    def get(self, name: str | None) -> CompletionKind | None:
        return self.kinds.get(name) if name else None

    def gathered(self) -> list[CompletionKind]:
        return [k for k in self.kinds.values() if k.gather is not None]

    def __contains__(self, name: object) -> bool:
        return name in self.kinds

    def __iter__(self) -> Iterator[CompletionKind]:
        return iter(self.kinds.values())


def builtin_kinds() -> CompletionKinds:
    """The kinds netns-shell itself completes."""
    kinds = CompletionKinds()
    for kind in (
        CompletionKind("namespace", offer=lambda state, _: state.namespaces.items()),
        CompletionKind("interface", offer=lambda state, _: state.interfaces.items()),
        CompletionKind("bridge", offer=lambda state, _: [(b, "bridge") for b in state.bridges]),
        CompletionKind(
            "table", offer=lambda state, _: [(t, "routing table") for t in state.tables]
        ),
        CompletionKind("command", description="a netns-shell command", offer=_commands),
        CompletionKind("program", description="a host program", offer=_programs),
        CompletionKind("file", description="a file name", paths=True),
    ):
        kinds.add(kind)
    return kinds


def _commands(state: Any, registry: Any) -> list[tuple[str, str]]:
    return [(name, registry.get(name).summary) for name in registry.names(aliases=True)]


def _programs(state: Any, registry: Any) -> list[tuple[str, str]]:
    from ..completion import programs_on_path

    return [(p, "program") for p in programs_on_path()]
