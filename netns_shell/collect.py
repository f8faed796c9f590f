"""What one node contributes to a cluster check: its engine's view and its kernel's tables.

A node's kernel tables can only be read on that node, so on a real cluster a one-shot
netns-shell runs there (`check --collect`, see agents.py) and prints one JSON line per
overlay network: the node (name, advertised address), the network, the engine's view
(engine_view.EngineView) and the kernel's tables (check.KernelTables).  The coordinator
turns the lines back into the same objects and runs the same comparison as for a node
whose namespaces it sees itself, so every mode reports the same findings.

    {"mark": "netns-shell-collect/1", "node": {"name", "addr"}, "network": {"id", "name",
     "path"} | null, "view": {...} | null, "tables": {...} | null, "error": str | null}

`network` null: the node answered and has no overlay network matching the target.
`error` on a record with a network: its tables could not be read; without one: the
node's engine did not answer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .check import KernelTables, read_tables
from .discovery import NamespaceEntry
from .docker import DockerError
from .engine_view import Endpoint, EngineView, NodeEndpoint, OverlayNode, connect_node, load_view
from .errors import NamespaceError, NetnsShellError

__all__ = [
    "MARK",
    "NetworkMaterial",
    "NodeMaterial",
    "collect_records",
    "matches",
    "material_from_records",
    "parse_lines",
    "read_material",
]

MARK = "netns-shell-collect/1"


@dataclass
class NetworkMaterial:
    network: dict[str, Any]  # id, name, path (the overlay namespace file on the node)
    view: EngineView
    tables: KernelTables | None = None
    error: str | None = None
    #: the real servers in lb_<netid> (the ipvs plugin's records), or why they were not read
    ipvs: list[dict[str, Any]] | None = None
    ipvs_skip: str | None = None


@dataclass
class NodeMaterial:
    """One node's answer: how it was reached, and its networks (or why it did not answer)."""

    name: str
    mode: str  # direct, container, service
    endpoint: str = ""  # for the hints
    addr: str = ""
    error: str | None = None
    networks: list[NetworkMaterial] = field(default_factory=list)
    netns_elsewhere: bool = False  # direct mode: its namespace files are not visible here


def matches(network: dict[str, Any], target: str | None) -> bool:
    if not target:
        return True
    return (
        network["name"] == target
        or network["id"].startswith(target)
        or os.path.basename(network["path"]).startswith(target)
    )


def connect_views(
    spec: NodeEndpoint | None, target: str | None, timeout: float, mode: str
) -> NodeMaterial:
    """The engine's views of a node's overlay networks (no kernel tables yet); any thread."""
    node = connect_node(spec, timeout=timeout)
    material = _material(node, spec, mode)
    if node.error is not None:
        return material
    try:
        for network in node.overlay_networks():
            if matches(network, target):
                material.networks.append(NetworkMaterial(network, load_view(node, network["id"])))
    except DockerError as exc:
        material.error, material.networks = str(exc), []
    return material


def read_material(material: NodeMaterial, entries: list[NamespaceEntry]) -> None:
    """Fill in the kernel tables of each network (enters namespaces: the calling thread only)."""
    for item in material.networks:
        vteps = {e.vtep for e in item.view.remote().values() if e.vtep}
        try:
            item.tables = read_tables(item.network["path"], entries, vteps)
        except (NamespaceError, LookupError, OSError) as exc:
            item.error = f"{item.network['path']}: {exc}"
        if item.view.lb_indexes:
            item.ipvs, item.ipvs_skip = read_ipvs(item.network)


def read_ipvs(network: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The IPVS real servers of the network's lb_<netid[:9]> namespace (beside the overlay
    namespace), or None and why they could not be read (no ip_vs in the kernel)."""
    path = os.path.join(os.path.dirname(network["path"]), f"lb_{network['id'][:9]}")
    if not os.path.exists(path):
        return None, f"no {os.path.basename(path)} on this node"
    if not os.path.exists("/proc/net/ip_vs"):  # as the plugin: never make the kernel load it
        return None, "not checked: no ip_vs in the kernel"
    from .extensions import builtin_plugin
    from .namespace import NetNamespace

    try:
        ipvs = builtin_plugin("ipvs")
        with NetNamespace.open_path(path) as ns:
            return ipvs.list_services(ns), None
    except ImportError as exc:
        return None, f"the ipvs plugin is not installed ({exc})"
    except NetnsShellError as exc:
        return None, str(exc)


def collect_records(
    entries: Iterable[NamespaceEntry], target: str | None, timeout: float
) -> Iterator[dict[str, Any]]:
    """This node's material as records (`check --collect`): the engine of this shell."""
    material = connect_views(None, target, timeout, "local")
    read_material(material, list(entries))
    node = {"name": material.name, "addr": material.addr}
    if material.error is not None:
        yield {"mark": MARK, "node": node, "network": None, "view": None, "tables": None,
               "error": material.error}  # fmt: skip
        return
    if not material.networks:
        yield {"mark": MARK, "node": node, "network": None, "view": None, "tables": None,
               "error": None}  # fmt: skip
    for item in material.networks:
        yield {
            "mark": MARK,
            "node": node,
            "network": item.network,
            "view": dataclasses.asdict(item.view),
            "tables": _tables_record(item.tables) if item.tables else None,
            "error": item.error,
            "ipvs": item.ipvs,
            "ipvs_skip": item.ipvs_skip,
        }


