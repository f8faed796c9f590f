"""Probes from inside the namespace: ping, arping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..render import Result
from .registry import Param, Registry, positive_int, positive_seconds

if TYPE_CHECKING:
    from ..probes import Reply
    from ..session import Session

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
    session: Session, replies: Iterator[Reply], target: str, line: Callable[[Record], str]
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


def ping(session: Session, args: dict[str, Any]) -> Result:
    from ..privileges import require
    from ..probes import ping as send

    require("CAP_NET_RAW", action="to send ICMP echo requests")

    def line(r: Record) -> str:
        if r["from"] is None:
            return f"no answer from {args['host']}: icmp_seq={r['seq']}" + (
                f" ({r['error']})" if "error" in r else ""
            )
        ttl = f" ttl={r['ttl']}" if "ttl" in r else ""
        return (
            f"{r.get('bytes', 0)} bytes from {r['from']}: icmp_seq={r['seq']}{ttl} "
            f"time={r['time_ms']:.3f} ms"
        )

    replies = send(
        session.namespace, args["host"], count=args["count"] or 4, timeout=args["timeout"] or 1.0
    )
    return _run(session, replies, args["host"], line)


def arping(session: Session, args: dict[str, Any]) -> Result:
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


def _probe_params(count: int) -> tuple[Param, ...]:
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
            help="seconds to wait for each reply (default 1)",
        ),
    )


def register(registry: Registry) -> None:
    registry.command(
        "ping",
        "ICMP echo from inside the namespace (fills its ARP/NDP table)",
        *_probe_params(4),
        Param("host", metavar="HOST", required=True, help="an IPv4/IPv6 address or a name"),
        examples=("ping 10.0.1.3", "ping -c 1 fd00:9::2"),
        changes_state=True,  # sends packets, and fills the neighbour table
    )(ping)
    registry.command(
        "arping",
        "ARP requests from inside the namespace: who has this IPv4 address",
        *_probe_params(3),
        Param(
            "iface",
            ("-I", "--interface"),
            metavar="IFACE",
            complete="interface",
            help="interface to ask on (default: the route's)",
        ),
        Param("ip", metavar="IP", required=True, help="an IPv4 address"),
        examples=("arping 10.0.1.3", "arping -I br0 -c 1 10.0.1.4"),
        changes_state=True,  # sends packets
    )(arping)
