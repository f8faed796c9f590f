"""`trace`: the path of a packet hop by hop, and where it dies (netns_shell.trace)."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import NetnsShellError, UsageError
from ..render import Result
from .registry import Param, Registry, positive_int, positive_seconds

if TYPE_CHECKING:
    from ..engine_view import OverlayNode
    from ..namespace import NetNamespace
    from .context import Context

__all__ = ["register"]

Record = dict[str, Any]
_STATUS = {"delivered": 0, "dropped": 1}


class TraceError(NetnsShellError):
    """`trace` could not trace (exit status 2)."""

    exit_status = 2


def _nodes(text: str) -> list:
    from ..engine_view import parse_node

    return [parse_node(part) for part in text.split(",") if part]


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise UsageError(f"port {value}: expected 1-65535")
    return value


def _size(text: str) -> int:
    value = positive_int(text)
    if not 28 <= value <= 65535:
        raise UsageError(f"--size {value}: expected an IP packet size of 28-65535 bytes")
    return value


def _connect(specs: list, timeout: float) -> list[OverlayNode]:
    from ..engine_view import connect_node
    from ..workers import run_each

    if not specs:
        return []
    # each on a daemon thread Ctrl-C does not wait for (a frozen engine answers never)
    return run_each(lambda s: connect_node(s, timeout=timeout), specs, name="trace-node")


def _inspected(container: str, nodes: list[OverlayNode]) -> Iterator[dict[str, Any]]:
    """What each reachable node's engine says of `container` (nodes that do not know it
    are passed over)."""
    from ..docker import DockerError, mapping, path_segment

    for node in nodes:
        if node.error is not None:
            continue
        try:
            info = node.client.get(f"/containers/{path_segment(container)}/json")
        except DockerError:
            continue
        yield mapping(info)


#: what can only be meant as an address: digits and dots (or slashes), or hex and colons
_ADDRESS_LIKE = re.compile(r"[0-9./]*\.[0-9./]*|[0-9a-fA-F:]*:[0-9a-fA-F:]*:[0-9a-fA-F:]*")


def _destination(session: Context, text: str, nodes: list[OverlayNode]) -> str:
    """An IP address as given, or the address of a container (asked from every node)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if _ADDRESS_LIKE.fullmatch(text):
        raise TraceError(f"trace: {text!r} is not an IP address")
    from ..docker import mapping
    from ..docker import text as docker_text

    for info in _inspected(text, nodes):
        for net in mapping(mapping(info.get("NetworkSettings")).get("Networks")).values():
            try:
                return str(ipaddress.ip_address(docker_text(mapping(net).get("IPAddress"))))
            except ValueError:
                continue
    from ..errors import NamespaceError
    from ..netlink.links import list_links

    try:
        ns = session.catalogue.resolve(text)
    except NamespaceError as exc:
        raise TraceError(f"trace: {text!r} is not an IP address; {exc}") from exc
    with ns:
        for link in list_links(ns):
            for a in link.get("addr_info", ()):
                if a.get("family") == "inet" and a.get("scope") == "global":
                    return str(a["local"])
    raise TraceError(f"trace: {text!r} has no IPv4 address this shell can find")


def _source(session: Context, text: str, nodes: list[OverlayNode]) -> NetNamespace:
    """A namespace or container this shell knows, else a container one of the nodes runs."""
    from ..docker import mapping
    from ..docker import text as docker_text
    from ..errors import NamespaceError
    from ..namespace import NetNamespace

    try:
        return session.catalogue.resolve(text)
    except NamespaceError as exc:
        for info in _inspected(text, nodes):
            key = docker_text(mapping(info.get("NetworkSettings")).get("SandboxKey"))
            if key.startswith("/"):
                return NetNamespace.open_path(key, label=text)
        raise exc


def _line(hop: Record) -> str:
    where = hop["netns"] + (f" ({hop['name']})" if hop.get("name") else "")
    text = f"{hop['hop']:>2}  {hop['node']:<6} {where:<28} {hop['step']:<11} {hop['match']}"
    verdict = hop["verdict"]
    if hop.get("reason"):
        verdict += f" {hop['reason']}"
    text += f"  => {verdict}"
    if "seen" in hop:
        text = f"{text}  [probe {'seen' if hop['seen'] else 'missing'}]"
    if hop.get("evidence") and hop["verdict"] != "forwarded":
        text += f": {hop['evidence']}"
    return text


def overall(hops: list[Record]) -> str:
    """The last line: delivered / dropped at HOP: reason / unknown."""
    last = hops[-1]
    where = f"hop {last['hop']} ({last['node']} {last['netns']}"
    where += f" {last['name']}" if last.get("name") else ""
    where += f", {last['step']})"
    if last["verdict"] == "delivered":
        return f"delivered to {last['netns']} on {last['node']} in {len(hops)} hops"
    if last["verdict"] == "dropped":
        return f"dropped at {where}: {last.get('reason')}: {last.get('evidence', '')}"
    return f"unknown after {where}: {last.get('evidence', '')}"