def parse_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The collect records in an agent's output; a line a log driver split is joined again."""
    records, pending = [], ""
    for line in lines:
        line = line.rstrip("\r\n")
        if not pending and not line.startswith("{"):
            continue  # not ours (a warning, a log driver's noise)
        pending += line
        try:
            record = json.loads(pending)
        except ValueError:
            if len(pending) > 64 << 20:
                pending = ""
            continue
        pending = ""
        if isinstance(record, dict) and record.get("mark") == MARK:
            records.append(record)
    return records


def material_from_records(
    records: list[dict[str, Any]], *, name: str | None, mode: str, endpoint: str
) -> NodeMaterial:
    """One node's records back into a NodeMaterial (`name`: the name given by the user).

    The records come from another machine: a record of the wrong shape makes the
    node's answer an error, never a crash.
    """
    if not records:
        return NodeMaterial(name or "?", mode, endpoint, error="the agent printed no answer")
    try:
        return _material_from_records(records, name=name, mode=mode, endpoint=endpoint)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        return NodeMaterial(
            name or "?", mode, endpoint, error=f"the agent's answer is malformed ({exc!r})"
        )


def _material_from_records(
    records: list[dict[str, Any]], *, name: str | None, mode: str, endpoint: str
) -> NodeMaterial:
    node = records[0].get("node") or {}
    material = NodeMaterial(
        str(name or node.get("name") or "?"), mode, endpoint, addr=str(node.get("addr") or "")
    )
    for record in records:
        if record.get("network") is None:
            material.error = record.get("error")
            continue
        view = _view(record["view"])
        view.node = material.name
        tables = _tables(record["tables"]) if record.get("tables") else None
        item = NetworkMaterial(dict(record["network"]), view, tables, record.get("error"))
        if isinstance(record.get("ipvs"), list):
            item.ipvs = [dict(r) for r in record["ipvs"] if isinstance(r, dict)]
        item.ipvs_skip = record.get("ipvs_skip")
        material.networks.append(item)
    return material


def _material(node: OverlayNode, spec: NodeEndpoint | None, mode: str) -> NodeMaterial:
    endpoint = spec.endpoint if spec else "unix:///var/run/docker.sock"
    return NodeMaterial(
        node.name, mode, endpoint, addr=node.addr, error=node.error,
        netns_elsewhere=node.netns_elsewhere,
    )  # fmt: skip


def _tables_record(tables: KernelTables) -> dict[str, Any]:
    record = dataclasses.asdict(tables)
    if tables.routes is not None:
        record["routes"] = {vtep: list(pair) for vtep, pair in tables.routes.items()}
    return record


def _tables(record: dict[str, Any]) -> KernelTables:
    routes = record.get("routes")
    return KernelTables(
        path=str(record["path"]),
        vxlan=str(record["vxlan"]),
        mtu=int(record.get("mtu") or 0),
        fdb={str(k): list(v) for k, v in (record.get("fdb") or {}).items()},
        neigh={str(k): dict(v) for k, v in (record.get("neigh") or {}).items()},
        routes=None
        if routes is None
        else {str(k): (v[0], v[1]) for k, v in routes.items() if isinstance(v, list)},
    )


def _endpoint(record: dict[str, Any] | None) -> Endpoint | None:
    if not record:
        return None
    fields = {f.name for f in dataclasses.fields(Endpoint)}
    return Endpoint(**{k: v for k, v in record.items() if k in fields})


def _view(record: dict[str, Any]) -> EngineView:
    view = EngineView(
        node=str(record.get("node") or ""),
        node_addr=str(record.get("node_addr") or ""),
        network_id=str(record.get("network_id") or ""),
        network=str(record.get("network") or ""),
        peers={str(k): str(v) for k, v in (record.get("peers") or {}).items()},
        has_vips=bool(record.get("has_vips")),
        lb_indexes={
            str(k): int(v) for k, v in (record.get("lb_indexes") or {}).items() if str(v).isdigit()
        },
    )
    for ip, endpoint in (record.get("endpoints") or {}).items():
        view.endpoints[str(ip)] = _endpoint(endpoint)
    view.load_balancer = _endpoint(record.get("load_balancer"))
    return view
