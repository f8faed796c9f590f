"""The netshoot toolbox inside the namespace: rule, offloads, conntrack, firewall, dns.

Each handler imports its reader when it runs, so `-c links` never pays for them.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..render import Column, Result
from .inspect import FAMILY_PARAMS
from .registry import Param, Registry

if TYPE_CHECKING:
    from .context import Context

__all__ = ["register"]

Record = dict[str, Any]


# ------------------------------------------------------------------- rule
def _rule_selector(r: Record) -> str:
    parts = ["not"] if "not" in r else []
    for key in ("src", "dst"):
        if key in r and not (key == "src" and r[key] == "all" and "dst" in r):
            length = f"/{r[key + 'len']}" if f"{key}len" in r else ""
            parts.append(f"{'from' if key == 'src' else 'to'} {r[key]}{length}")
    for key, word in (("tos", "tos"), ("iif", "iif"), ("oif", "oif"), ("ipproto", "ipproto")):
        if key in r:
            parts.append(f"{word} {r[key]}")
    if "fwmark" in r:
        parts.append(f"fwmark {r['fwmark']}" + (f"/{r['fwmask']}" if "fwmask" in r else ""))
    for key in ("sport", "dport"):
        if key in r:
            parts.append(f"{key} {r[key]}")
        elif f"{key}_start" in r:
            parts.append(f"{key} {r[key + '_start']}-{r[key + '_end']}")
    if "uid_start" in r:
        parts.append(f"uidrange {r['uid_start']}-{r['uid_end']}")
    if "l3mdev" in r:
        parts.append("l3mdev")
    return " ".join(parts)


def _rule_action(r: Record) -> str:
    if "goto" in r:
        return f"goto {r['goto']}"
    if "action" in r:
        return r["action"]
    text = f"lookup {r['table']}" if "table" in r else ""
    if "suppress_prefixlen" in r:
        text += f" suppress_prefixlength {r['suppress_prefixlen']}"
    return text


RULE_COLUMNS = (
    Column.of("PRIO", "priority", safe=True),
    Column.of("FAMILY", "family", safe=True, priority=1),
    Column("SELECTOR", _rule_selector),
    Column("ACTION", _rule_action),
    Column.of("PROTO", "protocol", priority=2),
)


def rule(session: Context, args: dict[str, Any]) -> Result:
    from ..netlink.rules import list_rules

    records = list_rules(session.namespace, family=args["family"] or socket.AF_UNSPEC)
    return Result.table(records, RULE_COLUMNS)


# --------------------------------------------------------------- offloads
def _offload_state(r: Record) -> str:
    text = "on" if r["active"] else "off"
    if r["fixed"]:
        return text + " [fixed]"
    if r["requested"] != r["active"]:
        return text + f" [requested {'on' if r['requested'] else 'off'}]"
    return text


OFFLOAD_COLUMNS = (
    Column.of("FEATURE", "ethtool"),  # kernel strings: sanitized
    Column("STATE", _offload_state, safe=True, reads=("active", "requested", "fixed")),
    Column.of("WARNING", "warning"),
)


def offloads(session: Context, args: dict[str, Any]) -> Result:
    from ..offloads import list_offloads, vxlan_offload_findings

    records = list(list_offloads(session.namespace, args["iface"]))
    findings = vxlan_offload_findings(records)
    if findings:
        for r in records:
            if r["feature"] == "tx-checksum-ip-generic":
                r["warning"] = findings[0].split(":", 1)[0]
    if not args["all"]:
        # like ethtool -k, but without the features the driver can never turn on
        records = [r for r in records if not (r["fixed"] and not r["active"])]
    driver = records[0]["driver"] if records else ""

    def summary() -> list[str]:
        return [f"driver: {driver or '?'}", *findings]

    return Result(records=records, columns=OFFLOAD_COLUMNS, has_records=True, summary=summary)


# -------------------------------------------------------------- conntrack
def _endpoint(side: Record, address: str, port: str) -> str:
    host = side.get(address, "?")
    host = f"[{host}]" if ":" in host and port in side else host
    return f"{host}:{side[port]}" if port in side else host


def _flow(side: Record) -> str:
    if not side:
        return ""
    text = f"{_endpoint(side, 'src', 'sport')} -> {_endpoint(side, 'dst', 'dport')}"
    if "type" in side:
        text += f" type {side['type']} code {side.get('code', 0)} id {side.get('id', 0)}"
    return text


def _traffic(r: Record) -> str | None:
    sides = [r.get("original", {}), r.get("reply", {})]
    if not any("packets" in s for s in sides):
        return None
    return " / ".join(f"{s.get('packets', 0)}p {s.get('bytes', 0)}B" for s in sides)


CONNTRACK_COLUMNS = (
    Column.of("PROTO", "proto", safe=True),
    Column.of("STATE", "state", safe=True),
    Column.of("TIMEOUT", "timeout", safe=True, priority=2),
    Column("ORIGINAL", lambda r: _flow(r.get("original", {})), safe=True, reads=("original",)),
    Column("REPLY", lambda r: _flow(r.get("reply", {})), safe=True, reads=("reply",)),
    Column.of("FLAGS", "flags", safe=True, priority=2),
    Column.of("NAT", "nat", safe=True, priority=1),
    Column.of("MARK", "mark", safe=True, priority=2),
    Column("ORIG/REPLY", _traffic, safe=True, reads=("original", "reply"), priority=1),
)


def _protocol(value: str) -> int:
    from ..netlink.conntrack import protocol_number

    return protocol_number(value)


def _ip_address(value: str) -> str:
    from ..probes import literal_family

    family = literal_family(value)
    if family is None:
        raise ValueError(value)
    return socket.inet_ntop(family, socket.inet_pton(family, value))


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise ValueError(value)
    return number


def conntrack(session: Context, args: dict[str, Any]) -> Result:
    from ..netlink.conntrack import list_conntrack

    records = list_conntrack(
        session.namespace, proto=args["proto"], address=args["address"], port=args["port"]
    )
    return Result.table(records, CONNTRACK_COLUMNS)


# --------------------------------------------------------------- firewall
def _firewall_rule(r: Record) -> str | None:
    if r["kind"] == "rule":
        return r.get("rule") or r.get("target")
    if "hook" in r:
        return f"(hook {r['hook']} prio {r.get('prio')}) policy {r.get('policy', '-')}"
    return f"policy {r['policy']}" if "policy" in r else "(chain)"


FIREWALL_COLUMNS = (
    Column.of("BACKEND", "backend", safe=True, priority=2),
    Column.of("FAMILY", "family", priority=1),
    Column.of("TABLE", "table"),
    Column.of("CHAIN", "chain"),
    Column.of("PACKETS", "packets", safe=True),
    Column.of("BYTES", "bytes", safe=True, priority=1),
    Column("RULE", _firewall_rule, reads=("kind", "rule", "target", "hook", "prio", "policy")),
)


def firewall(session: Context, args: dict[str, Any]) -> Result:
    from ..firewall import list_firewall

    records, backends = list_firewall(session.namespace, table=args["table"], chain=args["chain"])

    def summary() -> list[str]:
        return [f"backend: {', '.join(backends)}"]

    return Result(records=records, columns=FIREWALL_COLUMNS, has_records=True, summary=summary)


# -------------------------------------------------------------------- dns
def namespace_resolver(session: Context) -> Any:
    """The resolver configuration the namespace's own processes use (see dns.read_resolver)."""
    import os.path

    from ..dns import read_resolver

    ns = session.namespace
    entry = session.catalogue.entry_for(ns) if ns.pid is None else None
    pids = list(entry.pids) if entry is not None else []
    name = None
    if os.path.dirname(ns.path) in ("/run/netns", "/var/run/netns"):
        name = os.path.basename(ns.path)
    return read_resolver(ns, pids, name)


