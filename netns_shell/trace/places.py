"""The namespaces a trace passes through: opened once, named, and placed on their node.

A `Place` is one namespace on the path with its handle and what was read
from it (links, netfilter rules, sysctls), read once per trace.  `Places`
opens them (by discovery entry, by veth peer or vxlan socket NSID, by path
on another node) and names them: the namespace's file name, the node whose
engine keeps that directory, and the container or network living in it --
from discovery's labels, or from the engine of the node that owns it (a
swarm node's sandboxes are not this shell's own engine's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..discovery import NAME_LABELS, NamespaceEntry
from ..docker import DockerError, DockerNames
from ..engine_view import EngineView, OverlayNode
from ..namespace import NetNamespace
from ..netlink.core import NetlinkSocket
from ..netlink.links import list_links
from ..peers import PeerResolver
from .records import Frame, HopLog, Record
from .rules import RuleSet, load_rules

__all__ = ["Place", "Places"]


@dataclass
class Place:
    """One namespace on the path: its handle, its names and what was read from it."""

    ns: NetNamespace
    netns: str
    node: str
    name: str = ""  # container / network / pod
    path: str = ""
    entry: NamespaceEntry | None = None
    _sock: NetlinkSocket | None = None
    _links: dict[str, Record] | None = None
    _rules: tuple[RuleSet | None, str] | None = None

    @property
    def sock(self) -> NetlinkSocket:
        if self._sock is None:
            self._sock = NetlinkSocket(self.ns, strict=False)
        return self._sock

    @property
    def links(self) -> dict[str, Record]:
        if self._links is None:
            self._links = {r["ifname"]: r for r in list_links(self.ns, sock=self.sock)}
        return self._links

    def link(self, name: str | None) -> Record:
        return self.links.get(name or "", {})

    def by_index(self, index: int) -> Record:
        return next((r for r in self.links.values() if r["ifindex"] == index), {})

    def rules(self) -> tuple[RuleSet | None, str]:
        if self._rules is None:
            self._rules = load_rules(self.ns)
        return self._rules

    def sysctl(self, path: str) -> str | None:
        def read() -> str | None:
            try:
                with open(f"/proc/sys/net/{path}") as fh:
                    return fh.read().strip()
            except OSError:
                return None

        return self.ns.run(read)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self.ns.close()


class Places(HopLog):
    """Opens, names and closes the namespaces of one walk (all closed by `close_all`).

    `entries`: the namespaces this shell can open (discovery); `nodes`: the
    cluster's nodes (engines), to say on which node a namespace is and what
    lives in it.  The walk steps the other modules add are declared here so
    that each module can call the others.
    """

    def __init__(
        self,
        entries: list[NamespaceEntry],
        nodes: list[OverlayNode] | None = None,
        *,
        judge: bool = True,
    ):
        super().__init__()
        self.entries = entries
        self.nodes = list(nodes or [])
        #: whether to drop a packet the kernel still sends on, on what the engines or the
        #: destination say (a neighbour to a MAC that is not the destination's, an FDB entry
        #: to another VTEP than the engine's); False: follow the kernel only
        self.judge = judge
        #: set when the walk ended on such a judgement
        self.judged = False
        self._places: list[Place] = []
        self._resolver = PeerResolver(entries)
        self._names: dict[str, DockerNames | None] = {}  # node -> what its engine names
        self._opaque = False  # set by _segment_owner: the segment leaves what can be seen

    def close_all(self) -> None:
        for p in self._places:
            try:
                p.close()
            except OSError:
                pass

    def _place(self, ns: NetNamespace, entry: NamespaceEntry | None = None) -> Place:
        entry = entry or self._entry_of(ns)
        # the file's own name: `node` says which engine's copy (`ns` says TAG:NAME for that)
        netns = entry.base if entry is not None else ns.label
        path = entry.paths[0] if entry is not None and entry.paths else ns.path
        node = self._node_of(path)
        name = _name_in(entry.labels) if entry is not None else ""
        place = Place(ns, os.path.basename(netns), node, name=name, entry=entry, path=path)
        if not name:
            place.name = self._engine_name(node, path)
        self._places.append(place)
        return place

    def _engine_name(self, node_name: str, path: str) -> str:
        """The container or network in the namespace file `path`, from the engine of the node
        whose namespace directory holds it ("" when none says)."""
        node = next((n for n in self.nodes if n.name == node_name), None)
        if node is None or node.error is not None or not _under(path, node.netns_dir):
            return ""
        if node.name not in self._names:
            try:
                self._names[node.name] = DockerNames.load(node.client)
            except DockerError:
                self._names[node.name] = None
        names = self._names[node.name]
        return _name_in(names.labels_for(os.path.basename(path))) if names else ""

    def _entry_of(self, ns: NetNamespace) -> NamespaceEntry | None:
        return next((e for e in self.entries if (e.dev, e.inode) == ns.key), None)

    def _node_of(self, path: str) -> str:
        for node in self.nodes:
            if _under(path, node.netns_dir):
                return node.name
            if node.name and os.path.basename(path).endswith(f"-{node.name}"):
                return node.name  # the node's own namespace (the swarm lab names them so)
        return self.nodes[0].name if self.nodes else "local"

    def _open(self, entry: NamespaceEntry) -> Place:
        return self._place(entry.open(), entry)

    def _place_for(self, entry: NamespaceEntry) -> Place:
        for p in self._places:
            if (p.ns.dev, p.ns.inode) == (entry.dev, entry.inode) and p.ns.fd >= 0:
                return p
        return self._open(entry)

    def _entry_at(self, path: str) -> NamespaceEntry | None:
        for entry in self.entries:
            if path in entry.paths:
                return entry
        try:
            st = os.stat(path)
        except OSError:
            return None
        return next((e for e in self.entries if (e.dev, e.inode) == (st.st_dev, st.st_ino)), None)

    # the steps of the walk, one module each (routing, links, bridge, underlay)
    def _route(self, place: Place, iif: str | None, frame: Frame) -> None:
        raise NotImplementedError

    def _egress(self, place: Place, out: Record, frame: Frame) -> None:
        raise NotImplementedError

    def _ingress(self, place: Place, link: Record, frame: Frame) -> None:
        raise NotImplementedError

    def _bridge(self, place: Place, bridge: Record, in_port: Record | None, frame: Frame) -> None:
        raise NotImplementedError

    def _vxlan(self, place: Place, dev: Record, frame: Frame) -> None:
        raise NotImplementedError

    def _vxlan_dst(self, place: Place, dev: Record, mac: str) -> Record | None:
        raise NotImplementedError

    def _peer(self, place: Place, link: Record) -> tuple[Place, Record] | None:
        raise NotImplementedError

    def _check_link(self, place: Place, step: str, link: Record, what: str) -> None:
        raise NotImplementedError

    def _segment_owner(self, place: Place, out: Record, ip: str) -> tuple[str, str, str] | None:
        raise NotImplementedError

    def _view_for(self, place: Place) -> EngineView | None:
        raise NotImplementedError

    def _judge_neighbour(
        self,
        place: Place,
        step: str,
        out: Record,
        ip: str,
        neighbour: Record,
        asked: str,
        iif: str | None,
    ) -> None:
        raise NotImplementedError

    def _check_link(self, place: Place, step: str, link: Record, what: str) -> None:
        raise NotImplementedError


def _name_in(labels: dict) -> str:
    return next((str(labels[k]) for k in NAME_LABELS if labels.get(k)), "")


def _under(path: str, directory: str | None) -> bool:
    return bool(directory) and path.startswith(str(directory).rstrip("/") + "/")
