"""`check`: the overlay's control plane (the engine's view) against the kernel's tables."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..render import Result
from .registry import Param, Registry, positive_seconds

if TYPE_CHECKING:
    from ..session import Session

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


def check(session: Session, args: dict[str, Any]) -> Result:
    from ..cluster import run_check

    nodes = args["nodes"]
    if nodes is None and os.environ.get("NETNS_SHELL_NODES"):
        nodes = _nodes(os.environ["NETNS_SHELL_NODES"])
    report = run_check(
        nodes or [],
        target=args["target"],
        cluster=bool(args["cluster"]),
        entries=session.namespaces(fresh=True),
        timeout=args["timeout"] or 3.0,
    )

    def summary() -> Iterator[str]:
        for d in report.digests:
            yield (
                f"{d['node']} {d['network']} ({os.path.basename(d['namespace'])}): "
                f"{d['fdb']} fdb, {d['neigh']} neigh, {d['peers']} peers, "
                f"{d['endpoints']} endpoints known, {d['findings']} findings"
            )
        nodes = len({d["node"] for d in report.digests})
        yield (
            f"{len(report.findings)} findings on {nodes} node(s) "
            f"in {report.seconds:.2f} s" + ("" if report.findings else ": clean")
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
            help="how long a node's engine may take to answer (default 3 s)",
        ),
        details="Compares the vxlan FDB and neighbour table of each overlay namespace with "
        "the engine's view (GET /networks/ID?verbose=true: Peers, Tasks with EndpointIP and "
        "Host IP) and reports findings of stable kinds: stale-fdb, stale-neigh, missing-fdb, "
        "missing-neigh, wrong-vtep, mac-ip-mismatch, learned-only, peer-missing, "
        "vtep-unreachable, mtu, views-differ (--cluster), node-unreachable. Exit status 0 when "
        "clean, 1 with findings, 2 on error. See docs/check.md.",
        examples=(
            "check",
            "check my-overlay",
            "check --cluster --nodes n1=unix:///run/n1.sock,n2=unix:///run/n2.sock",
            "check --json",
        ),
    )(check)
