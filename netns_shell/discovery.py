"""Find every network namespace on the host, like `lsns -t net` plus the netns directories.

Three sources, merged by namespace inode:

* the netns directories (`/var/run/docker/netns`, `/var/run/netns`, their
  `/run` aliases, and any in NETNS_SHELL_PATH): one file per namespace,
  possibly an empty file: a bind mount that did not propagate, or a leftover ("broken");
* nsfs bind mounts anywhere, from /proc/self/mountinfo;
* processes, from /proc/*/ns/net (namespaces held only by processes).

Names follow the file base name (`1-9tp0f348do`, `cni-...`); a namespace
known only through processes is named `pid:<lowest pid>`.  Identity is the
inode (dev, ino), never the name: when several namespaces share a base name
(several Docker engines on one host each hold `ingress_sbox` and
`1-<netid>`, or one name in two NETNS_SHELL_PATH directories), each is named
`TAG:NAME`, TAG being the shortest part of its directory that no other of
them has (`n1:1-cj79k8ryxj` for `/run/swarm/n1/exec/netns/1-cj79k8ryxj` beside
`/run/swarm/n2/exec/netns/...`), or by its full path when no such part exists.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import NamespaceError
from .mounts import Mount, mounts
from .namespace import (
    NETNS_DIRS,
    NetNamespace,
    distinct_search_dirs,
    empty_file_reason,
    run_in_each,
)

__all__ = [
    "NAME_LABELS",
    "NETNS_DIRS",
    "NamespaceEntry",
    "discover",
    "friendly_names",
    "kind_of",
    "matches_qualified",
]

KIND_HOST = "host"
KIND_OVERLAY = "docker overlay"
KIND_LB = "docker lb"
KIND_INGRESS = "docker ingress"
KIND_SANDBOX = "docker sandbox"
KIND_DOCKER = "docker"
KIND_CNI = "cni pod"
KIND_NAMED = "named"
KIND_MOUNT = "bind mount"
KIND_PROCESS = "process"
KIND_BROKEN = "broken"

#: labels that name what lives in a namespace (Docker container or network, Kubernetes pod);
#: records that mention a namespace carry them too (`find`, `links -d`, `topology`)
NAME_LABELS = ("container", "network", "pod", "pod_uid")


def friendly_names(labels: dict[str, Any]) -> list[str]:
    """How to name a namespace's content to a person: container, network, `namespace/pod`;
    a pod's UID only when the runtime did not say its name."""
    names = [labels[k] for k in ("container", "network", "pod") if labels.get(k)]
    if not names and labels.get("pod_uid"):
        names.append(f"pod uid {labels['pod_uid']}")
    return names


#: Docker's overlay namespace names, `<n>-<NetworkID[:10]>` (architecture.md fact 7): the one
#: place the pattern lives (docker, engine_view and swarm use it through the helpers below)
OVERLAY_NAME = re.compile(r"^\d+-([0-9a-z]{10})$")
#: and its load balancer's, `lb_<NetworkID[:9]>`
LB_PREFIX = "lb_"


def network_id_prefix(name: str) -> str | None:
    """The network ID prefix an overlay or load-balancer namespace name carries, or None."""
    overlay = OVERLAY_NAME.match(name)
    if overlay:
        return overlay.group(1)
    return name[len(LB_PREFIX) :] if name.startswith(LB_PREFIX) else None


def overlay_file_glob(network_id: str) -> str:
    """A glob (for a netns directory) of the overlay namespace files of a network."""
    return f"*-{network_id[:10]}"


_SANDBOX_RE = re.compile(r"^[0-9a-f]{12}$")


