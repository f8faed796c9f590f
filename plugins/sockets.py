"""`sockets`: the TCP and UDP sockets of the current namespace, like `ss -tunap`.

What it shows: one row per IPv4 / IPv6 TCP or UDP socket of the namespace the
shell is in: protocol, state (ss's names: LISTEN, ESTAB, TIME-WAIT, UNCONN...),
receive and send queues, local and peer address, and the processes holding it.
By default every state is shown (like `ss -tuna`); `-l` keeps the listening
ones (TCP LISTEN and bound UDP, like `ss -l`).

How (a worked example for plugin authors):

* The sockets come from the kernel's sock_diag interface (NETLINK_SOCK_DIAG,
  one `inet_diag_req_v2` dump per family and protocol), which is what `ss`
  uses.  Sockets belong to a network namespace, so the netlink socket is made
  inside it with `namespace.socket(...)`; once made it stays bound to that
  namespace and is read from the shell's own thread, which never switches.
  Requests and replies are packed and unpacked with `struct` (the layouts are
  named in netns_shell.netlink.constants) and received through the core
  `NetlinkSocket` (sequence numbers, ENOBUFS, interrupted dumps, as for every
  built-in table): a dump of a few thousand sockets then costs milliseconds and
  pyroute2 is not even imported.
* The owning processes are found the way `ss -p` finds them: every
  `/proc/PID/fd/N` that links to `socket:[INODE]`.  Only processes (not their
  threads, which share the table) are read, each fd directory opened once and
  its links read relative to it, so a few thousand fds take a few ms.  A
  process in another namespace can hold a socket of this one (it made it
  there, or got it passed), so all of /proc is scanned, as ss does.  Sockets
  in TIME-WAIT (inode 0) or owned by the kernel (the vxlan UDP socket) have no
  process.
* Interface names (for sockets bound to a device) are looked up with
  `namespace.run(socket.if_nameindex)`, which must run inside the namespace.

JSON records (`--json`), one per socket, with these stable keys: netid
("tcp"/"udp"), family ("inet"/"inet6"), state, recv_q, send_q, local_address,
local_port, peer_address, peer_port (0: none; the table shows `*`), dev (the
bound interface or null), v6only (IPv6 listening / unconnected sockets; else
null), uid, inode (0 in TIME-WAIT), processes ([{pid, comm, fd}], possibly
empty).  The table shows addresses as ss does: `[v6]:port`, `*` for a
dual-stack wildcard, `addr%dev` for a socket bound to a device.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable, Iterator
from typing import Any

from netns_shell.netlink.constants import (
    INET_DIAG_MSG_HEAD,
    INET_DIAG_MSG_PORTS,
    INET_DIAG_MSG_SIZE,
    INET_DIAG_MSG_TAIL,
    INET_DIAG_REQ_V2,
    INET_DIAG_SKV6ONLY,
    NETLINK_SOCK_DIAG,
    NLA,
    SOCK_DIAG_BY_FAMILY,
)
from netns_shell.plugin import (
    API_VERSION,
    Column,
    DumpInconsistentError,
    NetlinkError,
    NetlinkSocket,
    NetNamespace,
    NetnsShellError,
    Param,
    PrivilegeError,
    Registry,
    UsageError,
    dump_with_retry,
)

__all__ = ["API_VERSION", "list_sockets", "register", "socket_owners"]

Record = dict[str, Any]

#: kernel TCP state numbers -> the names ss prints (UDP uses 7 and 1 too)
STATE_NAMES = {
    1: "ESTAB",
    2: "SYN-SENT",
    3: "SYN-RECV",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "UNCONN",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW-SYN-RECV",
    13: "BOUND-INACTIVE",
}
_LISTEN, _CLOSE = 10, 7
#: every state ss -a asks for (bits 0-12); bound-inactive TCP sockets (13, Linux
#: 6.6+) are left out, as ss leaves them out without -B
ALL_STATES = (1 << 13) - 1
LISTENING_STATES = (1 << _LISTEN) | (1 << _CLOSE)

_PROTOCOLS = (("tcp", socket.IPPROTO_TCP), ("udp", socket.IPPROTO_UDP))
_FAMILIES = ((socket.AF_INET, "inet"), (socket.AF_INET6, "inet6"))


# ------------------------------------------------------------------ sock_diag
def _decode(data: bytes, off: int, end: int, netid: str) -> Record:
    """One inet_diag_msg (payload at data[off:end]) as a record (no processes yet)."""
    family, state, _timer, _retrans = INET_DIAG_MSG_HEAD.unpack_from(data, off)
    sport, dport = INET_DIAG_MSG_PORTS.unpack_from(data, off + 4)
    size = 4 if family == socket.AF_INET else 16
    src = socket.inet_ntop(family, data[off + 8 : off + 8 + size])
    dst = socket.inet_ntop(family, data[off + 24 : off + 24 + size])
    ifindex, _expires, rqueue, wqueue, uid, inode = INET_DIAG_MSG_TAIL.unpack_from(data, off + 40)
    v6only = None
    attr = off + INET_DIAG_MSG_SIZE
    while attr + 4 <= end:
        length, kind = NLA.unpack_from(data, attr)
        if length < 4:
            break
        if kind == INET_DIAG_SKV6ONLY and length >= 5:
            v6only = bool(data[attr + 4])
        attr += (length + 3) & ~3
    return {
        "netid": netid,
        "family": "inet" if family == socket.AF_INET else "inet6",
        "state": STATE_NAMES.get(state, f"state-{state}"),
        "recv_q": rqueue,
        "send_q": wqueue,
        "local_address": src,
        "local_port": sport,
        "peer_address": dst,
        "peer_port": dport,
        "dev": ifindex or None,  # an index here; named by list_sockets
        "v6only": v6only,
        "uid": uid,
        "inode": inode,
    }


def _dump(sock: NetlinkSocket, family: int, protocol: int, netid: str, states: int):
    """Yield a record per socket of one (family, protocol) dump.

    Through the core socket's receive path: replies matched by sequence number,
    a dump the kernel flags as interrupted or that lost messages (ENOBUFS)
    retried by `dump_with_retry`, then shown with a warning if it never settles.
    """
    body = INET_DIAG_REQ_V2.pack(family, protocol, 0, states, bytes(48))

    def records():
        for _kind, data, start, end in sock.dump(SOCK_DIAG_BY_FAMILY, body, what="sockets"):
            if end - start >= INET_DIAG_MSG_SIZE:
                yield _decode(data, start, end, netid)

    try:
        yield from dump_with_retry(records)
    except DumpInconsistentError:
        raise  # a warning after the rows, not a failure of the dump
    except NetlinkError as exc:
        if exc.errno:
            raise _dump_error(netid, family, exc.errno) from None
        raise


def _dump_error(netid: str, family: int, code: int) -> NetnsShellError:
    what = f"{netid}{'6' if family == socket.AF_INET6 else ''} sockets"
    if code in (errno.EPERM, errno.EACCES):
        return PrivilegeError(f"sockets: {what}: {os.strerror(code)}")
    if code in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL):
        return NetnsShellError(
            f"sockets: {what}: the kernel cannot dump them ({netid}_diag / "
            f"CONFIG_INET_{netid.upper()}_DIAG missing?)"
        )
    return NetnsShellError(f"sockets: {what}: {os.strerror(code)}")


# ------------------------------------------------------------------ processes
def socket_owners() -> dict[int, list[dict[str, Any]]]:
    """socket inode -> [{pid, comm, fd}] for every process's `socket:[INODE]` fds.

    Reads /proc/PID/fd of processes only (threads share it).  A process that
    exits, or whose fds we may not read, is skipped.
    """
    owners: dict[int, list[dict[str, Any]]] = {}
    for entry in os.scandir("/proc"):
        pid = entry.name
        if not pid.isdigit():
            continue
        try:
            directory = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            comm = None
            for fd in os.listdir(directory):
                try:
                    target = os.readlink(fd, dir_fd=directory)
                except OSError:
                    continue
                if not target.startswith("socket:["):
                    continue
                if comm is None:
                    comm = _comm(pid)
                owners.setdefault(int(target[8:-1]), []).append(
                    {"pid": int(pid), "comm": comm, "fd": int(fd)}
                )
        except OSError:
            pass  # the process went away while we read it
        finally:
            os.close(directory)
    return owners


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as fh:
            return fh.read().rstrip(b"\n").decode(errors="replace")
    except OSError:
        return "?"


# ------------------------------------------------------------------ the query
def list_sockets(
    namespace: NetNamespace,
    *,
    protocols: Iterable[str] = ("tcp", "udp"),
    families: Iterable[int] = (socket.AF_INET, socket.AF_INET6),
    listening: bool = False,
    port: int | None = None,
) -> Iterator[Record]:
    """Yield the TCP/UDP sockets of `namespace` as records (see the module doc).

    `listening` keeps LISTEN and UNCONN sockets (ss -l); `port` keeps sockets
    whose local or peer port is `port`.  Reads /proc; changes nothing.
    """
    wanted_protocols = set(protocols)
    wanted_families = set(families)
    states = LISTENING_STATES if listening else ALL_STATES
    owners = socket_owners()  # first, as ss does: a socket made later has no owner yet
    names: dict[int, str] | None = None
    with NetlinkSocket(namespace, NETLINK_SOCK_DIAG, strict=False) as sock:
        for netid, protocol in _PROTOCOLS:
            if netid not in wanted_protocols:
                continue
            for family, _ in _FAMILIES:
                if family not in wanted_families:
                    continue
                for record in _dump(sock, family, protocol, netid, states):
                    if port is not None and port not in (
                        record["local_port"],
                        record["peer_port"],
                    ):
                        continue
                    if record["dev"] is not None:
                        if names is None:
                            names = dict(namespace.run(socket.if_nameindex))
                        record["dev"] = names.get(record["dev"], f"if{record['dev']}")
                    record["processes"] = owners.get(record["inode"], []) if record["inode"] else []
                    yield record


# ------------------------------------------------------------------ the command
def _endpoint(address: str, port: int, dev: str | None, v6only: bool | None) -> str:
    """addr:port as ss prints it: [v6]:port, * for a dual-stack wildcard, %dev."""
    if ":" in address:
        shown = "*" if address == "::" and v6only is False else f"[{address}]"
    else:
        shown = address
    if dev:
        shown = f"{shown}%{dev}"
    return f"{shown}:{port or '*'}"


def _local(r: Record) -> str:
    return _endpoint(r["local_address"], r["local_port"], r["dev"], r["v6only"])


def _peer(r: Record) -> str:
    return _endpoint(r["peer_address"], r["peer_port"], None, r["v6only"])


def _processes(r: Record) -> str:
    return ",".join(f"{p['pid']}/{p['comm']}" for p in r["processes"])


COLUMNS = (
    Column.of("NETID", "netid", safe=True),
    Column.of("STATE", "state", safe=True),
    Column.of("RECV-Q", "recv_q", safe=True, priority=2),
    Column.of("SEND-Q", "send_q", safe=True, priority=2),
    # dev is an interface name: it can hold control characters, so no safe=True
    Column("LOCAL", _local, reads=("local_address", "local_port", "dev", "v6only")),
    Column("PEER", _peer, safe=True, reads=("peer_address", "peer_port", "v6only")),
    # process names are chosen by whoever runs the process: sanitized
    Column("PROCESS", _processes, reads=("processes",)),
)


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise UsageError(f"port must be 1-65535, got '{text}'")
    return value


def register(registry: Registry) -> None:
    @registry.view(
        "sockets",
        "TCP and UDP sockets with their processes (like ss -tunap)",
        Param("tcp", ("-t",), help="TCP sockets (with -u: both; neither: both)"),
        Param("udp", ("-u",), help="UDP sockets"),
        Param("listening", ("-l",), help="listening sockets only (TCP LISTEN, UDP UNCONN)"),
        Param("all", ("-a",), help="all states (the default; accepted for ss habits)"),
        Param("inet", ("-4",), help="IPv4 sockets (with -6: both; neither: both)"),
        Param("inet6", ("-6",), help="IPv6 sockets"),
        Param("port", ("port",), metavar="PORT", convert=_port, help="local or peer port"),
        columns=COLUMNS,
        details="Sockets of the current namespace from the kernel's sock_diag (what ss uses), "
        "every state by default (like ss -tuna). PROCESS is pid/comm of each process holding "
        "the socket (from /proc/PID/fd, like ss -p); TIME-WAIT and kernel sockets (vxlan) have "
        "none. Addresses as ss prints them: [v6]:port, * for a dual-stack wildcard. --json "
        "keys: netid, family, state, recv_q, send_q, local_address, local_port, peer_address, "
        "peer_port, dev, v6only, uid, inode, processes [{pid, comm, fd}].",
        examples=(
            "sockets",
            "sockets -t -l",
            "sockets -u -4",
            "sockets port 443",
        ),
    )
    def sockets(namespace: NetNamespace, args: dict[str, Any]) -> Iterator[Record]:
        """Records of the namespace's TCP/UDP sockets, as the module doc describes."""
        protocols = [name for name in ("tcp", "udp") if args[name]] or ("tcp", "udp")
        families = [f for f, name in _FAMILIES if args[name]] or [f for f, _ in _FAMILIES]
        return list_sockets(
            namespace,
            protocols=protocols,
            families=families,
            listening=bool(args["listening"]),
            port=args["port"],
        )
