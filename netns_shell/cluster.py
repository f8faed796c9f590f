"""Run `check` on one node or on every node of a cluster and join the answers.

Each node contributes its material (collect.py): its engine's view of each overlay
network and its kernel's tables.  How it is reached is the mode:

* `direct`: the node's engine is a unix socket on this host and its namespace files are
  visible here (the swarm lab, or this node itself): engines are asked in parallel,
  each within the timeout, and the tables read one namespace after the other (a thread
  never changes namespace, architecture.md fact 1);
* `container`: a one-shot netns-shell container on the node's engine (agents.py);
* `service`: a one-shot global service on the swarm (agents.py).

`--via auto` takes `direct` for each node it can, `container` for the others (with
`agents=False`, as in --read-only mode, and with `--via direct`, the others are reported
unreachable: nothing is created on their engines).
The findings come from the same functions in every mode.  A node that does not answer
is reported as `node-unreachable` while the rest still answers.  In cluster mode each
node's load-balancer endpoint, which only that node's engine lists, is known to the
others' checks, and the engines' views are compared with each other (`views-differ`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .agents import AgentOptions, run_containers, run_service
from .check import Finding, check_node, cross_node_findings, ipvs_findings, unreachable_finding
from .collect import NetworkMaterial, NodeMaterial, connect_views, read_material
from .discovery import NamespaceEntry
from .engine_view import Endpoint, EngineView, NodeEndpoint
from .errors import NetnsShellError
from .workers import run_each

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
    #: node -> how it was reached (direct, container, service)
    modes: dict[str, str] = field(default_factory=dict)


VIAS = ("auto", "direct", "container", "service")


def run_check(
    nodes: list[NodeEndpoint],
    *,
    target: str | None,
    cluster: bool,
    entries: Iterable[NamespaceEntry],
    timeout: float | None = None,
    via: str = "auto",
    agent: AgentOptions | None = None,
    agents: bool = True,
) -> CheckReport:
    """Findings of this node (the first of `nodes`, or this shell's engine), or of every node
    with `cluster`.  Raises CheckError when no node answers or nothing matches `target`."""
    started = time.monotonic()
    specs = list(nodes) or [_local_engine()]
    if not cluster and via != "service":
        specs = specs[:1]
    agent = dataclasses.replace(agent or AgentOptions(), target=target)
    if timeout is not None:
        agent.timeout = timeout
    if not agents and via in ("container", "service"):
        raise CheckError(f"check --via {via}: agents are not allowed here")
    if not agents and via == "auto":
        via = "direct"
    materials = _gather(specs, via, target, list(entries), timeout or 3.0, agent)
    if via == "service" and not cluster:
        materials = materials[:1]
    report = CheckReport(modes={m.name: m.mode for m in materials})
    _analyse(materials, report, cluster, target)
    report.seconds = time.monotonic() - started
    return report


def _local_engine() -> NodeEndpoint:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return NodeEndpoint("", socket=host[len("unix://") :])
    if host.startswith(("tcp://", "ssh://")):
        return NodeEndpoint("", url=host)
    return NodeEndpoint("", socket="/var/run/docker.sock")


def _gather(
    specs: list[NodeEndpoint],
    via: str,
    target: str | None,
    entries: list[NamespaceEntry],
    timeout: float,
    agent: AgentOptions,
) -> list[NodeMaterial]:
    if via == "service":
        return run_service(specs[0], agent)
    direct: dict[int, NodeMaterial] = {}
    if via in ("auto", "direct"):
        asked = [(i, s) for i, s in enumerate(specs) if s.socket or via == "direct"]
        # Ctrl-C does not wait for an engine that never answers (workers.py)
        answers = run_each(lambda item: _direct(item[1], target, timeout), asked, name="engine")
        for (index, _spec), material in zip(asked, answers, strict=True):
            if material is not None:
                direct[index] = material
    if via == "direct":  # a node whose namespace files are elsewhere: not readable here
        for index, spec in enumerate(specs):
            direct.setdefault(index, _elsewhere(spec))
    remote = [s for i, s in enumerate(specs) if i not in direct]
    remote_answers = iter(run_containers(remote, agent) if remote else [])
    materials = [direct[i] if i in direct else next(remote_answers) for i in range(len(specs))]
    for material in materials:
        if material.mode == "direct" and material.error is None:
            read_material(material, entries)
    return materials


def _direct(spec: NodeEndpoint, target: str | None, timeout: float) -> NodeMaterial | None:
    """The node's views when its namespace files are visible here; None: reach it otherwise."""
    if not spec.socket:
        return NodeMaterial(spec.name, "direct", spec.endpoint, error="not a unix socket here")
    material = connect_views(spec, target, timeout, "direct")
    if material.error is None and material.netns_elsewhere:
        return None  # an engine whose namespace files this host does not see
    return material


def _elsewhere(spec: NodeEndpoint) -> NodeMaterial:
    return NodeMaterial(
        spec.name,
        "direct",
        spec.endpoint,
        error="its namespace files are not visible here (--via container reads them on the node)",
    )


def _analyse(
    materials: list[NodeMaterial], report: CheckReport, cluster: bool, target: str | None
) -> None:
    for material in materials:
        if material.error is not None:
            finding = unreachable_finding(material.name, material.error, material.endpoint)
            if material.mode == "service":  # the manager's endpoint: ask it about the node
                finding["hint"] = f"docker {material.endpoint} node ps {material.name}"
            report.findings.append(finding)
    answered = [m for m in materials if m.error is None]
    if not answered:
        raise CheckError(
            "check: no node answered: " + "; ".join(f"{m.name}: {m.error}" for m in materials)
        )
    checked = [(m, item) for m in answered for item in m.networks]
    if not checked:
        what = f"matching '{target}'" if target else "with a namespace on the node"
        raise CheckError(f"check: no overlay network {what}")
    answering = {m.addr for m in answered}
    views = [item.view for _m, item in checked]
    for material, item in checked:
        if item.tables is None:
            report.findings.append(
                unreachable_finding(material.name, item.error or "no tables", "")
                | {"network": item.view.network}
            )
            continue
        silent = set(item.view.peers) - answering
        lbs = _other_load_balancers(item.view, views) if cluster else None
        found = check_node(item.view, item.tables, lb_endpoints=lbs, silent_vteps=silent)
        if item.ipvs is not None:
            lb_path = os.path.join(
                os.path.dirname(item.network["path"]), f"lb_{item.view.network_id[:9]}"
            )
            found += ipvs_findings(item.view, item.ipvs, lb_path)
        report.findings += found
        report.digests.append(_digest(material, item, len(found)))
    if cluster:
        by_network: dict[str, list[EngineView]] = {}
        for view in views:
            by_network.setdefault(view.network_id, []).append(view)
        for same in by_network.values():
            report.findings += cross_node_findings(same)


def _digest(material: NodeMaterial, item: NetworkMaterial, findings: int) -> dict[str, Any]:
    assert item.tables is not None
    return {
        "node": material.name,
        "mode": material.mode,
        "network": item.view.network,
        "namespace": item.network["path"],
        **item.tables.digest(),
        "peers": len(item.view.peers),
        "endpoints": len(item.view.endpoints),
        "findings": findings,
        "ipvs": item.ipvs_skip or ("checked" if item.ipvs is not None else "no service VIP"),
    }


def _other_load_balancers(view: EngineView, views: list[EngineView]) -> dict[str, Endpoint]:
    found = {}
    for other in views:
        lb = other.load_balancer
        if other is view or lb is None or other.network_id != view.network_id:
            continue
        found[lb.ip] = dataclasses.replace(lb, local=False, vtep=other.node_addr or lb.vtep)
    return found