@dataclass
class NamespaceEntry:
    """One network namespace (or one broken namespace file) found on the host."""

    name: str
    kind: str
    inode: int | None
    dev: int | None = None
    paths: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    comms: dict[int, str] = field(default_factory=dict)
    links: int | None = None
    netnsid: int | None = None
    error: str | None = None
    #: Filled by enrichers (Docker, Kubernetes): container / network names.
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """The base name of the file the namespace is named after (its name, unqualified)."""
        return os.path.basename(self.paths[0]) if self.paths else self.name

    @property
    def key(self) -> tuple[int | None, int | None]:
        """Its identity: (dev, inode); (None, None) for a broken file."""
        return (self.dev, self.inode)

    @property
    def usable(self) -> bool:
        return self.inode is not None and self.error is None

    def open(self) -> NetNamespace:
        """A handle on this namespace, through its first path or a holder PID."""
        if self.error:
            raise NamespaceError(f"{self.name}: {self.error}")
        errors = []
        for path in self.paths:
            try:
                ns = NetNamespace.open_path(path, label=self.name)
            except NamespaceError as exc:
                errors.append(str(exc))
                continue
            if ns.inode == self.inode:
                if "container" in self.labels or "pod" in self.labels:
                    ns.keep_holder([self.labels.get("container_pid"), *self.pids])
                return ns
            ns.close()
        for pid in self.pids:
            try:
                ns = NetNamespace.open_pid(pid, label=self.name)
            except NamespaceError as exc:
                errors.append(str(exc))
                continue
            if ns.inode == self.inode:
                return ns
            ns.close()
        raise NamespaceError(errors[-1] if errors else f"{self.name}: namespace is gone")

    def record(self) -> dict[str, Any]:
        """The JSON record for `ns`."""
        rec: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "inode": self.inode,
            "paths": list(self.paths),
            "links": self.links,
            "netnsid": self.netnsid,
            "pids": list(self.pids),
            "processes": [{"pid": p, "comm": self.comms.get(p, "")} for p in self.pids],
        }
        rec.update(self.labels)
        if self.error:
            rec["error"] = self.error
        return rec


@functools.lru_cache(maxsize=64)
def _docker_netns_dir(directory: str) -> bool:
    """Is `directory` a Docker engine's namespace directory (`<exec-root>/netns`)?

    The default exec-root is /var/run/docker; an engine started with another
    `--exec-root` (several engines on one host) is known by what dockerd keeps
    beside `netns`: its `libnetwork` and `runtime-runc` directories.
    """
    if directory.endswith("/docker/netns"):
        return True
    if os.path.basename(directory) != "netns":
        return False
    parent = os.path.dirname(directory)
    for marker in ("libnetwork", "runtime-runc"):
        try:
            if stat.S_ISDIR(os.lstat(os.path.join(parent, marker)).st_mode):
                return True
        except OSError:
            continue
    return False


def _engine_alias(path: str) -> bool:
    """Docker's `<exec-root>/netns/default`: the engine's name for its host's namespace."""
    directory, name = os.path.split(path)
    return name == "default" and _docker_netns_dir(directory)


def kind_of(path: str) -> str:
    """The kind of namespace a file's location and name suggest."""
    directory, name = os.path.split(path)
    if _docker_netns_dir(directory):
        if OVERLAY_NAME.match(name):
            return KIND_OVERLAY
        if name.startswith(LB_PREFIX):
            return KIND_LB
        if name == "ingress_sbox":
            return KIND_INGRESS
        if _SANDBOX_RE.match(name):
            return KIND_SANDBOX
        return KIND_DOCKER
    if directory.endswith("/netns"):
        return KIND_CNI if name.startswith("cni-") else KIND_NAMED
    return KIND_MOUNT


def _nsfs_mounts(table: list[Mount]) -> dict[str, int]:
    """mount point -> net namespace inode, for every nsfs bind mount."""
    return {
        m.point: int(m.root[5:-1])
        for m in table
        if m.fstype == "nsfs" and m.root.startswith("net:[")
    }


