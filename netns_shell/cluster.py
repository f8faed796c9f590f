"""Run `check` on one node or on every node of a cluster and join the answers.

Nodes are Docker endpoints (engine_view.NodeEndpoint).  Engines are asked in
parallel, each with a timeout, so a frozen or dead node is reported as
`node-unreachable` while the rest still answers; kernel tables are then read
one namespace after the other (a thread never changes namespace, DESIGN fact 1).
In cluster mode each node's load-balancer endpoint, which only that node's
engine lists, is known to the others' checks, and the engines' views are
compared with each other (`views-differ`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .check import (
    Finding,
    check_node,
    cross_node_findings,
    read_tables,
    unreachable_finding,
)
from .discovery import NamespaceEntry
from .docker import DockerError
from .engine_view import Endpoint, EngineView, NodeEndpoint, OverlayNode, connect_node, load_view
from .errors import NamespaceError, NetnsShellError

__all__ = ["CheckError", "CheckReport", "run_check"]


class CheckError(NetnsShellError):
    """`check` could not check anything (exit status 2)."""

    exit_status = 2


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    #: per node and network: node, network, namespace, fdb, neigh, peers, endpoints, findings
    digests: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Checked:
    node: OverlayNode
    network: dict[str, Any]
    view: EngineView


def run_check(
    nodes: list[NodeEndpoint],
    *,
    target: str | None,
    cluster: bool,
    entries: Iterable[NamespaceEntry],
    timeout: float = 3.0,
) -> CheckReport:
    """Findings of this node (the first of `nodes`, or this shell's engine), or of every node
    with `cluster`.  Raises CheckError when no engine answers or nothing matches `target`."""
    started = time.monotonic()
    entries = list(entries)
    specs: list[NodeEndpoint | None] = list(nodes) or [None]
    if not cluster:
        specs = specs[:1]
    report = CheckReport()
    with ThreadPoolExecutor(max(1, len(specs))) as pool:
        connected = list(pool.map(lambda s: _views_of(s, target, timeout), specs))
    answered = [c for c in connected if c[0].error is None]
    for spec, (node, _views) in zip(specs, connected, strict=True):
        if node.error is not None:
            endpoint = spec.endpoint if spec else "unix:///var/run/docker.sock"
            report.findings.append(unreachable_finding(node.name, node.error, endpoint))
    if not answered:
        raise CheckError(
            "check: no engine answered: " + "; ".join(f"{n.name}: {n.error}" for n, _ in connected)
        )
    checked = [item for _node, views in answered for item in views]
    if not checked:
        what = f"matching '{target}'" if target else "with a namespace on this node"
        raise CheckError(f"check: no overlay network {what}")
    answering = {item.node.addr for item in checked}
    for item in checked:
        silent = set(item.view.peers) - answering
        lbs = _other_load_balancers(item, checked) if cluster else None
        try:
            tables = read_tables(
                item.network["path"],
                entries,
                {e.vtep for e in item.view.remote().values() if e.vtep},
            )
        except (NamespaceError, LookupError, OSError) as exc:
            report.findings.append(
                unreachable_finding(item.node.name, f"{item.network['path']}: {exc}", "")
                | {"kind": "node-unreachable", "network": item.view.network}
            )
            continue
        found = check_node(item.view, tables, lb_endpoints=lbs, silent_vteps=silent)
        report.findings += found
        report.digests.append(
            {
                "node": item.node.name,
                "network": item.view.network,
                "namespace": item.network["path"],
                **tables.digest(),
                "peers": len(item.view.peers),
                "endpoints": len(item.view.endpoints),
                "findings": len(found),
            }
        )
    if cluster:
        by_network: dict[str, list[EngineView]] = {}
        for item in checked:
            by_network.setdefault(item.view.network_id, []).append(item.view)
        for views in by_network.values():
            report.findings += cross_node_findings(views)
    report.seconds = time.monotonic() - started
    return report


def _views_of(
    spec: NodeEndpoint | None, target: str | None, timeout: float
) -> tuple[OverlayNode, list[_Checked]]:
    node = connect_node(spec, timeout=timeout)
    if node.error is not None:
        return node, []
    try:
        networks = [n for n in node.overlay_networks() if _matches(n, target)]
        return node, [_Checked(node, n, load_view(node, n["id"])) for n in networks]
    except DockerError as exc:
        node.error = str(exc)
        return node, []


def _matches(network: dict[str, Any], target: str | None) -> bool:
    if not target:
        return True
    return (
        network["name"] == target
        or network["id"].startswith(target)
        or os.path.basename(network["path"]).startswith(target)
    )


def _other_load_balancers(item: _Checked, checked: list[_Checked]) -> dict[str, Endpoint]:
    found = {}
    for other in checked:
        lb = other.view.load_balancer
        if other is item or lb is None or other.view.network_id != item.view.network_id:
            continue
        found[lb.ip] = dataclasses.replace(lb, local=False, vtep=other.node.addr or lb.vtep)
    return found