DNS_COLUMNS = (
    Column.of("NAME", "name"),
    Column.of("TYPE", "type", safe=True),
    Column.of("TTL", "ttl", safe=True, priority=1),
    Column.of("DATA", "data"),
)


def dns(session: Context, args: dict[str, Any]) -> Result:
    from ..dns import TYPES, Answer, lookup, reverse_name

    words = [w for w in (args["name"], args["server"]) if w]
    names = [w for w in words if not w.startswith("@")]
    servers = [w[1:] for w in words if w.startswith("@") and len(w) > 1]
    if len(names) != 1:
        raise UsageError("dns: give one NAME (and @SERVER, -t TYPE if wanted)")
    qtype_name = (args["type"] or "A").upper()
    name = names[0]
    reverse = reverse_name(name)
    if reverse is not None:
        name, qtype_name = reverse, "PTR" if args["type"] is None else qtype_name
    qtype = TYPES.get(qtype_name) or (int(qtype_name[4:]) if qtype_name[4:].isdigit() else None)
    if qtype is None:
        raise UsageError(f"dns: unknown type {qtype_name!r} ({', '.join(TYPES)})")
    config = namespace_resolver(session)
    for server in servers:
        if reverse_name(server) is None:
            raise UsageError(f"dns: @{server}: give the server as an IP address")
    exchanges = list(
        lookup(
            session.namespace,
            config,
            name,
            qtype,
            servers=servers or None,
            port=args["port"] or 53,
            search=not servers and reverse is None,
        )
    )
    last = exchanges[-1] if exchanges else None
    records: list[Record] = []
    if isinstance(last, Answer):
        records = [
            {**r, "server": last.server, "time_ms": last.time_ms, "rcode": last.rcode}
            for r in last.records
        ]

    def summary() -> list[str]:
        lines = [f"resolver: {config.source} (nameservers {', '.join(config.nameservers)})"]
        if servers:
            lines[0] = f"server: {', '.join(servers)} (given)"
        for item in exchanges:
            if isinstance(item, Answer):
                lines.append(
                    f"{item.qname} {item.qtype}: {item.rcode} from {item.server} "
                    f"in {item.time_ms:.1f} ms ({item.transport}, {len(item.records)} records)"
                )
            else:
                lines.append(str(item))
        return lines

    status = 0 if records else 1
    return Result(
        records=records, columns=DNS_COLUMNS, has_records=True, summary=summary, status=status
    )


