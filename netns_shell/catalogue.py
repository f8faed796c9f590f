"""The catalogue of network namespaces: found, named by the engines, cached, resolved.

One object answers "which namespaces are there, what lives in each, and
which one does this word mean": discovery (discovery.py), enrichment with
Docker container and network names and Kubernetes pod names (docker.py,
cri.py), a short-lived cache, resolution of what a user types (a path,
`pid:N`, a name, `TAG:NAME`, a unique prefix, an inode, a container, a network
or a pod) and the label shown for a namespace.  The shell's session, the
library API and the completer all use it; it knows nothing of commands or
the console.

Identity is the inode: entries are told apart by (dev, inode), and a name
shared by several namespaces is qualified by its directory (see discovery).
"""

from __future__ import annotations

import difflib
import os
import stat
import time
from collections.abc import Callable, Iterable
from typing import Any

from .discovery import NamespaceEntry, discover, friendly_names, matches_qualified
from .errors import NamespaceError, UsageError
from .namespace import NetNamespace, distinct_search_dirs

__all__ = ["Catalogue", "Enricher"]

#: adds labels (container, network, pod names) to discovered namespaces, in place
Enricher = Callable[[list[NamespaceEntry]], None]

_TTL = 2.0
#: candidates named in an "ambiguous" message before "and N more"
_SHOWN = 10


