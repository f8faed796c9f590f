"""Views of the current namespace: links, routes, neigh, fdb, bridges.

Each handler calls a query (records as `ip -j` prints them) and pairs it
with the columns a human reads; the renderer does the rest.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from ..netlink.constants import RT_TABLE_MAIN
from ..netlink.links import list_links
from ..render import Column, Result
from .registry import Param, Registry

if TYPE_CHECKING:
    from .context import Context

__all__ = ["register"]

Record = dict[str, Any]

FAMILY_PARAMS = (
    Param("family", ("-4",), const=socket.AF_INET, help="IPv4 only"),
    Param("family", ("-6",), const=socket.AF_INET6, help="IPv6 only"),
)


# ------------------------------------------------------------------ cells
def _ifname(r: Record) -> str:
    if r.get("link"):
        return f"{r['ifname']}@{r['link']}"
    if "link_index" in r:
        return f"{r['ifname']}@if{r['link_index']}"
    return r["ifname"]


def _addresses(r: Record) -> str:
    return " ".join(
        f"{a['local']}/{a['prefixlen']}" for a in r.get("addr_info", ()) if "local" in a
    )


def _kind(r: Record) -> str | None:
    return r.get("linkinfo", {}).get("info_kind")


def _link_details(r: Record) -> str:
    """The kind-specific summary `links -d` shows."""
    info = r.get("linkinfo", {})
    data = info.get("info_data", {})
    kind = info.get("info_kind")
    parts: list[str] = []
    if kind == "vxlan":
        parts.append(f"vni {data.get('id', '?')}")
        for key in ("local", "local6", "remote", "remote6", "group", "group6"):
            if key in data:
                parts.append(f"{key.rstrip('6')} {data[key]}")
        if "port" in data:
            parts.append(f"port {data['port']}")
        if data.get("link"):
            parts.append(f"dev {data['link']}")
        if data.get("learning") is False:
            parts.append("nolearning")
    elif kind == "veth" and ("peer_ifname" in r or "peer_netns" in r):
        where = r.get("peer_netns", "?")
        who = r.get("peer_container") or r.get("peer_network") or r.get("peer_pod")
        parts.append(f"peer {r.get('peer_ifname', '?')} in {where}" + (f" ({who})" if who else ""))
    elif kind == "bridge":
        parts.append(f"id {data.get('bridge_id', '?')} stp {data.get('stp_state', '?')}")
        if data.get("vlan_filtering"):
            parts.append("vlan_filtering")
    elif kind == "vlan":
        parts.append(f"id {data.get('id')} {data.get('protocol', '')}".rstrip())
    slave = info.get("info_slave_data", {})
    if "state" in slave:
        parts.append(f"port {slave['state']}")
    if r.get("ifalias"):
        parts.append(f"alias {r['ifalias']}")
    return ", ".join(parts)


LINK_COLUMNS = (
    Column.of("IDX", "ifindex", safe=True),
    Column("IFNAME", _ifname),
    Column.of("STATE", "operstate"),
    Column.of("MTU", "mtu", safe=True, priority=2),
    Column.of("MASTER", "master", priority=1),
    Column("KIND", _kind),
    Column.of("MAC", "address", safe=True, priority=2),
    Column("ADDRESSES", _addresses),
)
LINK_DETAIL_COLUMNS = (*LINK_COLUMNS, Column("DETAILS", _link_details))


def _counter(side: str, key: str) -> Any:
    return lambda r: r.get("stats64", {}).get(side, {}).get(key)


LINK_STATS_COLUMNS = (
    Column.of("IDX", "ifindex", safe=True),
    Column("IFNAME", _ifname),
    Column.of("STATE", "operstate", priority=1),
    *(
        Column(
            f"{side.upper()}-{label}",
            _counter(side, key),
            safe=True,
            reads=("stats64",),
            priority=1 if key in ("bytes", "packets") else 0,
        )
        for side in ("rx", "tx")
        for label, key in (
            ("BYTES", "bytes"),
            ("PACKETS", "packets"),
            ("ERRORS", "errors"),
            ("DROPPED", "dropped"),
        )
    ),
    Column(
        "OTHER",
        lambda r: ", ".join(
            f"{side} {key} {value}"
            for side in ("rx", "tx")
            for key, value in r.get("stats64", {}).get(side, {}).items()
            if value and key not in ("bytes", "packets", "errors", "dropped")
        ),
        safe=True,
        reads=("stats64",),
    ),
)


def _route_dst(r: Record) -> str:
    return f"{r['type']} {r['dst']}" if "type" in r else r["dst"]


def _route_gateway(r: Record) -> str | None:
    if "gateway" in r:
        return r["gateway"]
    if "via" in r:
        return r["via"]["host"]
    hops = r.get("nexthops")
    return (
        ",".join(h.get("gateway") or h.get("via", {}).get("host", "") for h in hops)
        if hops
        else None
    )


def _route_dev(r: Record) -> str | None:
    if "dev" in r:
        return r["dev"]
    hops = r.get("nexthops")
    return ",".join(h.get("dev", "") for h in hops) if hops else None


ROUTE_COLUMNS = (
    Column("DST", _route_dst, safe=True, reads=("type", "dst")),
    Column("GATEWAY", _route_gateway, safe=True, reads=("gateway", "via", "nexthops")),
    Column("DEV", _route_dev, reads=("dev", "nexthops")),
    Column.of("PROTO", "protocol", priority=2),
    Column.of("SCOPE", "scope", priority=2),
    Column.of("PREFSRC", "prefsrc", safe=True, priority=1),
    Column.of("METRIC", "metric", safe=True, priority=2),
    Column.of("FLAGS", "flags", priority=1),
)
ROUTE_TABLE_COLUMNS = (*ROUTE_COLUMNS[:3], Column.of("TABLE", "table"), *ROUTE_COLUMNS[3:])


def _neigh_flags(r: Record) -> list[str]:
    return [k for k in ("router", "proxy", "extern_learn", "offload") if k in r]


NEIGH_COLUMNS = (
    Column.of("DST", "dst", safe=True),
    Column.of("DEV", "dev"),
    Column.of("LLADDR", "lladdr", safe=True),
    Column.of("STATE", "state"),
    Column("FLAGS", _neigh_flags, reads=("router", "proxy", "extern_learn", "offload"), priority=1),
)


def _fdb_remote(r: Record) -> str | None:
    if "dst" not in r:
        return None
    extra = [f"{k} {r[k]}" for k in ("port", "vni", "src_vni", "viaIf") if k in r]
    return " ".join([r["dst"], *extra])


FDB_COLUMNS = (
    Column.of("MAC", "mac", safe=True),
    Column.of("DEV", "ifname"),
    Column.of("MASTER", "master", priority=1),
    Column.of("VLAN", "vlan", safe=True, priority=2),
    # not safe: viaIf is an interface name
    Column("VTEP", _fdb_remote, reads=("dst", "port", "vni", "src_vni", "viaIf")),
    Column.of("STATE", "state"),
    Column.of("FLAGS", "flags", priority=1),
)


def _ports(r: Record) -> str:
    return ", ".join(
        f"{p['ifname']} ({p['state']})" if p.get("state") else p["ifname"] for p in r["ports"]
    )


BRIDGE_COLUMNS = (
    Column.of("BRIDGE", "ifname"),
    Column.of("BRIDGE-ID", "bridge_id", priority=2),
    Column.of("STP", "stp_state", priority=2),
    Column.of("VLAN-FILTERING", "vlan_filtering", priority=2),
    Column("PORTS", _ports),
)


# --------------------------------------------------------------- handlers


def _table(value: str) -> int:
    from ..netlink.routes import parse_table

    return parse_table(value)


# Each handler imports what it needs when it runs: `-c links` starts fast.
def links(session: Context, args: dict[str, Any]) -> Result:
    if args.get("stats"):
        return stats(session, args)
    records = list_links(session.namespace, name=args["iface"])
    if args["detail"]:
        from ..peers import annotate_peers

        records = annotate_peers(session.namespace, records, session.catalogue.namespaces())
        return Result.table(records, LINK_DETAIL_COLUMNS)
    return Result.table(records, LINK_COLUMNS)


def stats(session: Context, args: dict[str, Any]) -> Result:
    records = list_links(session.namespace, name=args["iface"], addresses=False, stats=True)
    return Result.table(records, LINK_STATS_COLUMNS)


def routes(session: Context, args: dict[str, Any]) -> Result:
    from ..netlink.routes import list_routes

    table = args["table"] if args["table"] is not None else RT_TABLE_MAIN
    records = list_routes(
        session.namespace, family=args["family"] or socket.AF_UNSPEC, table=table, dev=args["dev"]
    )
    return Result.table(records, ROUTE_COLUMNS if table == RT_TABLE_MAIN else ROUTE_TABLE_COLUMNS)


def neigh(session: Context, args: dict[str, Any]) -> Result:
    from ..netlink.neighbours import list_neighbours

    records = list_neighbours(
        session.namespace,
        family=args["family"] or socket.AF_UNSPEC,
        dev=args["dev"],
        show_all=bool(args["all"]),
    )
    return Result.table(records, NEIGH_COLUMNS)


def fdb(session: Context, args: dict[str, Any]) -> Result:
    from ..netlink.neighbours import list_fdb

    records = list_fdb(session.namespace, bridge=args["bridge"], dev=args["dev"])
    return Result.table(records, FDB_COLUMNS)


def bridges(session: Context, args: dict[str, Any]) -> Result:
    from ..netlink.bridges import list_bridges

    return Result.table(list_bridges(session.namespace), BRIDGE_COLUMNS)


def register(registry: Registry) -> None:
    registry.command(
        "links",
        "links with state, MTU, master, MAC and addresses (-d: kind details, veth peers)",
        Param("detail", ("-d", "--details"), help="vxlan VNI/local/remote/port, bridge, veth peer"),
        Param("stats", ("-s", "--stats"), help="counters: bytes, packets, errors, drops"),
        Param("iface", metavar="IFACE", complete="interface", help="only this interface"),
        details="Like `ip -d addr show`. With -d, a veth row names the namespace and interface "
        "at its other end. With -s, the counters of `ip -s -s link` (IFLA_STATS64, JSON key "
        "`stats64`); the same as the `stats` command.",
        aliases=("link",),
        examples=("links", "links -d", "links -d eth0", "links -s eth0", "links --json"),
    )(links)
    registry.command(
        "stats",
        "per-interface counters: bytes, packets, errors and drops (like ip -s link)",
        Param("iface", metavar="IFACE", complete="interface", help="only this interface"),
        details="The kernel's IFLA_STATS64 counters; OTHER lists the non-zero detailed "
        "counters (over_errors, missed_errors, carrier_errors, ...). JSON as `ip -s -s -j link`.",
        examples=("stats", "stats eth0", "links -s --json"),
    )(stats)
    registry.command(
        "routes",
        "routes (default: IPv4 and IPv6, main table)",
        *FAMILY_PARAMS,
        Param(
            "table",
            ("table",),
            metavar="ID",
            convert=_table,
            complete="table",
            help="a table id or name, or 'all'",
        ),
        Param("dev", ("dev",), metavar="IFACE", complete="interface", help="routes via IFACE"),
        aliases=("route",),
        details="Like `ip route show`; `table all` adds the local table and every other table.",
        examples=("routes", "routes -4 table all", "routes table 100", "routes dev eth0"),
    )(routes)
    registry.command(
        "neigh",
        "ARP and NDP entries",
        *FAMILY_PARAMS,
        Param("dev", ("dev",), metavar="IFACE", complete="interface", help="entries on IFACE"),
        Param("all", ("-a", "--all"), help="also NOARP and NONE entries (`nud all`)"),
        aliases=("neighbours", "arp"),
        details="Like `ip neigh show`. In an overlay namespace the vxlan device holds one "
        "permanent entry per remote container (IP -> MAC).",
        examples=("neigh", "neigh -4 dev vxlan0"),
    )(neigh)
    registry.command(
        "fdb",
        "bridge forwarding database, with the VTEP (dst) of vxlan entries",
        Param("bridge", ("br",), metavar="BRIDGE", complete="bridge", help="entries of BRIDGE"),
        Param("dev", ("dev",), metavar="IFACE", complete="interface", help="entries of a port"),
        details="Like `bridge fdb show`. In a swarm overlay namespace the vxlan device holds "
        "one entry per remote MAC with `dst` = the VTEP (the remote node).",
        examples=("fdb", "fdb br br0", "fdb dev vxlan0"),
    )(fdb)
    registry.command(
        "bridges",
        "bridges and their ports (like brctl show)",
        examples=("bridges",),
    )(bridges)
