"""`check`: an overlay's kernel tables against what the engine believes, node by node.

For one node and one overlay network: the engine's view (engine_view.py) says
which endpoints exist, on which VTEP, and which nodes gossip; the overlay
namespace's vxlan FDB and neighbour table say what the kernel will do.  Each
disagreement is a finding with a stable kind (docs/check.md):

    stale-fdb, stale-neigh      an entry for a MAC/IP no endpoint of the network has
    missing-fdb, missing-neigh  a remote endpoint the engine knows, with no entry here
    wrong-vtep                  an FDB dst that is not the endpoint's host address
    mac-ip-mismatch             a neighbour whose MAC is not the engine's MAC for that IP
    learned-only                a remote MAC known only through a learned entry (ages out)
    peer-missing                a node hosting endpoints that is absent from Peers
    vtep-unreachable            no route to a VTEP from the vxlan socket's namespace, or a
                                source address other than the node's advertised one
    mtu                         overlay MTU + 50 larger than the underlay's MTU to a VTEP
    ipvs-backends               in lb_<netid>: IPVS real servers other than the service's tasks
    views-differ                (cluster) two nodes' engines disagree on an endpoint
    node-unreachable            (cluster) a node's engine did not answer

Findings are plain records: kind, severity, node, namespace, network, mac, ip,
vtep, expected, found, explanation, hint.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .discovery import NamespaceEntry
from .engine_view import Endpoint, EngineView, overlay_mac
from .namespace import NetNamespace
from .netlink.core import NetlinkSocket
from .netlink.links import list_links
from .netlink.neighbours import list_fdb, list_neighbours
from .netlink.routes import route_get
from .overlay import underlay_namespace

__all__ = [
    "KINDS",
    "KernelTables",
    "check_node",
    "cross_node_findings",
    "ipvs_findings",
    "read_tables",
]

KINDS = (
    "stale-fdb",
    "stale-neigh",
    "missing-fdb",
    "missing-neigh",
    "wrong-vtep",
    "mac-ip-mismatch",
    "learned-only",
    "peer-missing",
    "vtep-unreachable",
    "mtu",
    "ipvs-backends",
    "views-differ",
    "node-unreachable",
)
_WARNINGS = {"stale-fdb", "stale-neigh", "learned-only", "views-differ", "mtu"}
VXLAN_OVERHEAD = 50
_PERMANENT = {"permanent", "static"}

Finding = dict[str, Any]


@dataclass
class KernelTables:
    """The vxlan side of one overlay namespace: remote FDB entries and neighbours."""

    path: str
    vxlan: str
    mtu: int
    #: MAC -> FDB records on the vxlan device with a dst (several: a learned and a permanent one)
    fdb: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: IP -> neighbour record on the vxlan device
    neigh: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: VTEP -> (route record or None, underlay MTU toward it); None: the namespace of the
    #: vxlan's socket could not be found, so routes were not checked
    routes: dict[str, tuple[dict[str, Any] | None, int | None]] | None = field(default_factory=dict)

    def digest(self) -> dict[str, int]:
        return {"fdb": sum(len(v) for v in self.fdb.values()), "neigh": len(self.neigh)}


def read_tables(
    path: str, entries: Iterable[NamespaceEntry], vteps: Iterable[str] = ()
) -> KernelTables:
    """Dump the overlay namespace at `path`; routes to `vteps` (and every FDB dst) from the
    namespace that holds the vxlan's UDP socket."""
    entries = list(entries)
    with NetNamespace.open_path(path) as ns, NetlinkSocket(ns) as sock:
        links = list(list_links(ns, sock=sock))
        vxlans = [link for link in links if link.get("linkinfo", {}).get("info_kind") == "vxlan"]
        if not vxlans:
            raise LookupError(f"{path}: no vxlan device")
        vxlan = vxlans[0]
        tables = KernelTables(path, vxlan["ifname"], int(vxlan.get("mtu") or 0))
        for entry in list_fdb(ns, dev=vxlan["ifname"], sock=sock):
            mac = entry.get("mac") or ""
            if "dst" in entry and mac and not _is_group(mac) and mac != "00:00:00:00:00:00":
                tables.fdb.setdefault(mac, []).append(dict(entry))
        for entry in list_neighbours(ns, dev=vxlan["ifname"], sock=sock):
            if entry.get("dst") and ":" not in entry["dst"]:
                tables.neigh[entry["dst"]] = dict(entry)
        wanted = set(vteps) | {e["dst"] for es in tables.fdb.values() for e in es}
        underlay = underlay_namespace(ns, sock, vxlans, entries)
        if underlay is ns and vxlan.get("link_netnsid") is not None:
            tables.routes = None  # its socket lives elsewhere and that namespace is unnamed
            return tables
        try:
            tables.routes = _routes(underlay, sorted(wanted))
        finally:
            if underlay is not ns:
                underlay.close()
    return tables