class Catalogue:
    """Every network namespace on the host, with the names engines give them.

    `enrichers` run after each discovery; one that fails is reported to
    `on_error(message, exception)` and skipped (enrichment is optional).
    `docker`, when given, is the Docker enricher (see docker.DockerEnricher):
    it is also asked for an overlay's endpoints.
    """

    def __init__(
        self,
        enrichers: Iterable[Enricher] = (),
        *,
        docker: Any = None,
        on_error: Callable[[str, BaseException], None] | None = None,
        ttl: float = _TTL,
    ):
        self.enrichers: list[Enricher] = list(enrichers)
        self.docker = docker
        if docker is not None and docker not in self.enrichers:
            self.enrichers.append(docker)
        self.on_error = on_error
        self.ttl = ttl
        self._entries: list[NamespaceEntry] | None = None
        self._entries_at = 0.0
        self._labels: dict[tuple[int, int], str] = {}

    # ------------------------------------------------------------ listing
    def namespaces(self, *, details: bool = False, fresh: bool = False) -> list[NamespaceEntry]:
        """Discovered namespaces (cached for `ttl` seconds; `details` counts links)."""
        stale = time.monotonic() - self._entries_at > self.ttl
        if details or fresh or stale or self._entries is None:
            self._entries = self.discover(details=details)
            self._entries_at = time.monotonic()
        return self._entries

    def discover(self, *, details: bool = False) -> list[NamespaceEntry]:
        """Discover namespaces now and run the enrichers (no cache; safe on any thread)."""
        entries = discover(details=details)
        for enrich in self.enrichers:
            try:
                enrich(entries)
            except Exception as exc:  # enrichment is optional by design
                if self.on_error is not None:
                    self.on_error("enricher failed", exc)
        return entries

    def entry_for(self, ns: NetNamespace) -> NamespaceEntry | None:
        """The entry of the namespace behind a handle (matched by inode), if discovered."""
        for entry in self.namespaces():
            if entry.key == ns.key:
                return entry
        return None

    # --------------------------------------------------------- resolution
    def resolve(self, target: str) -> NetNamespace:
        """Open a namespace named by path, `pid:N`, name, `TAG:NAME`, unique prefix, unique
        last dash-separated part(s) or inode, or by what lives in it: a container, a
        network, a pod (`pod` or `namespace/pod`).

        A name that is a file in exactly one netns directory is opened directly;
        anything else (prefixes, inodes, engine names, a name several directories
        hold) needs a discovery.
        """
        if target.startswith(("/", ".")) or ("/" in target and os.path.lexists(target)):
            return NetNamespace.open_path(target)
        direct = _named_file(target)
        if direct is not None:
            return NetNamespace.open_path(direct, label=target)
        if target.startswith("pid:"):
            try:
                pid = int(target[4:])
            except ValueError:
                raise UsageError(f"'{target}': expected pid:NUMBER") from None
            return NetNamespace.open_pid(pid)
        return self.find_entry(target).open()

    def find_entry(self, target: str) -> NamespaceEntry:
        """The one entry `target` names; NamespaceError naming every candidate otherwise."""
        entries = [e for e in self.namespaces(fresh=True) if e.inode is not None or e.error]
        exact = [e for e in entries if target in _words(e) or matches_qualified(e, target)]
        if not exact and target.isdigit():
            exact = [e for e in entries if e.inode == int(target)]
        if not exact:
            exact = [e for e in entries if any(w.startswith(target) for w in _words(e))]
        if not exact and target:
            # the last dash-separated part(s): `c1` for nsdemo-4201-c71ded-c1, as a lab or
            # a compose project names things (unique, like a prefix)
            exact = [e for e in entries if any(w.endswith(f"-{target}") for w in _words(e))]
        unique = {e.key if e.inode is not None else (None, e.paths[0]): e for e in exact}
        if len(unique) == 1:
            return next(iter(unique.values()))
        if not unique:
            state = self._stopped_container(target)
            if state:
                raise NamespaceError(
                    f"container {target} is not running ({state}): it has no network namespace "
                    "until it starts (docker start)"
                )
            names = [e.name for e in entries]
            close = difflib.get_close_matches(target, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; 'ns' lists them"
            raise NamespaceError(f"no namespace named '{target}'{hint}")
        raise NamespaceError(
            f"'{target}' matches {len(unique)} namespaces: "
            f"{_candidates(unique.values())}; give more of the name"
        )

    def _stopped_container(self, target: str) -> str | None:
        """The state of a Docker container of that name or ID that is not running, or None."""
        if self.docker is None:
            return None
        from .docker import DockerClient, container_state

        return container_state(getattr(self.docker, "client", None) or DockerClient(), target)

    # ------------------------------------------------------------ labels
    def label(self, ns: NetNamespace) -> str:
        """How to name a namespace to the user: its name as `ns` lists it, with the
        container or network when known; looked up once per namespace."""
        if ns.key not in self._labels:
            entry = self.entry_for(ns)
            if entry is None:
                text = ns.label
            else:
                friendly = ", ".join(friendly_names(entry.labels))
                text = f"{entry.name} ({friendly})" if friendly else entry.name
            self._labels[ns.key] = text
        return self._labels[ns.key]

    def docker_endpoints(self, ns: NetNamespace) -> dict[str, dict[str, Any]]:
        """MAC -> container of the Docker network an overlay namespace belongs to ({} if none)."""
        entry = self.entry_for(ns)
        network_id = entry.labels.get("network_id") if entry is not None else None
        names = self.docker.names() if self.docker is not None and network_id else None
        return names.endpoints_on(network_id) if names is not None else {}


def _words(entry: NamespaceEntry) -> tuple[str, ...]:
    """What a target may name an entry by: its name, its files' names, its aliases
    (containers, networks, pods)."""
    return (entry.name, *map(os.path.basename, entry.paths), *entry.labels.get("aliases", ()))


def _candidates(entries: Iterable[NamespaceEntry]) -> str:
    """The candidates of an ambiguous target, each as `use` accepts it, with what lives there."""
    shown = []
    for entry in sorted(entries, key=lambda e: e.name):
        friendly = ", ".join(friendly_names(entry.labels))
        shown.append(f"{entry.name} ({friendly})" if friendly else entry.name)
    more = len(shown) - _SHOWN
    if more > 0:
        return ", ".join(shown[:_SHOWN]) + f" and {more} more ('ns' lists them)"
    return ", ".join(shown)


def _named_file(name: str) -> str | None:
    """The path of the namespace file called `name` when exactly one netns directory
    holds one (the same namespace in two directories counts once)."""
    if not name or name in (".", "..") or "/" in name:
        return None
    found: dict[Any, str] = {}
    for directory, _ in distinct_search_dirs():
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)  # a symlink is not a name (discovery skips them too)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.setdefault((st.st_dev, st.st_ino), path)
    return next(iter(found.values())) if len(found) == 1 else None