def trace(session: Context, args: dict[str, Any]) -> Result:
    """Exit status 0 delivered, 1 dropped, 2 for anything else: every failure of the trace
    itself (bad input, a namespace that cannot be opened) is 2, never 1 ("dropped")."""
    try:
        return _trace(session, args)
    except NetnsShellError as exc:
        if exc.exit_status != 1:  # 2 already, or a warning
            raise
        raise TraceError(str(exc)) from exc


def _trace(session: Context, args: dict[str, Any]) -> Result:
    from ..trace import Tracer, TraceRequest

    specs = args["nodes"]
    if specs is None and os.environ.get("NETNS_SHELL_NODES"):
        specs = _nodes(os.environ["NETNS_SHELL_NODES"])
    nodes = _connect(specs or [], args["timeout"] or 3.0)
    proto = args["proto"] or "icmp"
    if args["port"] and proto == "icmp":
        raise UsageError("trace: --port needs --proto udp or tcp")
    dst = _destination(session, args["dest"], nodes)
    source = _source(session, args["source"], nodes) if args["source"] else None
    request = TraceRequest(
        dst=dst,
        proto=proto,
        port=args["port"] or (None if proto == "icmp" else 80),
        size=args["size"] or 84,
    )
    tracer = Tracer(session.catalogue.namespaces(fresh=True), nodes)
    try:
        hops = tracer.trace(source or session.namespace, request)
        if args["probe"]:
            from ..trace.probe import probe_path

            hops = probe_path(tracer, source or session.namespace, request, hops)
    finally:
        if source is not None:
            source.close()

    def summary() -> list[str]:
        lines = [overall(hops)]
        beyond = hops[-1].get("beyond") or []
        if beyond:
            lines.append(f"past hop {hops[-1]['hop']} the kernel still sends it on:")
            lines += [_line(hop) for hop in beyond]
        lines += [f"probe: {hops[-1]['probe']}"] if hops[-1].get("probe") else []
        lines += [hops[-1]["kfree_skb"]] if hops[-1].get("kfree_skb") else []
        return lines

    result = Result.stream(hops, _line, summary=summary, live=False)
    result.status = _STATUS.get(hops[-1]["verdict"], 2)
    return result


def register(registry: Registry) -> None:
    registry.command(
        "trace",
        "the path of a packet hop by hop across namespaces, bridges, tunnels and nodes, "
        "and where it dies",
        Param(
            "source",
            ("--from",),
            metavar="TARGET",
            complete="namespace",
            help="the source namespace or container (default: the current namespace)",
        ),
        Param("dest", metavar="DEST", required=True, help="an IP address or a container name"),
        Param(
            "proto",
            ("--proto",),
            metavar="P",
            choices=("icmp", "udp", "tcp"),
            help="icmp (default), udp or tcp",
        ),
        Param(
            "port",
            ("--port",),
            metavar="N",
            convert=_port,
            help="destination port for udp/tcp (80)",
        ),
        Param(
            "size",
            ("--size",),
            metavar="BYTES",
            convert=_size,
            help="IP packet size in bytes, sent with DF (84)",
        ),
        Param(
            "probe",
            ("--probe",),
            help="also send real packets and capture them at every hop of the path",
            changes_state="sends packets",
        ),
        Param(
            "nodes",
            ("--nodes",),
            metavar="NAME=ENDPOINT,...",
            convert=_nodes,
            help="the cluster's engines (unix:// sockets) to follow tunnels onto; "
            "default: $NETNS_SHELL_NODES",
        ),
        Param(
            "timeout",
            ("--timeout",),
            metavar="S",
            convert=positive_seconds,
            help="how long a node's engine may take to answer (default 3 s)",
        ),
        details="Asks the kernel of each namespace on the way what it does with the packet: "
        "the route (RTM_GETROUTE with the packet's fields, like `ip route get`), the "
        "neighbour, the veth's peer, the bridge FDB, the vxlan FDB's VTEP, the underlay "
        "route, MTU and netfilter chains, and on the receiving node the same down to the "
        "destination. One line per hop; the last line is the verdict. Exit status 0 "
        "delivered, 1 dropped, 2 when the path cannot be followed. See docs/trace.md.",
        examples=(
            "trace 10.0.9.3",
            "trace --from c1 c2",
            "trace --from web 10.0.1.7 --proto tcp --port 443",
            "trace --from c1 10.0.9.10 --size 1450 --probe",
        ),
    )(trace)
