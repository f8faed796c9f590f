"""Across namespaces and overlays: find, overlay, topology."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..discovery import NAME_LABELS, friendly_names
from ..render import Column, Result
from .registry import Param, Registry

if TYPE_CHECKING:
    from .context import Context

__all__ = ["register"]

Record = dict[str, Any]


def _names(r: Record) -> str:
    return " ".join(str(name) for name in friendly_names(r))


def _row_summary(r: Record) -> str:
    row = r["row"]
    if r["table"] == "link":
        return " ".join(
            str(v) for v in (row.get("ifname"), row.get("address"), row.get("operstate")) if v
        )
    if r["table"] == "address":
        return f"{row.get('local')}/{row.get('prefixlen')} scope {row.get('scope')}"
    if r["table"] == "neigh":
        return " ".join(
            str(v)
            for v in (row.get("dst"), "lladdr", row.get("lladdr"), *row.get("state", ()))
            if v
        )
    parts = [
        row.get("mac"),
        f"dst {row['dst']}" if "dst" in row else None,
        f"master {row['master']}" if "master" in row else None,
        row.get("state"),
    ]
    return " ".join(str(p) for p in parts if p)


FIND_COLUMNS = (
    Column.of("NETNS", "netns"),
    Column("NAMES", _names, reads=NAME_LABELS, priority=1),
    Column.of("TABLE", "table"),
    Column.of("DEV", "dev"),
    Column("ENTRY", _row_summary),
)

OVERLAY_COLUMNS = (
    Column.of("MAC", "mac", safe=True),
    Column.of("IP", "ip"),  # not safe: the engine's endpoint addresses are its strings
    Column.of("PORTS", "ports"),
    Column.of("VTEP", "vtep", safe=True),
    Column.of("CONTAINER", "container", priority=1),
    Column.of("NODE", "node", priority=2),
    Column.of("PROBLEMS", "flags"),
)


def find(session: Context, args: dict[str, Any]) -> Result:
    from ..search import find as search
    from ..search import parse_needle

    needle = parse_needle(args["what"])
    records = list(search(session.catalogue.namespaces(fresh=True), needle))  # one row per hit: few
    result = Result.table(records, FIND_COLUMNS)
    if not records and needle.kind == "ifname":  # a container's name, typed where `use` goes?
        what = args["what"]
        result.message = (
            f"no interface, address or MAC named '{what}' in any namespace; "
            f"to enter a container or namespace try `use {what}`"
        )
    return result


def overlay(session: Context, args: dict[str, Any]) -> Result:
    from ..overlay import overlay_rows

    entries = session.catalogue.namespaces(fresh=True)
    endpoints = session.catalogue.docker_endpoints(session.namespace)
    rows = list(overlay_rows(session.namespace, entries, endpoints))
    remote = _remote_names(session) if any(r["location"] == "remote" for r in rows) else {}
    for row in rows:
        row["node"] = None
        if row["location"] != "remote":
            continue
        known = remote.get(row["mac"])
        if known is not None:  # the engine's task or container, and the node hosting it
            row["container"], row["node"] = known
        elif row["vtep"]:
            row["node"] = remote.get(row["vtep"][0], (None, None))[1]
    return Result.table(rows, OVERLAY_COLUMNS)


def _network_by_name(node, name: str) -> str | None:
    """The overlay network whose namespace is `<n>-<id[:10]>` (a namespace found under a
    directory that discovery does not know as Docker's, e.g. an --exec-root elsewhere)."""
    import re

    match = re.fullmatch(r"\d+-([0-9a-z]{10})", name)
    if match is None:
        return None
    from ..docker import objects, text

    ids = [
        text(n.get("Id"))
        for n in objects(node.client.get("/networks"), "/networks")
        if text(n.get("Driver")) == "overlay" and text(n.get("Id")).startswith(match.group(1))
    ]
    return ids[0] if len(ids) == 1 else None


def _remote_names(session: Context) -> dict[str, tuple[str | None, str]]:
    """MAC -> (task/container name, node) of the endpoints the shell's engine places on other
    nodes, and VTEP -> (None, node) of its peers; {} when no engine tells."""
    from ..docker import DockerError
    from ..engine_view import connect_node, load_view

    entry = session.catalogue.entry_for(session.namespace)
    if entry is None:
        return {}
    node = connect_node(None, timeout=2)
    if node.error is not None:
        return {}
    try:
        network_id = entry.labels.get("network_id") or _network_by_name(node, entry.base)
        if not network_id:
            return {}
        view = load_view(node, str(network_id))
    except DockerError:
        return {}
    names: dict[str, tuple[str | None, str]] = {
        vtep: (None, peer or vtep) for vtep, peer in view.peers.items()
    }
    for endpoint in view.remote().values():
        if endpoint.mac and endpoint.vtep:
            node_name = view.peers.get(endpoint.vtep) or endpoint.vtep
            names[endpoint.mac] = (endpoint.name or "remote", node_name)
    return names


def topology(session: Context, args: dict[str, Any]) -> Result:
    from ..topology import collect_topology, dot_lines, edge_records, tree_lines

    topo = collect_topology(session.catalogue.namespaces(fresh=True))
    if args["dot"]:
        return Result(lines=dot_lines(topo), document=True)
    return Result.picture(edge_records(topo), lambda records: tree_lines(topo))


def register(registry: Registry) -> None:
    registry.command(
        "find",
        "where an IP, MAC or interface name appears, in every namespace",
        Param(
            "what",
            metavar="IP|MAC|IFNAME",
            required=True,
            help="an IPv4/IPv6 address, a MAC address or an interface name",
        ),
        details="Searches the links, addresses, neighbours and bridge FDB of every namespace on "
        "the host; each hit names the namespace (and its container or network), the "
        "table and the entry.",
        examples=("find 10.0.9.3", "find 02:42:0a:00:09:03", "find veth2"),
    )(find)
    registry.command(
        "overlay",
        "per MAC: port, IP, remote VTEP, container; flags disagreements",
        details="In an overlay namespace (1-<netid>): one row per MAC known on the bridge, "
        "joining the bridge FDB (port), the vxlan FDB (dst = VTEP of a remote MAC), the "
        "neighbour table (IP) and the container behind each veth. For a remote MAC, the "
        "engine's view (GET /networks/ID?verbose=true) names the task or container and the "
        "node (its Peers name) that hosts it. PROBLEMS flags "
        "neigh-without-fdb, fdb-without-neigh, two-ports and vtep-unreachable.",
        examples=("overlay", "use 1-9tp; overlay", "overlay --json"),
    )(overlay)
    registry.command(
        "topology",
        "namespaces -> bridges -> ports -> peers; vxlan -> VTEPs (--dot: Graphviz)",
        Param("dot", ("--dot",), help="print Graphviz dot instead of the tree"),
        examples=("topology", "topology --dot | dot -Tsvg > topo.svg"),
    )(topology)