def _routes(
    underlay: NetNamespace, vteps: list[str]
) -> dict[str, tuple[dict[str, Any] | None, int | None]]:
    found: dict[str, tuple[dict[str, Any] | None, int | None]] = {}
    with NetlinkSocket(underlay, strict=False) as sock:
        mtus = {link["ifname"]: link.get("mtu") for link in list_links(underlay, sock=sock)}
        for vtep in vteps:
            route = route_get(underlay, vtep, sock=sock)
            route = dict(route) if route is not None else None
            found[vtep] = (route, mtus.get(route.get("dev")) if route else None)
    return found


def _is_group(mac: str) -> bool:
    return int(mac[:2], 16) & 1 == 1


def _is_permanent(entry: dict[str, Any]) -> bool:
    return entry.get("state") in _PERMANENT


def check_node(
    view: EngineView,
    tables: KernelTables,
    *,
    lb_endpoints: dict[str, Endpoint] | None = None,
    silent_vteps: set[str] | None = None,
) -> list[Finding]:
    """The findings of one node for one network.

    `lb_endpoints` (IP -> endpoint): the other nodes' load-balancer endpoints, which
    no engine lists among its tasks (cluster mode reads them from each node).  Without
    them, one unexplained endpoint-shaped entry per live peer VTEP is taken for that
    peer's load balancer when the network has services with a VIP; in cluster mode that
    guess is made only for `silent_vteps`, the nodes whose engine did not answer.
    """
    make = _Maker(view, tables)
    known = dict(view.endpoints)
    remote = {ip: e for ip, e in known.items() if not e.local}
    for ip, endpoint in (lb_endpoints or {}).items():
        known.setdefault(ip, endpoint)  # a node out of gossip keeps its lb: only not stale
        if not endpoint.local and endpoint.vtep in view.peers and endpoint.vtep != view.node_addr:
            remote.setdefault(ip, endpoint)
    guessed = _guess_peer_load_balancers(view, tables, known)
    for ip, endpoint in guessed.items():
        if lb_endpoints is None or endpoint.vtep in (silent_vteps or set()):
            known[ip] = remote[ip] = endpoint
    by_mac = {e.mac: e for e in known.values() if e.mac}
    findings: list[Finding] = []
    findings += _fdb_findings(make, tables, by_mac, remote)
    findings += _neigh_findings(make, tables, known, remote)
    findings += _peer_findings(make, view, remote)
    findings += _route_findings(make, view, tables, remote)
    return findings


def _fdb_findings(make, tables, by_mac, remote) -> list[Finding]:
    found = []
    for mac, entries in sorted(tables.fdb.items()):
        endpoint = by_mac.get(mac)
        permanent = [e for e in entries if _is_permanent(e)]
        if endpoint is None or endpoint.local:
            why = (
                "the MAC of an endpoint on this node, sent to a VTEP"
                if endpoint is not None
                else "no task or container of the network has this MAC"
            )
            for entry in entries:
                dst = entry["dst"]
                found.append(make("stale-fdb", mac=mac, vtep=dst, found=_fdb_text(entry),
                                  explanation=why, hint=make.fdb_del(mac, dst)))  # fmt: skip
            continue
        if not permanent:
            found.append(make("learned-only", mac=mac, ip=endpoint.ip, vtep=endpoint.vtep,
                              expected=f"{mac} dst {endpoint.vtep} self permanent",
                              found=", ".join(_fdb_text(e) for e in entries),
                              explanation=f"{endpoint.name}: known only by learning; "
                              "it ages out (300 s) and traffic then floods or stops",
                              hint=make.fdb_replace(mac, endpoint.vtep)))  # fmt: skip
            continue
        for entry in permanent:
            if entry["dst"] != endpoint.vtep:
                found.append(make("wrong-vtep", mac=mac, ip=endpoint.ip, vtep=entry["dst"],
                                  expected=f"dst {endpoint.vtep}", found=_fdb_text(entry),
                                  explanation=f"{endpoint.name} is hosted on {endpoint.vtep}",
                                  hint=make.fdb_replace(mac, endpoint.vtep)))  # fmt: skip
    for ip, endpoint in sorted(remote.items()):
        if endpoint.mac and endpoint.mac not in tables.fdb:
            found.append(make("missing-fdb", mac=endpoint.mac, ip=ip, vtep=endpoint.vtep,
                              expected=f"{endpoint.mac} dst {endpoint.vtep} self permanent",
                              found="no entry",
                              explanation=f"{endpoint.name}: frames to it are not tunnelled",
                              hint=make.fdb_replace(endpoint.mac, endpoint.vtep)))  # fmt: skip
    return found


