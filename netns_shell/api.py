"""The library surface for scripts: the queries the commands use, on any namespace.

    from netns_shell import api

    with api.open_namespace("1-9tp0f348do") as ns:          # name, prefix, path, PID, container
        for entry in api.fdb(ns, bridge="br0"):
            print(entry["mac"], entry.get("dst"))

    print(api.find("10.0.1.3"))                               # every namespace on the host
    api.capture_to_file("web", "/tmp/web.pcap", bpf="tcp port 80", count=100)

    with api.Namespace(4242, "net"):                          # python-nsenter compatible
        subprocess.run(["ip", "addr"])

Functions take a namespace handle or anything `open_namespace` accepts, and
return lists of plain dicts with iproute2's JSON keys (the same records
`--json` prints).  For tables too big for a list, use the streaming
generators in `netns_shell.netlink` directly.  Nothing here moves the
calling thread, except `Namespace`, whose purpose that is.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

from .catalogue import Catalogue
from .errors import NamespaceError, UsageError
from .namespace import NAMESPACE_TYPES, NetNamespace, namespace_type, setns

__all__ = [
    "Namespace",
    "capture_to_file",
    "fdb",
    "find",
    "links",
    "namespaces",
    "neighbours",
    "open_namespace",
    "routes",
]

Target = NetNamespace | str | int
_FAMILIES = {None: socket.AF_UNSPEC, 4: socket.AF_INET, 6: socket.AF_INET6}


def open_namespace(target: str | int, *, docker: bool = True, cri: bool = True) -> NetNamespace:
    """A handle on a network namespace; close it (or use `with`) when done.

    `target`: a PID (int or 'pid:N'), a path, or a name as `ns` lists it
    (`TAG:NAME` when several directories hold NAME), a unique prefix of one,
    an inode, or (with a Docker engine) a container name or ID or an
    overlay's network name, or (with a CRI runtime) a pod as `pod` or
    `namespace/pod`.  Never creates a namespace.
    """
    if isinstance(target, int):
        return NetNamespace.open_pid(target)
    return _catalogue(docker=docker, cri=cri).resolve(str(target))


def _catalogue(*, docker: bool, cri: bool) -> Catalogue:
    """A catalogue asking the engines that are wanted (quietly: a script gets no warnings)."""
    enrichers = []
    if docker:
        from .docker import docker_enricher

        enrichers.append(docker_enricher(lambda message: None))
    if cri:
        from .cri import cri_enricher

        enrichers.append(cri_enricher(lambda message: None))
    return Catalogue(enrichers)


@contextlib.contextmanager
def _handle(target: Target) -> Iterator[NetNamespace]:
    if isinstance(target, NetNamespace):
        yield target
    else:
        with open_namespace(target) as ns:
            yield ns


def links(target: Target, *, name: str | None = None, detail: bool = False) -> list[dict]:
    """Links with their addresses (`ip -j -d addr show`); `detail` adds veth peers."""
    from .netlink.links import list_links

    with _handle(target) as ns:
        records = list_links(ns, name=name)
        if detail:
            from .discovery import discover
            from .peers import annotate_peers

            records = annotate_peers(ns, records, discover(details=False))
        return list(records)


def routes(
    target: Target, *, family: int | None = None, table: str | int = "main", dev: str | None = None
) -> list[dict]:
    """Routes (`ip -j route show`): family 4, 6 or None (both); table id, name or 'all'."""
    from .netlink.routes import list_routes, parse_table

    table_id = table if isinstance(table, int) else parse_table(table)
    with _handle(target) as ns:
        return list(list_routes(ns, family=_family(family), table=table_id, dev=dev))


def neighbours(target: Target, *, family: int | None = None, dev: str | None = None) -> list[dict]:
    """ARP/NDP entries (`ip -j neigh show`)."""
    from .netlink.neighbours import list_neighbours

    with _handle(target) as ns:
        return list(list_neighbours(ns, family=_family(family), dev=dev))


def fdb(target: Target, *, bridge: str | None = None, dev: str | None = None) -> list[dict]:
    """Bridge forwarding database (`bridge -j fdb show`), with vxlan `dst` VTEPs."""
    from .netlink.neighbours import list_fdb

    with _handle(target) as ns:
        return list(list_fdb(ns, bridge=bridge, dev=dev))


def namespaces(*, details: bool = True, docker: bool = True, cri: bool = True) -> list[dict]:
    """Every network namespace on the host, as `ns --json` prints them (`pod` keys from the
    CRI runtime when `cri`)."""
    entries = _catalogue(docker=docker, cri=cri).discover(details=details)
    return [entry.record() for entry in entries]


def find(needle: str, *, docker: bool = True, cri: bool = True) -> list[dict]:
    """Where an IP, MAC or interface name appears, across every namespace."""
    from .search import find as search
    from .search import parse_needle

    entries = _catalogue(docker=docker, cri=cri).discover(details=False)
    return list(search(entries, parse_needle(needle)))


def capture_to_file(
    target: Target,
    path: str,
    *,
    interface: str | None = None,
    bpf: str | None = None,
    count: int | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    """Write packets to a pcap file until `count` packets or `duration` seconds.

    Returns {"captured", "received", "dropped", "interface", "reason"}.
    Ctrl-C (KeyboardInterrupt) ends it early, the file stays valid.
    """
    if count is None and duration is None:
        raise UsageError("capture_to_file: give count or duration (or both)")
    from .capture import StopRequest, list_interfaces, open_dumper, open_live, write_packets

    with _handle(target) as ns:
        device = interface or list_interfaces(ns).default()
        source = open_live(ns, device)
        try:
            if bpf:
                source.handle.set_filter(bpf)
            dumper = open_dumper(source.handle, path)
            try:
                finished = None
                for event in write_packets(
                    source, dumper, StopRequest(), count=count, duration=duration
                ):
                    finished = event
            finally:
                dumper.close()
        finally:
            source.close()
    stats = getattr(finished, "stats", None)
    return {
        "captured": finished.captured,
        "interface": device,
        "reason": finished.reason,
        "received": stats.received if stats else None,
        "dropped": stats.dropped if stats else None,
        "error": finished.error,
    }


def _family(family: int | None) -> int:
    try:
        return _FAMILIES[family]
    except KeyError:
        raise UsageError(f"family must be 4, 6 or None, not {family!r}") from None


class Namespace:
    """Enter a namespace for the calling thread, like python-nsenter's Namespace.

        with Namespace(pid_or_path, "net"):
            subprocess.run(["ip", "link"])   # a child starts in the namespace

    Only the calling thread moves (setns(2)); other threads, sockets made
    before, and the rest of the process stay where they were, and the thread
    goes back on exit.  Mount and user namespaces cannot be entered by a
    multithreaded process (the kernel answers EINVAL); run such work in a
    child process (`netns-shell -t PID -c 'exec -m ...'`).  `proc` is where
    /proc is mounted.
    """

    def __init__(self, target: int | str, ns_type: str = "net", proc: str = "/proc"):
        types = {name: kind for kind, (name, _) in NAMESPACE_TYPES.items()}
        if ns_type not in types:
            raise UsageError(f"unknown namespace type {ns_type!r} (one of {', '.join(types)})")
        self.kind = types[ns_type]
        self.ns_type = ns_type
        self.path = f"{proc}/{target}/ns/{ns_type}" if isinstance(target, int) else str(target)
        self._home: int | None = None
        self._target: int | None = None

    def __enter__(self) -> Namespace:
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        if namespace_type(fd) != self.kind:
            os.close(fd)
            raise NamespaceError(f"{self.path}: not a {self.ns_type} namespace")
        self._target = fd
        self._home = os.open(f"/proc/thread-self/ns/{self.ns_type}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd, self.kind)
        except OSError as exc:
            self._close()
            raise NamespaceError(f"{self.path}: cannot enter: {exc.strerror}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._home is not None:
                setns(self._home, self.kind)
        finally:
            self._close()

    def _close(self) -> None:
        for fd in (self._home, self._target):
            if fd is not None:
                os.close(fd)
        self._home = self._target = None