def register(registry: Registry) -> None:
    registry.command(
        "rule",
        "policy routing rules, with their tables named (like ip rule)",
        *FAMILY_PARAMS,
        aliases=("rules",),
        details="Like `ip rule show` for IPv4 then IPv6 (JSON keys of `ip -j rule`, plus "
        "`family` and `table_id`). `routes table X` shows the routes of any table a rule names.",
        examples=("rule", "rule -4", "routes table 100"),
    )(rule)
    registry.command(
        "offloads",
        "offload features of an interface (like ethtool -k), with the VXLAN-breaking ones flagged",
        Param("all", ("-a", "--all"), help="also the features fixed off (as ethtool -k lists)"),
        Param("iface", metavar="IFACE", complete="interface", required=True, help="interface"),
        details="Checksum, scatter-gather, TSO/GSO/GRO, tx-udp_tnl-segmentation, ... as "
        "`ethtool -k` names them (JSON: one record per kernel feature, with `active`, "
        "`requested`, `fixed`). Flags vmxnet3 with tx-checksum-ip-generic on, the VMware "
        "combination that corrupts VXLAN checksums (overlay ping works, TCP stalls).",
        examples=("offloads eth0", "offloads -a eth0", "offloads --json eth0"),
    )(offloads)
    registry.command(
        "conntrack",
        "the connection tracking table of the namespace, filtered (like conntrack -L)",
        Param(
            "proto",
            ("-p", "--proto"),
            metavar="PROTO",
            convert=_protocol,
            help="tcp, udp, icmp, ...",
        ),
        Param("port", ("port",), metavar="N", convert=_port, help="a port on either side"),
        Param("address", metavar="IP", convert=_ip_address, help="an address on either side"),
        details="Read over ctnetlink inside the namespace: state, timeout (seconds), the "
        "original and reply tuples (they differ when NAT rewrote the flow: NAT says SNAT/DNAT), "
        "flags, mark, and packet/byte counters when net.netfilter.nf_conntrack_acct is on.",
        examples=("conntrack", "conntrack -p tcp port 80", "conntrack -p udp 127.0.0.11"),
    )(conntrack)
    registry.command(
        "firewall",
        "the namespace's packet filter with packet/byte counters (nftables and legacy iptables)",
        Param(
            "table", ("-t", "--table"), metavar="TABLE", help="only this table (nat, filter, ...)"
        ),
        Param("chain", metavar="CHAIN", help="only this chain"),
        aliases=("iptables", "nft"),
        details="The nftables ruleset (where iptables-nft rules live too; BACKEND says "
        "iptables-nft for those tables) and, when the namespace has legacy x_tables loaded, "
        "`iptables-legacy-save -c`. In a Docker container, DOCKER_OUTPUT and "
        "DOCKER_POSTROUTING in the nat table send 127.0.0.11:53 to the embedded DNS's real "
        "ports. JSON: one record per chain and per rule (with nft's `expr`).",
        examples=("firewall", "firewall -t nat", "firewall -t nat DOCKER_OUTPUT"),
    )(firewall)
    registry.command(
        "dns",
        "resolve a name from inside the namespace, with its own resolver (like dig)",
        Param(
            "type", ("-t", "--type"), metavar="TYPE", help="A (default), AAAA, SRV, PTR, MX, ..."
        ),
        Param("port", ("-p", "--port"), metavar="PORT", convert=_port, help="server port (53)"),
        Param("name", metavar="NAME", required=True, help="a name, or an IP address (PTR)"),
        Param("server", metavar="@SERVER", help="ask this server (an IP address) only"),
        details="By default the query goes to the nameservers of the resolv.conf a process "
        "holding the namespace sees (a container's own, Docker's embedded 127.0.0.11 "
        "included), through its search list; @SERVER asks that server only, like dig. "
        "The query leaves from a socket inside the namespace. Says which server answered "
        "and how long it took. An IP address as NAME asks for its PTR record.",
        examples=("dns web", "dns tasks.web", "dns example.org @10.0.0.2 -t AAAA", "dns 10.0.9.3"),
    )(dns)