def _neigh_findings(make, tables, known, remote) -> list[Finding]:
    found = []
    for ip, entry in sorted(tables.neigh.items()):
        endpoint = known.get(ip)
        if endpoint is None or endpoint.local:
            why = (
                "the address of an endpoint on this node, on the vxlan device"
                if endpoint is not None
                else "no task or container of the network has this address"
            )
            found.append(make("stale-neigh", ip=ip, mac=entry.get("lladdr"),
                              found=_neigh_text(entry), explanation=why,
                              hint=make.neigh_del(ip)))  # fmt: skip
        elif endpoint.mac and entry.get("lladdr") != endpoint.mac:
            found.append(make("mac-ip-mismatch", ip=ip, mac=entry.get("lladdr"),
                              vtep=endpoint.vtep, expected=f"lladdr {endpoint.mac}",
                              found=_neigh_text(entry),
                              explanation=f"{endpoint.name} has MAC {endpoint.mac}",
                              hint=make.neigh_replace(ip, endpoint.mac)))  # fmt: skip
    for ip, endpoint in sorted(remote.items()):
        if ip not in tables.neigh:
            found.append(make("missing-neigh", ip=ip, mac=endpoint.mac, vtep=endpoint.vtep,
                              expected=f"{ip} lladdr {endpoint.mac} PERMANENT", found="no entry",
                              explanation=f"{endpoint.name}: nothing answers ARP for it here",
                              hint=make.neigh_replace(ip, endpoint.mac)))  # fmt: skip
    return found


def _peer_findings(make, view: EngineView, remote: dict[str, Endpoint]) -> list[Finding]:
    hosts: dict[str, list[str]] = defaultdict(list)
    for endpoint in remote.values():
        if endpoint.vtep:
            hosts[endpoint.vtep].append(endpoint.name)
    return [
        make("peer-missing", vtep=vtep, expected=f"{vtep} among Peers",
             found=", ".join(sorted(view.peers)) or "no peers",
             explanation=f"the node at {vtep} hosts {len(names)} endpoint(s) "
             f"({', '.join(sorted(names)[:3])}) but does not gossip with this node",
             hint=f"docker node ls; check TCP/UDP 7946 between {view.node_addr} and {vtep}")
        for vtep, names in sorted(hosts.items())
        if vtep not in view.peers
    ]  # fmt: skip


def _route_findings(make, view, tables: KernelTables, remote) -> list[Finding]:
    found: list[Finding] = []
    if tables.routes is None:
        return found
    vteps = sorted({e.vtep for e in remote.values() if e.vtep})
    for vtep in vteps:
        route, underlay_mtu = tables.routes.get(vtep, (None, None))
        if route is None:
            found.append(make("vtep-unreachable", vtep=vtep, expected=f"a route to {vtep}",
                              found="no route", explanation="the vxlan socket's namespace "
                              "cannot reach this VTEP: every frame to it is dropped",
                              hint=f"ip route get {vtep} (in the node's namespace)"))  # fmt: skip
            continue
        source = route.get("prefsrc")
        if view.node_addr and source and source != view.node_addr:
            found.append(make("vtep-unreachable", vtep=vtep, expected=f"src {view.node_addr}",
                              found=f"src {source} dev {route.get('dev')}",
                              explanation="packets to this VTEP leave from an address other "
                              "than the one this node advertises; replies miss the tunnel",
                              hint=f"ip route get {vtep} (in the node's namespace)"))  # fmt: skip
        if underlay_mtu and tables.mtu + VXLAN_OVERHEAD > underlay_mtu:
            found.append(make("mtu", vtep=vtep, expected=f"<= {underlay_mtu - VXLAN_OVERHEAD}",
                              found=f"{tables.vxlan} mtu {tables.mtu}",
                              explanation=f"{tables.mtu} + {VXLAN_OVERHEAD} bytes of VXLAN "
                              f"exceed the underlay MTU {underlay_mtu} toward {vtep}",
                              hint="docker network create --opt com.docker.network.driver.mtu="
                              f"{underlay_mtu - VXLAN_OVERHEAD} ..."))  # fmt: skip
    return found


