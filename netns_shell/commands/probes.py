"""Probes from inside the namespace: ping, arping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..render import Result
from .registry import Param, Registry, positive_int, positive_seconds

if TYPE_CHECKING:
    from ..probes import Reply
    from .context import Context

__all__ = ["register"]

Record = dict[str, Any]


def _record(reply: Reply) -> dict[str, Any]:
    return {
        "seq": reply.seq,
        "from": reply.address,
        "time_ms": None if reply.rtt_ms is None else round(reply.rtt_ms, 3),
        **reply.extra,
    }


def _run(
    session: Context, replies: Iterator[Reply], target: str, line: Callable[[Record], str]
) -> Result:
    """One line (or record) per reply, then a summary; status 1 when nothing answered."""
    counts = {"sent": 0, "answered": 0}

    def stream() -> Iterator[Record]:
        try:
            for reply in replies:
                counts["sent"] += 1
                counts["answered"] += reply.address is not None
                yield _record(reply)
        except KeyboardInterrupt:  # Ctrl-C ends the probes, then the summary
            session.console.end_interrupted_line()
        finally:
            replies.close()
        result.status = 0 if counts["answered"] else 1

    def summary() -> Iterator[str]:
        sent, answered = counts["sent"], counts["answered"]
        loss = 100.0 * (sent - answered) / sent if sent else 100.0
        yield f"--- {target}: {sent} sent, {answered} received, {loss:.0f}% loss"

    result = Result.stream(stream(), line, summary=summary)
    return result


def resolve(session: Context, host: str) -> tuple[int, str, str]:
    """(family, address, how): a probe target resolved the way the namespace's own
    processes resolve it (their hosts file and resolv.conf, see `dns`)."""
    from ..probes import literal_family

    family = literal_family(host)
    if family is not None:
        return family, host, "literal"
    from ..dns import resolve_address
    from .toolbox import namespace_resolver

    return resolve_address(session.namespace, namespace_resolver(session), host)


def _target(host: str, address: str) -> str:
    return host if host == address else f"{host} ({address})"


def ping(session: Context, args: dict[str, Any]) -> Result:
    from ..privileges import require
    from ..probes import ping as send

    require("CAP_NET_RAW", action="to send ICMP echo requests")
    _family, address, _how = resolve(session, args["host"])

    def line(r: Record) -> str:
        if r["from"] is None:
            where = f" from {r['error_from']}" if "error_from" in r else ""
            return f"no answer from {address}: icmp_seq={r['seq']}" + (
                f" ({r['error']}{where})" if "error" in r else ""
            )
        ttl = f" ttl={r['ttl']}" if "ttl" in r else ""
        return (
            f"{r.get('bytes', 0)} bytes from {r['from']}: icmp_seq={r['seq']}{ttl} "
            f"time={r['time_ms']:.3f} ms"
        )

    replies = send(
        session.namespace,
        address,
        count=args["count"] or 4,
        timeout=args["timeout"] or 1.0,
        size=56 if args["size"] is None else args["size"],
        iface=args["iface"],
        pmtu=args["pmtu"],
    )
    return _run(session, replies, _target(args["host"], address), line)


def tcping(session: Context, args: dict[str, Any]) -> Result:
    from ..pathprobes import tcping as send

    family, address, _how = resolve(session, args["host"])

    def line(r: Record) -> str:
        took = f" time={r['time_ms']:.3f} ms" if r["time_ms"] is not None else ""
        error = f" ({r['error']})" if "error" in r else ""
        return f"{address}:{r['port']} seq={r['seq']}: {r['result']}{took}{error}"

    replies = send(
        session.namespace,
        family,
        address,
        args["port"],
        count=args["count"] or 4,
        timeout=args["timeout"] or 2.0,
        iface=args["iface"],
    )
    return _run(session, replies, f"{_target(args['host'], address)} port {args['port']}", line)


def traceroute(session: Context, args: dict[str, Any]) -> Result:
    from ..pathprobes import traceroute as trace

    family, address, _how = resolve(session, args["host"])

    def line(r: Record) -> str:
        rtts = "  ".join("*" if t is None else f"{t:.3f} ms" for t in r["rtt_ms"])
        who = " ".join(r["addresses"]) or "*"
        marks = " " + " ".join(dict.fromkeys(r["marks"])) if r["marks"] else ""
        return f"{r['hop']:2d}  {who}  {rtts}{marks}"

    hops = trace(
        session.namespace,
        family,
        address,
        max_hops=args["max_hops"] or 30,
        queries=args["queries"] or 3,
        timeout=args["timeout"] or 2.0,
    )
    state = {"reached": False}

    def stream() -> Any:
        try:
            for hop in hops:
                state["reached"] = hop["reached"]
                yield hop
        except KeyboardInterrupt:
            session.console.end_interrupted_line()
        finally:
            hops.close()
        result.status = 0 if state["reached"] else 1

    result = Result.stream(
        stream(),
        line,
        summary=lambda: [
            f"traceroute to {_target(args['host'], address)}: "
            + ("reached" if state["reached"] else "not reached")
        ],
    )
    return result


def arping(session: Context, args: dict[str, Any]) -> Result:
    from ..privileges import require
    from ..probes import arping as send

    require("CAP_NET_RAW", action="to send ARP requests")

    def line(r: Record) -> str:
        if r["from"] is None:
            return f"no answer for {args['ip']} on {r.get('dev')}: request {r['seq']}"
        return f"reply from {r['from']} [{r['lladdr']}] on {r['dev']}: {r['time_ms']:.3f} ms"

    replies = send(
        session.namespace,
        args["ip"],
        count=args["count"] or 3,
        timeout=args["timeout"] or 1.0,
        iface=args["iface"],
    )
    return _run(session, replies, args["ip"], line)


def _size(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65507:
        raise ValueError(text)
    return value


def _tcp_port(text: str) -> int:
    value = int(text)
    if not 0 < value <= 65535:
        raise ValueError(text)
    return value


def _iface_param(help_text: str) -> Param:
    return Param(
        "iface", ("-I", "--interface"), metavar="IFACE", complete="interface", help=help_text
    )


def _probe_params(count: int, wait: float = 1) -> tuple[Param, ...]:
    """-c and -W, the same for every probe."""
    return (
        Param(
            "count",
            ("-c", "--count"),
            metavar="N",
            convert=positive_int,
            help=f"how many requests (default {count})",
        ),
        Param(
            "timeout",
            ("-W", "--timeout"),
            metavar="S",
            convert=positive_seconds,
            help=f"seconds to wait for each reply (default {wait:g})",
        ),
    )


def register(registry: Registry) -> None:
    registry.command(
        "ping",
        "ICMP echo from inside the namespace (fills its ARP/NDP table)",
        *_probe_params(4),
        Param("size", ("-s", "--size"), metavar="SIZE", convert=_size, help="payload bytes (56)"),
        Param(
            "pmtu",
            ("-M",),
            metavar="do|dont|want",
            choices=("do", "dont", "want"),
            help="do: set Don't Fragment (path-MTU tests)",
        ),
        _iface_param("interface or source address to send from"),
        Param("host", metavar="HOST", required=True, help="an IPv4/IPv6 address or a name"),
        details="Names are resolved as the namespace's own processes do (their hosts file and "
        "resolv.conf, e.g. Docker's 127.0.0.11). With -M do, a router's 'fragmentation "
        "needed' (or the path MTU the kernel already knows) is reported with the MTU.",
        examples=("ping 10.0.9.3", "ping -c 1 fd00:9::2", "ping -M do -s 1422 -c 1 web"),
        changes_state=True,  # sends packets, and fills the neighbour table
    )(ping)
    registry.command(
        "tcping",
        "TCP connects from inside the namespace: time to SYN-ACK, or refused/timeout/unreachable",
        *_probe_params(4, wait=2),
        _iface_param("interface or source address to connect from"),
        Param("host", metavar="HOST", required=True, help="an IPv4/IPv6 address or a name"),
        Param("port", metavar="PORT", required=True, convert=_tcp_port, help="TCP port"),
        details="Each probe is a full connect (closed at once with a RST): `open` with the "
        "time to the SYN-ACK, `refused` (a RST came back), `timeout` (nothing came back: "
        "a firewall drops it) or `unreachable` (an ICMP error or no route).",
        examples=("tcping web 80", "tcping -c 1 10.0.9.3 443"),
        changes_state=True,  # sends packets
    )(tcping)
    registry.command(
        "traceroute",
        "the routers on the way to a host, from inside the namespace (UDP probes)",
        Param("max_hops", ("-m",), metavar="N", convert=positive_int, help="hops at most (30)"),
        Param("queries", ("-q",), metavar="N", convert=positive_int, help="probes per hop (3)"),
        Param(
            "timeout",
            ("-w", "-W"),
            metavar="S",
            convert=positive_seconds,
            help="seconds to wait per probe (2)",
        ),
        Param("host", metavar="HOST", required=True, help="an IPv4/IPv6 address or a name"),
        details="UDP datagrams to ports from 33434 with TTL 1, 2, ...; each router's ICMP "
        "'time exceeded' names a hop, the destination's 'port unreachable' ends the trace "
        "(!H, !N, !X mark other unreachables). Exit status 1 when the host was not reached.",
        examples=("traceroute 10.0.9.3", "traceroute -q 1 -m 5 web"),
        aliases=("tracert",),
        changes_state=True,  # sends packets
    )(traceroute)
    registry.command(
        "arping",
        "ARP requests from inside the namespace: who has this IPv4 address",
        *_probe_params(3),
        _iface_param("interface to ask on (default: the route's)"),
        Param("ip", metavar="IP", required=True, help="an IPv4 address"),
        examples=("arping 10.0.9.3", "arping -I br0 -c 1 10.0.9.4"),
        changes_state=True,  # sends packets
    )(arping)
