"""`check`: the overlay's control plane (the engine's view) against the kernel's tables."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..render import Result
from .registry import Param, Registry, positive_seconds

if TYPE_CHECKING:
    from .context import Context

__all__ = ["register"]

Record = dict[str, Any]


def _nodes(text: str) -> list:
    from ..engine_view import parse_node

    return [parse_node(part) for part in text.split(",") if part]


def _object(finding: Record) -> str:
    parts = [finding.get(k) for k in ("mac", "ip")]
    if finding.get("vtep"):
        parts.append(f"vtep {finding['vtep']}")
    return " ".join(str(p) for p in parts if p) or "-"


def _draw(findings: Iterable[Record]) -> Iterator[str]:
    for f in findings:
        where = os.path.basename(f["namespace"]) if f.get("namespace") else f.get("network")
        yield (f"{f['severity']:<7} {f['node']:<8} {where or '-'}  {f['kind']:<16} {_object(f)}")
        evidence = f"found {f['found']}" if f.get("found") else ""
        if f.get("expected"):
            evidence += f"{'; ' if evidence else ''}expected {f['expected']}"
        yield f"    {f.get('explanation') or ''}{' (' + evidence + ')' if evidence else ''}"
        if f.get("hint"):
            yield f"    hint: {f['hint']}"


def _collect(session: Context, args: dict[str, Any]) -> Result:
    import json

    from ..collect import collect_records

    records = collect_records(
        session.catalogue.namespaces(fresh=True), args["target"], args["timeout"] or 3.0
    )
    return Result.stream(records, lambda r: json.dumps(r, sort_keys=True), live=False)


def check(session: Context, args: dict[str, Any]) -> Result:
    if args["collect"]:
        return _collect(session, args)
    from ..agents import DEFAULT_IMAGE, AgentOptions
    from ..cluster import run_check

    nodes = args["nodes"]
    if nodes is None and os.environ.get("NETNS_SHELL_NODES"):
        nodes = _nodes(os.environ["NETNS_SHELL_NODES"])
    agent = AgentOptions(
        image=args["image"] or os.environ.get("NETNS_SHELL_IMAGE") or DEFAULT_IMAGE,
        netns_dir=args["netns_dir"],
        socket=args["engine_socket"],
    )
    report = run_check(
        nodes or [],
        target=args["target"],
        cluster=bool(args["cluster"]),
        entries=session.catalogue.namespaces(fresh=True),
        timeout=args["timeout"],
        via=args["via"] or "auto",
        agent=agent,
        agents=not session.read_only,
    )

    def summary() -> Iterator[str]:
        for d in report.digests:
            yield (
                f"{d['node']} [{d['mode']}] {d['network']} "
                f"({os.path.basename(d['namespace'])}): "
                f"{d['fdb']} fdb, {d['neigh']} neigh, {d['peers']} peers, "
                f"{d['endpoints']} endpoints known, {d['findings']} findings"
                + ("" if d["ipvs"] in ("checked", "no service VIP") else f"; ipvs: {d['ipvs']}")
            )
        nodes = len({d["node"] for d in report.digests})
        modes = ", ".join(sorted(set(report.modes.values())))
        yield (
            f"{len(report.findings)} findings on {nodes} node(s) "
            f"in {report.seconds:.2f} s (reached: {modes})" + ("" if report.findings else ": clean")
        )

    result = Result.picture(report.findings, _draw)
    result.summary = summary
    result.status = 1 if report.findings else 0
    return result


def register(registry: Registry) -> None:
    registry.command(
        "check",
        "the overlay's kernel tables against the engine's view; a verdict per finding",
        Param(
            "target",
            metavar="TARGET",
            help="an overlay network (name or ID prefix) or its namespace (1-<netid>); "
            "default: every overlay network with a namespace on the node",
        ),
        Param("cluster", ("--cluster",), help="check every node in --nodes and compare them"),
        Param(
            "nodes",
            ("--nodes",),
            metavar="NAME=ENDPOINT,...",
            convert=_nodes,
            help="the nodes' engines (unix:// sockets), the first being this node; "
            "default: $NETNS_SHELL_NODES, else this shell's engine",
        ),
        Param(
            "timeout",
            ("--timeout",),
            metavar="S",
            convert=positive_seconds,
            help="how long a node may take to answer (default 3 s direct, 20 s through agents)",
        ),
        Param(
            "via",
            ("--via",),
            metavar="MODE",
            choices=("auto", "direct", "container", "service"),
            help="how nodes are reached: direct (their namespaces are visible here), container "
            "(a one-shot container on each node's engine), service (a one-shot global swarm "
            "service on the first node, a manager); auto: direct where possible, else container "
            "(direct only with --read-only)",
            changes_state="creates containers or a service on the engines",
            changes_state_with=("container", "service"),
        ),
        Param(
            "image",
            ("--image",),
            metavar="IMAGE",
            help="the netns-shell image the agents run (default $NETNS_SHELL_IMAGE, else "
            "netns-shell); it must exist on every node",
        ),
        Param(
            "netns_dir",
            ("--netns-dir",),
            metavar="DIR",
            help="agents: the engine's namespace directory on the nodes (default: from the "
            "engine, else /var/run/docker/netns; a service may use {{.Node.Hostname}})",
        ),
        Param(
            "engine_socket",
            ("--engine-socket",),
            metavar="PATH",
            help="agents: the engine's socket on the nodes (default: the unix endpoint's path, "
            "else /var/run/docker.sock; a service may use {{.Node.Hostname}})",
        ),
        Param(
            "collect",
            ("--collect",),
            help="print this node's engine view and kernel tables as JSON lines (what the "
            "agents run on each node)",
        ),
        details="Compares the vxlan FDB and neighbour table of each overlay namespace with "
        "the engine's view (GET /networks/ID?verbose=true: Peers, Tasks with EndpointIP and "
        "Host IP) and reports findings of stable kinds: stale-fdb, stale-neigh, missing-fdb, "
        "missing-neigh, wrong-vtep, mac-ip-mismatch, learned-only, peer-missing, "
        "vtep-unreachable, mtu, views-differ (--cluster), node-unreachable. A node's kernel "
        "tables are read on that node: directly when its namespaces are visible here, else by a "
        "one-shot netns-shell container on its engine or a global service (--via). Exit status "
        "0 when clean, 1 with findings, 2 on error. See docs/check.md.",
        examples=(
            "check",
            "check my-overlay",
            "check --cluster --nodes n1=unix:///run/n1.sock,n2=unix:///run/n2.sock",
            "check --json",
            "check --cluster --via service --image netns-shell:latest",
            "check --cluster --via container --nodes a=ssh://root@a,b=ssh://root@b",
        ),
    )(check)
