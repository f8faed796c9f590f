"""`watch`: live netlink events of the current namespace until Ctrl-C."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..render import Result
from .registry import Param, Registry, positive_int, positive_seconds

if TYPE_CHECKING:
    from .context import Context

__all__ = ["describe_event", "register"]

Record = dict[str, Any]
TOPIC_NAMES = ("links", "addr", "neigh", "fdb", "routes")


def describe_event(r: Record) -> str:
    """One line per event, in iproute2's words ('Deleted' for removals)."""
    obj = r.get("object")
    if obj == "link":
        text = f"{r.get('ifindex')}: {r.get('ifname')}: <{','.join(r.get('flags', []))}>"
        text += f" mtu {r['mtu']}" if "mtu" in r else ""
        text += f" master {r['master']}" if "master" in r else ""
        text += f" state {r['operstate']}" if "operstate" in r else ""
    elif obj == "address":
        text = f"{r.get('dev')} {r.get('family')} {r.get('local')}/{r.get('prefixlen')}"
        text += f" scope {r.get('scope')}"
    elif obj == "neigh":
        text = f"{r.get('dst')} dev {r.get('dev')}"
        text += f" lladdr {r['lladdr']}" if "lladdr" in r else ""
        text += " " + " ".join(r.get("state", []))
    elif obj == "fdb":
        text = f"{r.get('mac')} dev {r.get('ifname')}"
        for key in ("dst", "vlan", "master"):
            text += f" {key} {r[key]}" if key in r else ""
        text += " " + " ".join([*r.get("flags", []), r.get("state", "")])
    else:
        text = f"{r['type'] + ' ' if 'type' in r else ''}{r.get('dst')}"
        for key, word in (
            ("gateway", "via"),
            ("dev", "dev"),
            ("table", "table"),
            ("protocol", "proto"),
            ("metric", "metric"),
        ):
            text += f" {word} {r[key]}" if key in r else ""
    prefix = {"deleted": "Deleted ", "sync": "Now: "}.get(r.get("event", ""), "")
    stamp = f"[{r['time']}] " if r.get("time") else ""  # like `ip -ts monitor`
    return f"{stamp}[{str(obj).upper()}] {prefix}{text.strip()}"


def watch(session: Context, args: dict[str, Any]) -> Result:
    from ..netlink.monitor import Lost, watch_events

    topics = tuple(args["topics"]) or TOPIC_NAMES
    unknown = [t for t in topics if t not in TOPIC_NAMES]
    if unknown:
        from ..errors import UsageError

        raise UsageError(f"watch: unknown topic '{unknown[0]}' (one of {', '.join(TOPIC_NAMES)})")
    # subscribed before saying so: whoever acts on "watching" (a script, a test) sees its events
    events = watch_events(session.namespace, topics, duration=args["duration"])
    session.console.say(f"watching {', '.join(topics)} in {session.label()} (Ctrl-C to stop)")

    def stream() -> Iterator[Any]:
        seen = 0
        try:
            for event in events:
                if isinstance(event, Lost):
                    session.console.warn(
                        "events were lost (ENOBUFS): resyncing, the current state follows"
                    )
                    continue
                if isinstance(event, dict):  # when it arrived, as `ip -ts monitor` shows it
                    now = datetime.datetime.now()
                    event.setdefault("time", now.isoformat(timespec="microseconds"))
                yield event
                seen += 1
                if args["count"] and seen >= args["count"]:
                    return
        except KeyboardInterrupt:  # Ctrl-C ends the watch, not the shell
            session.console.end_interrupted_line()
            return
        finally:
            events.close()

    return Result.stream(stream(), describe_event)


def register(registry: Registry) -> None:
    registry.command(
        "watch",
        "live netlink events (links, addr, neigh, fdb, routes) until Ctrl-C",
        Param(
            "count",
            ("-c", "--count"),
            metavar="N",
            convert=positive_int,
            help="stop after N events",
        ),
        Param(
            "duration",
            ("--duration",),
            metavar="S",
            convert=positive_seconds,
            help="stop after S seconds",
        ),
        Param(
            "topics",
            metavar="TOPIC",
            rest=True,
            choices=TOPIC_NAMES,
            help="what to watch: links, addr, neigh, fdb, routes (default: all)",
        ),
        details="Like `ip monitor` / `bridge monitor`, inside the current namespace. If the "
        "kernel drops events (ENOBUFS), watch says so and prints the current table.",
        examples=("watch fdb", "watch neigh fdb", "watch -c 5 links"),
    )(watch)
