"""`ipvs`: the IPVS load-balancing table of the current namespace, like `ipvsadm -Ln`.

What it shows: one row per real server of each IPVS virtual service: the
service (`TCP 10.0.0.2:80`, or `FWM 257` for a firewall-mark service), its
scheduler, the real server, the forwarding method (masq, route, tunnel,
local, bypass), the weight and the active / inactive connection counts.
Docker's swarm load balancing lives here: the `lb_<netid>` namespace of each
overlay network and `ingress_sbox` hold fwmark services whose real servers are
the tasks' IP addresses, so this is where a "service VIP answers nothing"
story ends (a service with no real server, or weight 0 everywhere).

How (a worked example of a generic netlink dump from a plugin):

* IPVS is configured over generic netlink (family "IPVS"), and its tables are
  per network namespace, so the dump is made by a socket created inside the
  namespace (`NetlinkSocket(namespace, NETLINK_GENERIC)`).  Requests and
  replies go through the core socket's receive path, like every built-in
  table: replies are matched by sequence number, and a dump the kernel flags
  as interrupted (NLM_F_DUMP_INTR) or that lost messages (ENOBUFS) is retried
  (`dump_with_retry`) instead of being shown half.
* The family id is asked of the generic netlink controller (CTRL_CMD_GETFAMILY).
  pyroute2 is used for the thin part only: its `ipvsmsg` schema encodes the
  requests and decodes the replies' nested IPVS attributes (about twenty of
  them, with per-family addresses) into the dicts `service_of` / `server_of`
  read.  It is imported on first use (~0.3 s), so the shell starts as fast
  with this plugin as without it.

No IPVS at all (the host kernel has no `ip_vs` module loaded: no
`/proc/net/ip_vs`, no generic netlink family) is an error of one line: a
troubleshooter then knows the table is not empty but absent.  The command
looks at procfs before it asks netlink for the family, because that question
makes the kernel load the module: `ipvs` never changes the host.  A namespace without services (IPVS
loaded) gives an empty table.  Read-only: nothing is changed.

JSON records (`--json`) are flat, one per real server, with the service's
fields repeated, so `jq 'select(.fwmark == 257)'` needs no nesting; a service
without real servers still gives one record, with the server keys null (that
is the broken case worth seeing).  Keys: service (ipvsadm's text), family
("inet"/"inet6"), protocol ("tcp"/"udp"/"sctp", null for fwmark services),
service_address, service_port (null for fwmark services), fwmark (null for
address services), scheduler, flags (e.g. ["persistent"]), persistence (the
persistence timeout in seconds, or null), server_address, server_port,
forward, weight, active_conns, inactive_conns, persist_conns, stats (the
real server's counters: conns, inpkts, outpkts, inbytes, outbytes).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

from netns_shell.netlink.constants import (
    CTRL_ATTR_FAMILY_ID,
    CTRL_ATTR_FAMILY_NAME,
    CTRL_CMD_GETFAMILY,
    GENL_ID_CTRL,
    GENLMSGHDR,
    IP_VS_CONN_F_FWD_MASK,
    IP_VS_SVC_F_PERSISTENT,
    IPVS_CMD_GET_DEST,
    IPVS_CMD_GET_SERVICE,
    IPVS_GENL_NAME,
    IPVS_GENL_VERSION,
    NETLINK_GENERIC,
    NLA,
    U16,
)
from netns_shell.plugin import (
    API_VERSION,
    Column,
    DumpInconsistentError,
    NetlinkError,
    NetlinkSocket,
    NetNamespace,
    NetnsShellError,
    NotFoundError,
    PrivilegeError,
    Registry,
    dump_with_retry,
    parse_attrs,
)

__all__ = ["API_VERSION", "list_services", "records_of", "register"]

Record = dict[str, Any]

#: IP_VS_CONN_F_FWD_MASK values (include/uapi/linux/ip_vs.h) -> ipvsadm's words
FORWARD_METHODS = {0: "masq", 1: "local", 2: "tunnel", 3: "route", 4: "bypass"}
#: IP_VS_SVC_F_* service flags worth showing (HASHED is internal)
SERVICE_FLAGS = {0x1: "persistent", 0x4: "ops", 0x8: "sched-flag-1", 0x10: "sched-flag-2"}
_PERSISTENT = IP_VS_SVC_F_PERSISTENT
_PROTOCOLS = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp", 132: "sctp"}
_FAMILIES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}
_STATS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")

_NO_IPVS = (
    "ipvs: no IPVS here: the kernel's ip_vs module is not loaded (no /proc/net/ip_vs), so no "
    "namespace has an IPVS table (netns-shell does not load it)"
)


# ------------------------------------------------------------ messages -> dicts
def service_of(message: Any) -> Record:
    """A service dict from a pyroute2 IPVS service message (IPVS_CMD_NEW_SERVICE)."""
    attrs = message.get("IPVS_CMD_ATTR_SERVICE")
    get = attrs.get
    family = get("IPVS_SVC_ATTR_AF")
    fwmark = get("IPVS_SVC_ATTR_FWMARK") or None
    flags_attr = get("IPVS_SVC_ATTR_FLAGS")
    flags = flags_attr["flags"] if flags_attr is not None else 0
    protocol = get("IPVS_SVC_ATTR_PROTOCOL")
    return {
        "family": _FAMILIES.get(family, str(family)),
        "protocol": None if fwmark else _PROTOCOLS.get(protocol, str(protocol)),
        "service_address": None if fwmark else get("IPVS_SVC_ATTR_ADDR"),
        "service_port": None if fwmark else get("IPVS_SVC_ATTR_PORT"),
        "fwmark": fwmark,
        "scheduler": get("IPVS_SVC_ATTR_SCHED_NAME"),
        "flags": [name for bit, name in SERVICE_FLAGS.items() if flags & bit],
        "persistence": get("IPVS_SVC_ATTR_TIMEOUT") if flags & _PERSISTENT else None,
        # what identifies the service in a dest dump request
        "_af": family,
        "_protocol": protocol,
    }


def server_of(message: Any) -> Record:
    """A real-server dict from a pyroute2 IPVS dest message (IPVS_CMD_NEW_DEST)."""
    attrs = message.get("IPVS_CMD_ATTR_DEST")
    get = attrs.get
    stats = get("IPVS_DEST_ATTR_STATS64") or get("IPVS_DEST_ATTR_STATS")
    forward = (get("IPVS_DEST_ATTR_FWD_METHOD") or 0) & IP_VS_CONN_F_FWD_MASK
    return {
        "server_address": get("IPVS_DEST_ATTR_ADDR"),
        "server_port": get("IPVS_DEST_ATTR_PORT"),
        "forward": FORWARD_METHODS.get(forward, str(forward)),
        "weight": get("IPVS_DEST_ATTR_WEIGHT"),
        "active_conns": get("IPVS_DEST_ATTR_ACTIVE_CONNS"),
        "inactive_conns": get("IPVS_DEST_ATTR_INACT_CONNS"),
        "persist_conns": get("IPVS_DEST_ATTR_PERSIST_CONNS"),
        "stats": {
            name: (stats.get(f"IPVS_STATS_ATTR_{name.upper()}") if stats is not None else None)
            for name in _STATS
        },
    }


# ------------------------------------------------------------ the dump
def _has_ipvs() -> bool:
    """Runs inside the namespace: does the kernel have IPVS (procfs, loads nothing)?"""
    return os.path.exists("/proc/thread-self/net/ip_vs")


def _family_id(sock: NetlinkSocket, name: bytes) -> int:
    """The generic netlink family id of `name` (CTRL_CMD_GETFAMILY); NetlinkError if none."""
    value = name + b"\0"
    attr = NLA.pack(4 + len(value), CTRL_ATTR_FAMILY_NAME) + value
    body = GENLMSGHDR.pack(CTRL_CMD_GETFAMILY, 1) + attr + bytes(-len(attr) % 4)
    _kind, data, start, end = sock.get(GENL_ID_CTRL, body, what="ipvs")
    span = parse_attrs(data, start + GENLMSGHDR.size, end).get(CTRL_ATTR_FAMILY_ID)
    if span is None:
        raise NetlinkError("ipvs: the controller named no family id", errno.ENOENT)
    return U16.unpack_from(data, span[0])[0]


def _dump(sock: NetlinkSocket, family: int, command: int, attrs: list) -> list[Any]:
    """Every reply of one IPVS dump, as decoded pyroute2 `ipvsmsg`s (retried if interrupted)."""
    from pyroute2.netlink.generic import ipvs as schema

    request = schema.ipvsmsg()
    request["cmd"], request["version"], request["attrs"] = command, IPVS_GENL_VERSION, attrs
    request.encode()
    body = bytes(request.data[16:])  # the core socket writes the nlmsghdr itself

    def replies() -> Iterator[Any]:
        for _kind, data, start, end in sock.dump(family, body, what="ipvs"):
            message = schema.ipvsmsg(bytes(data[start - 16 : end]))
            message.decode()
            yield message

    return list(dump_with_retry(replies, buffer_limit=1 << 30))


def _dump_tables(namespace: NetNamespace) -> list[tuple[Record, list[Record]]]:
    """[(service, [real server, ...])] of `namespace`."""
    # Asking for the generic netlink family would make the kernel load ip_vs
    # (request_module): a read-only command must not, so look at procfs first.
    if not namespace.run(_has_ipvs):
        raise NotFoundError(_NO_IPVS)
    from pyroute2 import IPVSService

    with NetlinkSocket(namespace, NETLINK_GENERIC, strict=False) as sock:
        try:
            family = _family_id(sock, IPVS_GENL_NAME)  # ENOENT when there is no IPVS
        except NetlinkError as exc:
            raise _error(exc.errno, opening=True) from None
        try:
            # the whole service dump first: a dest dump must not start inside it
            services = [service_of(m) for m in _dump(sock, family, IPVS_CMD_GET_SERVICE, [])]
            tables = []
            for service in services:
                if service["fwmark"] is not None:
                    key = IPVSService(af=service["_af"], fwmark=service["fwmark"])
                else:
                    key = IPVSService(
                        af=service["_af"],
                        protocol=service["_protocol"],
                        addr=service["service_address"],
                        port=service["service_port"],
                    )
                attrs = [("IPVS_CMD_ATTR_SERVICE", key.dump_key())]
                servers = [server_of(m) for m in _dump(sock, family, IPVS_CMD_GET_DEST, attrs)]
                tables.append((service, servers))
            return tables
        except DumpInconsistentError:
            raise  # a warning with the rows: not an IPVS failure
        except NetlinkError as exc:
            raise _error(exc.errno) from None


def _error(code: int, *, opening: bool = False) -> NetnsShellError:
    if code == errno.ENOENT and opening:
        return NotFoundError(_NO_IPVS)
    if code in (errno.EPERM, errno.EACCES):
        return PrivilegeError(f"ipvs: {os.strerror(code)} (reading IPVS needs CAP_NET_ADMIN)")
    return NetnsShellError(f"ipvs: {os.strerror(code)}")


# ------------------------------------------------------------ records
def _address_key(family: str, address: str | None) -> tuple[int, int]:
    if address is None:
        return (0, 0)
    try:
        return (4 if family == "inet" else 6, int(ipaddress.ip_address(address)))
    except ValueError:
        return (9, 0)


def _service_sort_key(service: Record) -> tuple:
    # ipvsadm's order: address services by protocol, address, port; then fwmarks
    return (
        service["fwmark"] is not None,
        service["fwmark"] or 0,
        service["protocol"] or "",
        _address_key(service["family"], service["service_address"]),
        service["service_port"] or 0,
    )


def _endpoint(address: str, port: int | None) -> str:
    shown = f"[{address}]" if ":" in address else address
    return f"{shown}:{port if port is not None else 0}"


def _service_text(service: Record) -> str:
    """The service as ipvsadm -Ln names it: 'TCP 10.0.0.1:80', 'FWM 257'."""
    if service["fwmark"] is not None:
        suffix = " IPv6" if service["family"] == "inet6" else ""
        return f"FWM {service['fwmark']}{suffix}"
    protocol = (service["protocol"] or "?").upper()
    return f"{protocol} {_endpoint(service['service_address'], service['service_port'])}"


_NO_SERVER = dict.fromkeys(
    (
        "server_address",
        "server_port",
        "forward",
        "weight",
        "active_conns",
        "inactive_conns",
        "persist_conns",
        "stats",
    )
)


def records_of(tables: list[tuple[Record, list[Record]]]) -> list[Record]:
    """Flat records, one per real server (one for a service without any), sorted."""
    records = []
    for service, servers in sorted(tables, key=lambda t: _service_sort_key(t[0])):
        common = {"service": _service_text(service)}
        common.update((k, v) for k, v in service.items() if not k.startswith("_"))
        ordered = sorted(
            servers,
            key=lambda s: (
                _address_key(service["family"], s["server_address"]),
                s["server_port"] or 0,
            ),
        )
        for server in ordered or [_NO_SERVER]:
            records.append({**common, **server})
    return records


def list_services(namespace: NetNamespace) -> list[Record]:
    """The IPVS table of `namespace` as flat records (see the module doc); read-only.

    Raises NotFoundError when the kernel has no IPVS at all.
    """
    return records_of(_dump_tables(namespace))


# ------------------------------------------------------------ the command
def _server(r: Record) -> str:
    if r["server_address"] is None:
        return "(no real server)"
    return _endpoint(r["server_address"], r["server_port"])


def _scheduler(r: Record) -> str:
    if r["persistence"] is not None:
        return f"{r['scheduler']} persistent {r['persistence']}"
    return r["scheduler"] or ""


COLUMNS = (
    Column.of("SERVICE", "service", safe=True),
    # a scheduler name comes from the kernel module that registered it
    Column("SCHED", _scheduler, reads=("scheduler", "persistence"), priority=1),
    Column("SERVER", _server, safe=True, reads=("server_address", "server_port")),
    Column.of("FORWARD", "forward", safe=True, priority=1),
    Column.of("WEIGHT", "weight", safe=True, priority=1),
    Column.of("ACTIVE", "active_conns", safe=True),
    Column.of("INACTIVE", "inactive_conns", safe=True, priority=2),
)


def register(registry: Registry) -> None:
    @registry.view(
        "ipvs",
        "IPVS virtual services and their real servers (like ipvsadm -Ln)",
        columns=COLUMNS,
        details="One row per real server of each IPVS service of the current namespace "
        "(Docker swarm services live in lb_<netid> and ingress_sbox, as 'FWM N' services); "
        "a service without real servers shows '(no real server)'. FORWARD: masq (NAT), "
        "route (direct routing), tunnel, local, bypass. --json: one flat record per real "
        "server, the service's fields repeated: service, family, protocol, service_address, "
        "service_port, fwmark, scheduler, flags, persistence, server_address, server_port, "
        "forward, weight, active_conns, inactive_conns, persist_conns, stats. A kernel "
        "without IPVS is an error; a namespace without services an empty table.",
        examples=("ipvs", "use ingress_sbox; ipvs"),
    )
    def ipvs(namespace: NetNamespace, args: dict[str, Any]) -> list[Record]:
        """The IPVS table of the namespace, as the module doc describes."""
        return list_services(namespace)