def _scan_dirs(nsfs_dev: int) -> tuple[list[tuple[str, str, int, int]], list[str]]:
    """Files in the netns directories: ([(path, real path, dev, inode)], [broken paths])."""
    found: list[tuple[str, str, int, int]] = []
    broken: list[str] = []
    for directory, real in distinct_search_dirs():
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            try:
                st = os.lstat(path)  # a symlink is never a name: it could rename any namespace
            except OSError:
                continue
            if st.st_dev == nsfs_dev:
                found.append((path, os.path.join(real, name), st.st_dev, st.st_ino))
            elif stat.S_ISREG(st.st_mode):
                broken.append(path)
    return found, broken


def _scan_processes() -> dict[tuple[int, int], list[int]]:
    """(dev, inode) -> PIDs whose network namespace it is."""
    holders: dict[tuple[int, int], list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:
            continue  # gone, kernel thread without ns access, or no permission
        holders.setdefault((st.st_dev, st.st_ino), []).append(int(entry.name))
    for pids in holders.values():
        pids.sort()
    return holders


def _init_namespace_key() -> tuple[int, int] | None:
    """(dev, inode) of the initial network namespace: PID 1's, else kthreadd's.

    Kernel threads always live in the initial namespace, so PID 2 stands in
    when PID 1 is not readable (some sandboxes hide it).
    """
    for pid in (1, 2):
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        return (st.st_dev, st.st_ino)
    return None


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _count_links(ns: NetNamespace) -> int:
    from .netlink.core import NetlinkSocket
    from .netlink.links import count_links

    with NetlinkSocket(None) as sock:  # the worker thread is already inside `ns`
        return count_links(sock)


def _netnsid_query(entries: list[NamespaceEntry], handles: list[NetNamespace]) -> None:
    """Fill `netnsid`: the id the current namespace has assigned to each one."""
    from .netlink.core import NetlinkSocket
    from .netlink.nsid import netnsid_of

    try:
        with NetlinkSocket(None) as sock:
            for entry, ns in zip(entries, handles, strict=True):
                entry.netnsid = netnsid_of(sock, ns.fd)
    except OSError:
        pass


def discover(*, details: bool = True, comm: Callable[[int], str] = _comm) -> list[NamespaceEntry]:
    """Every network namespace on the host, host namespace first.

    With `details`, each usable namespace is visited once (on one worker
    thread) to count its links, and its netnsid is looked up.
    """
    nsfs_dev = os.stat("/proc/self/ns/net").st_dev
    files, broken = _scan_dirs(nsfs_dev)
    table = mounts()  # read once: nsfs bind mounts, and what each empty file lies on
    nsfs = _nsfs_mounts(table)
    holders = _scan_processes()
    init_key = _init_namespace_key()

    by_key: dict[tuple[int, int], NamespaceEntry] = {}
    order: list[tuple[int, int]] = []

    def entry_for(key: tuple[int, int], path: str | None) -> NamespaceEntry:
        if key not in by_key:
            name = os.path.basename(path) if path else ""
            by_key[key] = NamespaceEntry(
                name=name, kind=kind_of(path) if path else KIND_PROCESS, inode=key[1], dev=key[0]
            )
            order.append(key)
        entry = by_key[key]
        if path and path not in entry.paths:
            if entry.paths and _engine_alias(entry.paths[0]) and not _engine_alias(path):
                # an engine's `default` is its alias for the node's own namespace:
                # a name someone gave it (ip netns, a bind mount) says more
                entry.paths.insert(0, path)
                entry.name, entry.kind = os.path.basename(path), kind_of(path)
            else:
                entry.paths.append(path)
        return entry

    real_seen = set()
    for path, real, dev, ino in files:
        entry_for((dev, ino), path)
        real_seen.add(real)
    for point, ino in sorted(nsfs.items()):
        if point not in real_seen:  # mountinfo paths are canonical already
            entry_for((nsfs_dev, ino), point)
    for key, pids in holders.items():
        entry = entry_for(key, None)
        entry.pids = pids
        entry.comms = {pid: comm(pid) for pid in pids}
    for entry in by_key.values():
        if not entry.name:
            entry.name = f"pid:{entry.pids[0]}" if entry.pids else f"inode:{entry.inode}"
    if init_key in by_key:
        host = by_key[init_key]
        host.kind = KIND_HOST
        if not host.paths:
            host.name = "host"
        order.remove(init_key)
        order.insert(0, init_key)

    entries = [by_key[key] for key in order]
    entries += [
        NamespaceEntry(
            name=os.path.basename(p),
            kind=KIND_BROKEN,
            inode=None,
            paths=[p],
            error=empty_file_reason(p, table),
        )
        for p in broken
    ]
    _qualify_shared_names(entries)
    if details:
        fill_details(entries)
    return entries


def _qualify_shared_names(entries: list[NamespaceEntry]) -> None:
    """Give each namespace a name no other has: `TAG:NAME` (or its path) for shared names."""
    groups: dict[str, list[NamespaceEntry]] = {}
    for entry in entries:
        if entry.paths:
            groups.setdefault(entry.name, []).append(entry)
    for name, group in groups.items():
        if len(group) < 2:
            continue
        directories = [os.path.dirname(entry.paths[0]) for entry in group]
        tags = _directory_tags(directories)
        for entry, directory, tag in zip(group, directories, tags, strict=True):
            entry.name = f"{tag}:{name}" if tag else os.path.join(directory, name)


def _directory_tags(directories: list[str]) -> list[str | None]:
    """What tells each directory from the others: its shortest run of whole path components
    that no other directory holds (`n1` for `/run/s/n1/exec/netns` beside `/run/s/n2/exec/netns`),
    the one nearest the file among runs as short; None when it has none (its path must do).

    `use TAG:NAME` (see matches_qualified) then finds exactly that directory's file.
    """
    parts = [[c for c in d.split("/") if c] for d in directories]
    tags: list[str | None] = []
    for k, mine in enumerate(parts):
        others = [p for j, p in enumerate(parts) if j != k]
        tags.append(_unique_run(mine, others))
    return tags


def _unique_run(mine: list[str], others: list[list[str]]) -> str | None:
    for length in range(1, len(mine) + 1):
        for start in range(len(mine) - length, -1, -1):  # nearest the file first
            run = mine[start : start + length]
            if any(":" in c for c in run):
                continue
            if not any(_holds_run(other, run) for other in others):
                return "/".join(run)
    return None


def _holds_run(parts: list[str], run: list[str]) -> bool:
    return any(parts[i : i + len(run)] == run for i in range(len(parts) - len(run) + 1))


def matches_qualified(entry: NamespaceEntry, target: str) -> bool:
    """Whether `target` is `TAG:NAME` for this entry: one of its files is called NAME and
    TAG is a run of whole components of that file's directory (`n1:1-cj79k8ryxj`,
    `exec/netns:ingress_sbox`).  Accepted even when the name is no longer shared."""
    tag, sep, name = target.partition(":")
    if not sep or not tag or not name:
        return False
    wanted = [c for c in tag.split("/") if c]
    for path in entry.paths:
        directory, base = os.path.split(path)
        if base == name and _holds_run([c for c in directory.split("/") if c], wanted):
            return True
    return False


def fill_details(entries: Iterable[NamespaceEntry]) -> None:
    """Count links and look up netnsids, visiting each namespace once."""
    usable = [e for e in entries if e.usable]
    handles: list[NetNamespace] = []
    opened: list[NamespaceEntry] = []
    for entry in usable:
        try:
            handles.append(entry.open())
            opened.append(entry)
        except NamespaceError as exc:
            entry.error = str(exc)
    try:
        for entry, (_ns, result) in zip(opened, run_in_each(handles, _count_links), strict=True):
            entry.links = result if isinstance(result, int) else None
        _netnsid_query(opened, handles)
    finally:
        for ns in handles:
            ns.close()