def _guess_peer_load_balancers(
    view: EngineView, tables: KernelTables, known: dict[str, Endpoint]
) -> dict[str, Endpoint]:
    """Engines list no other node's load-balancer endpoint: take the one unexplained, fully
    programmed (FDB + neighbour, overlay MAC) entry of a live peer VTEP for it."""
    if not view.has_vips:
        return {}
    per_vtep: dict[str, list[str]] = defaultdict(list)
    for ip, entry in tables.neigh.items():
        mac = overlay_mac(ip)
        if ip in known or entry.get("lladdr") != mac:
            continue
        dsts = {e["dst"] for e in tables.fdb.get(mac, ()) if _is_permanent(e)}
        if len(dsts) == 1:
            (vtep,) = dsts
            if vtep in view.peers and vtep != view.node_addr:
                per_vtep[vtep].append(ip)
    return {
        ips[0]: Endpoint(ips[0], overlay_mac(ips[0]), vtep, f"lb endpoint of {vtep}", "")
        for vtep, ips in per_vtep.items()
        if len(ips) == 1
    }


def cross_node_findings(views: list[EngineView]) -> list[Finding]:
    """Endpoints some engines know and others do not, or place on another VTEP; nodes that
    answer and host endpoints but that another node does not gossip with (peer-missing)."""
    found: list[Finding] = []
    attached = [v for v in views if v.endpoints]
    if len(attached) < 2:
        return found
    found += _cross_peer_findings(attached)
    placements: dict[str, dict[str, str | None]] = defaultdict(dict)  # ip -> node -> vtep
    for view in attached:
        for ip, endpoint in view.endpoints.items():
            if view.load_balancer is None or ip != view.load_balancer.ip:  # only it lists it
                placements[ip][view.node] = endpoint.vtep or view.node_addr
    for ip, seen in sorted(placements.items()):
        names = {v.node for v in attached}
        missing = sorted(names - set(seen))
        vteps = set(seen.values())
        if not missing and len(vteps) == 1:
            continue
        network = attached[0].network
        for node in missing:
            found.append({
                **_blank(), "kind": "views-differ", "severity": "warning", "node": node,
                "network": network, "ip": ip, "mac": overlay_mac(ip),
                "expected": f"known (as on {', '.join(sorted(seen))})", "found": "unknown",
                "explanation": f"the engine on {node} does not list {ip}, which "
                f"{', '.join(sorted(seen))} list",
                "hint": f"docker -H <{node}> network inspect -v {network}",
            })  # fmt: skip
        if len(vteps) > 1:
            found.append({
                **_blank(), "kind": "views-differ", "severity": "warning", "node": "*",
                "network": network, "ip": ip, "mac": overlay_mac(ip),
                "expected": "one VTEP",
                "found": "; ".join(f"{n}: {v}" for n, v in sorted(seen.items())),
                "explanation": f"the engines place {ip} on different nodes",
                "hint": f"docker -H <node> network inspect -v {network}",
            })  # fmt: skip
    return found


def _cross_peer_findings(views: list[EngineView]) -> list[Finding]:
    """A node whose own engine answers and lists endpoints on itself, absent from another
    node's Peers: that node no longer gossips with it (its engine then also drops the
    node's endpoints, so its own view alone shows nothing amiss; measured: TCP/UDP 7946
    blocked both ways drops the node from the others' Peers in ~7 s while the manager
    still lists it Ready)."""
    found: list[Finding] = []
    for host in views:
        lb = host.load_balancer
        own = sorted(e.name for e in host.endpoints.values() if e.local and e is not lb)
        if not own or not host.node_addr:
            continue
        for view in views:
            if view is host or not view.peers or host.node_addr in view.peers:
                continue
            found.append({
                **_blank(), "kind": "peer-missing", "severity": "error", "node": view.node,
                "network": view.network, "vtep": host.node_addr,
                "expected": f"{host.node} ({host.node_addr}) among Peers",
                "found": ", ".join(sorted(view.peers)),
                "explanation": f"{host.node} answers and hosts {len(own)} endpoint(s) "
                f"({', '.join(own[:3])}), but {view.node} does not gossip with it",
                "hint": f"docker node ls; check TCP/UDP 7946 between {view.node_addr} and "
                f"{host.node_addr}",
            })  # fmt: skip
    return found


def ipvs_findings(view: EngineView, servers: list[dict[str, Any]], lb_path: str) -> list[Finding]:
    """Each service's IPVS real servers (fwmark = its LocalLBIndex) against its tasks' IPs.

    `servers`: the ipvs plugin's records (one per real server, `fwmark`, `server_address`;
    a service without servers gives one record with `server_address` None)."""
    found: list[Finding] = []
    for service, fwmark in sorted(view.lb_indexes.items()):
        tasks = {e.ip for e in view.endpoints.values() if e.service == service and e.ip}
        if view.load_balancer is not None:
            tasks.discard(view.load_balancer.ip)
        real = {
            str(r["server_address"])
            for r in servers
            if r.get("fwmark") == fwmark and r.get("server_address")
        }
        extra, missing = sorted(real - tasks), sorted(tasks - real)
        if not extra and not missing:
            continue
        enter = f"nsenter --net={lb_path}"
        found.append({
            **_blank(), "kind": "ipvs-backends", "severity": "error", "node": view.node,
            "namespace": lb_path, "network": view.network,
            "expected": ", ".join(sorted(tasks)) or "no real server",
            "found": ", ".join(sorted(real)) or "no real server",
            "explanation": f"service {service or '(attachable)'} (fwmark {fwmark}): "
            + "; ".join(
                part for part in (
                    f"real servers that are no task: {', '.join(extra)}" if extra else "",
                    f"tasks that get no traffic: {', '.join(missing)}" if missing else "",
                ) if part
            ),
            "hint": f"{enter} ipvsadm -Ln -f {fwmark}",
        })  # fmt: skip
    return found


def unreachable_finding(node: str, error: str, endpoint: str) -> Finding:
    return {
        **_blank(),
        "kind": "node-unreachable",
        "severity": "error",
        "node": node,
        "found": error,
        "explanation": "the node's engine did not answer; its tables were not checked",
        "hint": f"docker -H {endpoint} info",
    }


def _blank() -> Finding:
    keys = ("namespace", "network", "mac", "ip", "vtep", "expected", "found", "explanation")
    return {k: None for k in keys} | {"hint": None}


class _Maker:
    """Builds findings of one node and network, with the commands that fix or confirm them."""

    def __init__(self, view: EngineView, tables: KernelTables):
        self.view, self.tables = view, tables
        self.enter = f"nsenter --net={tables.path}"

    def __call__(self, kind: str, **fields: Any) -> Finding:
        finding = _blank() | {
            "kind": kind,
            "severity": "warning" if kind in _WARNINGS else "error",
            "node": self.view.node,
            "namespace": self.tables.path,
            "network": self.view.network,
        }
        finding.update(fields)
        return finding

    def fdb_del(self, mac: str, vtep: str) -> str:
        return f"{self.enter} bridge fdb del {mac} dev {self.tables.vxlan} dst {vtep} self"

    def fdb_replace(self, mac: str, vtep: str | None) -> str:
        return (
            f"{self.enter} bridge fdb replace {mac} dev {self.tables.vxlan} dst {vtep} "
            "self permanent"
        )

    def neigh_del(self, ip: str) -> str:
        return f"{self.enter} ip neigh del {ip} dev {self.tables.vxlan}"

    def neigh_replace(self, ip: str, mac: str | None) -> str:
        return (
            f"{self.enter} ip neigh replace {ip} lladdr {mac} dev {self.tables.vxlan} nud permanent"
        )


def _fdb_text(entry: dict[str, Any]) -> str:
    state = entry.get("state") or "learned"
    return f"{entry.get('mac')} dst {entry.get('dst')} {state}"


def _neigh_text(entry: dict[str, Any]) -> str:
    state = entry.get("state")
    state = " ".join(state) if isinstance(state, list) else (state or "")
    return f"{entry.get('dst')} lladdr {entry.get('lladdr')} {state}".strip()
