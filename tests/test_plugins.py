"""The shipped plugins `sockets` and `ipvs`, on real namespaces, against real oracles.

sockets: real listeners and connections made inside a namespace of the test's
own, compared field by field with `ss -tunap` run in the same namespace.
ipvs: services made inside a fresh namespace with pyroute2, compared with what
was made and with the kernel's own /proc/net/ip_vs; and the "no IPVS" answer.
Every process, namespace and IPVS service a test makes is removed afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

import pytest

from netns_shell.commands.registry import Registry
from netns_shell.extensions import PluginLoader
from tests.conftest import ROOT, netns_shell, unique

PROCESS_NAME = "nst-sockets"
CHILD_NAME = "nst-sockets-c"
IPVS_LOADED = os.path.exists("/proc/net/ip_vs")


def _plugin(name: str) -> ModuleType:
    """The checkout's plugins/NAME.py, imported by path (as the shell does)."""
    spec = importlib.util.spec_from_file_location(
        f"nst_plugin_{name}", ROOT / "plugins" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_line(proc: subprocess.Popen, timeout: float = 20) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"process {proc.pid} said nothing in {timeout} s")
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"process {proc.pid} exited: {proc.wait()}")
    return line.strip()


def _stop(proc: subprocess.Popen) -> None:
    """Kill the process group the test started (the server and its forked child)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


# ---------------------------------------------------------------- sockets
# A server made inside the namespace: every kind of socket `ss -tunap` shows.
_SERVER = r"""
import ctypes, os, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, sys.argv[1].encode(), 0, 0, 0)               # PR_SET_NAME: our comm
T, U = socket.SOCK_STREAM, socket.SOCK_DGRAM
v4 = socket.socket(socket.AF_INET, T)
v4.bind(("127.0.0.1", 8080)); v4.listen(5)                   # LISTEN, shared with a child
v6 = socket.socket(socket.AF_INET6, T)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v6.bind(("::1", 8443)); v6.listen(7)                         # LISTEN [::1]:8443, v6only
dual = socket.socket(socket.AF_INET6, T)
dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
dual.bind(("::", 9000)); dual.listen(3)                      # LISTEN *:9000 (dual-stack)
udp = socket.socket(socket.AF_INET, U); udp.bind(("0.0.0.0", 5353))   # UNCONN
udp6 = socket.socket(socket.AF_INET6, U); udp6.bind(("::1", 5354))    # UNCONN [::1]
bound = socket.socket(socket.AF_INET, U)
bound.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
bound.bind(("127.0.0.1", 5356))                              # UNCONN 127.0.0.1%lo
sender = socket.socket(socket.AF_INET, U); sender.bind(("127.0.0.1", 5355))
sender.connect(("127.0.0.1", 5353)); sender.send(b"x" * 100)  # ESTAB udp; udp's Recv-Q > 0
client = socket.create_connection(("127.0.0.1", 8080))
server, _ = v4.accept()
client.sendall(b"y" * 1000)                                  # ESTAB with Recv-Q 1000
waiting = socket.create_connection(("127.0.0.1", 8080))      # never accepted: LISTEN Recv-Q 1
closer = socket.create_connection(("::1", 8443))
peer, _ = v6.accept()
closer.close(); time.sleep(0.2); peer.close()                # closer ends in TIME-WAIT
ready_r, ready_w = os.pipe()
child = os.fork()
if child == 0:
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)                   # PR_SET_PDEATHSIG
    libc.prctl(15, sys.argv[2].encode(), 0, 0, 0)
    for keep in (udp6, udp, bound, dual, sender, client, server, waiting): keep.close()
    os.close(ready_r); os.close(ready_w)                      # named, sockets closed: ready
    time.sleep(3600); os._exit(0)
os.close(ready_w)
os.read(ready_r, 1); os.close(ready_r)                       # EOF once the child is ready
print(child, flush=True)
time.sleep(3600)
"""


@dataclass
class SocketLab:
    """A namespace with the server above running in it."""

    name: str
    pid: int
    child: int


@pytest.fixture(scope="module")
def socket_lab() -> Iterator[SocketLab]:
    name = unique("nst-sk")
    subprocess.run(["ip", "netns", "add", name], check=True)
    proc = None
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-c", _SERVER, PROCESS_NAME, CHILD_NAME],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: the child dies with it
        )
        child = int(_read_line(proc))
        yield SocketLab(name, proc.pid, child)  # `ip netns exec` execs: same pid
    finally:
        if proc is not None:
            _stop(proc)
        subprocess.run(["ip", "netns", "del", name], check=False)


def _endpoint(address: str, port: int, v6only: bool | None, dev: str | None = None) -> str:
    """addr:port the way ss 6.x prints it (written here independently of the plugin)."""
    if ":" in address:
        address = "*" if address == "::" and not v6only else f"[{address}]"
    if dev:
        address = f"{address}%{dev}"
    return f"{address}:{port if port else '*'}"


Row = tuple[str, str, int, int, str, str, tuple[tuple[str, int, int], ...]]


def _as_rows(records: list[dict]) -> set[Row]:
    rows = set()
    for r in records:
        owners = tuple(sorted((p["comm"], p["pid"], p["fd"]) for p in r["processes"]))
        local = _endpoint(r["local_address"], r["local_port"], r["v6only"], r["dev"])
        peer = _endpoint(r["peer_address"], r["peer_port"], r["v6only"])
        rows.add((r["netid"], r["state"], r["recv_q"], r["send_q"], local, peer, owners))
    return rows


_USER = re.compile(r'\("([^"]*)",pid=(\d+),fd=(\d+)\)')


def _ss_rows(namespace: str | None, *options: str) -> set[Row]:
    """`ss -H -n -p OPTIONS` in the namespace (the oracle), parsed."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    text = subprocess.check_output([*prefix, "ss", "-H", "-n", "-p", *options], text=True)
    protocols = [n for n, flag in (("tcp", "-t"), ("udp", "-u")) if flag in options]
    rows = set()
    for line in text.splitlines():
        if len(protocols) == 1:  # ss leaves the Netid column out then
            line = f"{protocols[0]} {line}"
        fields = line.split(None, 6)
        netid, state, recv_q, send_q, local, peer = fields[:6]
        users = fields[6] if len(fields) > 6 else ""
        owners = tuple(sorted((c, int(p), int(f)) for c, p, f in _USER.findall(users)))
        rows.add((netid, state, int(recv_q), int(send_q), local, peer, owners))
    return rows


def _sockets(namespace: str | None, *words: str) -> list[dict]:
    target = [namespace] if namespace else []
    run = netns_shell(*target, "--json", "-c", " ".join(["sockets", *words]))
    assert run.status == 0, run.stderr
    return run.json


def test_sockets_match_ss_field_by_field(socket_lab):
    records = _sockets(socket_lab.name)
    rows = _as_rows(records)
    assert rows == _ss_rows(socket_lab.name, "-t", "-u", "-a")
    # and they are the sockets the server made, not just anything ss agrees on
    by_local = {(r["netid"], r["state"], r["local_port"]): r for r in records}
    shared = by_local["tcp", "LISTEN", 8080]
    assert shared["local_address"] == "127.0.0.1" and shared["recv_q"] == 1
    assert shared["send_q"] == 5
    assert sorted((p["pid"], p["comm"]) for p in shared["processes"]) == sorted(
        [(socket_lab.pid, PROCESS_NAME), (socket_lab.child, CHILD_NAME)]
    )
    v6 = by_local["tcp", "LISTEN", 8443]
    assert (v6["family"], v6["local_address"], v6["v6only"], v6["send_q"]) == (
        "inet6",
        "::1",
        True,
        7,
    )
    dual = by_local["tcp", "LISTEN", 9000]
    assert (dual["local_address"], dual["v6only"]) == ("::", False)
    unread = next(r for r in records if r["state"] == "ESTAB" and r["recv_q"] == 1000)
    assert unread["netid"] == "tcp" and unread["local_port"] == 8080
    assert [p["pid"] for p in unread["processes"]] == [socket_lab.pid]
    udp = by_local["udp", "UNCONN", 5353]
    assert udp["recv_q"] > 0 and udp["peer_port"] == 0
    assert by_local["udp", "ESTAB", 5355]["peer_port"] == 5353
    assert by_local["udp", "UNCONN", 5356]["dev"] == "lo"
    wait = [r for r in records if r["state"] == "TIME-WAIT"]
    assert len(wait) == 1 and wait[0]["peer_port"] == 8443
    assert wait[0]["inode"] == 0 and wait[0]["processes"] == []


@pytest.mark.parametrize(
    ("words", "ss_options", "check"),
    [
        (["-t"], ["-t", "-a"], lambda r: r["netid"] == "tcp"),
        (["-u"], ["-u", "-a"], lambda r: r["netid"] == "udp"),
        (["-t", "-u"], ["-t", "-u", "-a"], lambda r: True),
        (["-l"], ["-t", "-u", "-l"], lambda r: r["state"] in ("LISTEN", "UNCONN")),
        (["-4"], ["-4", "-t", "-u", "-a"], lambda r: r["family"] == "inet"),
        (["-6"], ["-6", "-t", "-u", "-a"], lambda r: r["family"] == "inet6"),
        (["-t", "-l", "-6"], ["-6", "-t", "-l"], lambda r: r["local_port"] in (8443, 9000)),
        (["-a", "port", "8080"], ["-t", "-u", "-a", "( sport = :8080 or dport = :8080 )"], None),
    ],
    ids=["-t", "-u", "-t -u", "-l", "-4", "-6", "-t -l -6", "port"],
)
def test_sockets_filters_match_ss(socket_lab, words, ss_options, check):
    records = _sockets(socket_lab.name, *words)
    assert records, "the lab has sockets of every filtered kind"
    assert _as_rows(records) == _ss_rows(socket_lab.name, *ss_options)
    if check is not None:
        assert all(check(r) for r in records)


def test_sockets_of_another_namespace_do_not_appear(socket_lab):
    # a listener of the host namespace (this test process) on a port of its own
    host = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        host.bind(("127.0.0.1", 0))
        host.listen(1)
        port = host.getsockname()[1]
        assert not [
            r for r in _sockets(socket_lab.name) if port in (r["local_port"], r["peer_port"])
        ]
        # ...while the host's own view shows it, owned by this process
        mine = _sockets(None, "-t", "-l", "port", str(port))
        with open("/proc/self/comm", encoding="utf-8") as fh:
            comm = fh.read().strip()
        assert [(r["local_address"], r["state"]) for r in mine] == [("127.0.0.1", "LISTEN")]
        assert {"pid": os.getpid(), "comm": comm, "fd": host.fileno()} in mine[0]["processes"]
        # and none of the namespace's sockets is in the host's view (inodes are unique)
        theirs = {r["inode"] for r in _sockets(socket_lab.name) if r["inode"]}
        assert len(theirs) >= 7
        assert not theirs & {r["inode"] for r in _sockets(None)}
    finally:
        host.close()


def test_sockets_table_looks_like_ss(socket_lab):
    run = netns_shell(socket_lab.name, "-c", "sockets -t -l")
    assert run.status == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["NETID", "STATE", "RECV-Q", "SEND-Q", "LOCAL", "PEER", "PROCESS"]
    rows = {line.split()[4]: line.split() for line in lines[1:]}
    assert rows["127.0.0.1:8080"][:4] == ["tcp", "LISTEN", "1", "5"]
    assert rows["127.0.0.1:8080"][5] == "0.0.0.0:*"
    owners = set(rows["127.0.0.1:8080"][6].split(","))
    assert owners == {f"{socket_lab.pid}/{PROCESS_NAME}", f"{socket_lab.child}/{CHILD_NAME}"}
    assert rows["[::1]:8443"][5] == "[::]:*" and rows["*:9000"][5] == "*:*"


def test_sockets_rejects_a_bad_port(socket_lab):
    run = netns_shell(socket_lab.name, "-c", "sockets port 70000")
    assert run.status == 2 and "port must be 1-65535" in run.stderr


# The owner scan reads every process's fds: it must stay fast with thousands.
_HOLDER = r"""
import socket, sys, time
pairs = [socket.socketpair() for _ in range(int(sys.argv[1]))]
print("ready", flush=True)
time.sleep(3600)
"""


def test_process_scan_finds_thousands_of_sockets_quickly():
    sockets = _plugin("sockets")
    pairs = 2000
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(pairs)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert _read_line(proc) == "ready"
        fds = os.listdir(f"/proc/{proc.pid}/fd")
        expected = {
            int(os.readlink(f"/proc/{proc.pid}/fd/{fd}")[8:-1])
            for fd in fds
            if os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith("socket:[")
        }
        assert len(expected) == 2 * pairs
        started = time.process_time()  # CPU time: other processes on a busy machine do not count
        owners = sockets.socket_owners()
        elapsed = time.process_time() - started
        found = {inode for inode, who in owners.items() if any(p["pid"] == proc.pid for p in who)}
        assert found == expected
        assert elapsed < 1.0, f"scanning /proc took {elapsed:.2f} s"
    finally:
        _stop(proc)


# ---------------------------------------------------------------- ipvs
def _ipvs_run(namespace: str):
    return netns_shell(namespace, "--json", "-c", "ipvs")


@pytest.mark.skipif(IPVS_LOADED, reason="the ip_vs module is loaded here")
def test_ipvs_without_ip_vs_is_one_clear_line(netns):
    assert subprocess.run(
        ["ip", "netns", "exec", netns, "test", "-e", "/proc/net/ip_vs"]
    ).returncode
    run = _ipvs_run(netns)
    assert run.status == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert "no IPVS here" in run.stderr and "ip_vs module is not loaded" in run.stderr
    # asking must not have loaded the module (the command changes nothing)
    assert not os.path.exists("/proc/net/ip_vs")


@pytest.mark.skipif(not IPVS_LOADED, reason="needs the ip_vs kernel module (modprobe ip_vs)")
def test_ipvs_in_a_namespace_without_services_is_an_empty_table(netns):
    run = _ipvs_run(netns)
    assert run.status == 0, run.stderr
    assert run.json == []


_MAKE_SERVICES = r"""
from socket import AF_INET, IPPROTO_TCP, IPPROTO_UDP
from pyroute2 import IPVS, IPVSDest, IPVSService
ipvs = IPVS()
web = IPVSService(addr="10.10.0.1", port=80, protocol=IPPROTO_TCP, sched_name="rr")
ipvs.service("add", service=web)
for addr, weight in (("10.10.1.1", 1), ("10.10.1.2", 2)):
    ipvs.dest("add", service=web, dest=IPVSDest(addr=addr, port=8080, weight=weight, fwd_method=0))
mark = IPVSService(fwmark=257, af=AF_INET, sched_name="rr", netmask="255.255.255.255")
ipvs.service("add", service=mark)
ipvs.dest("add", service=mark, dest=IPVSDest(addr="10.10.2.1", port=0, weight=1, fwd_method=0))
dns = IPVSService(addr="10.10.0.2", port=53, protocol=IPPROTO_UDP, sched_name="rr")
ipvs.service("add", service=dns)
ipvs.close()
"""

_FORWARD = {"Masq": "masq", "Local": "local", "Tunnel": "tunnel", "Route": "route"}


def _hex_endpoint(text: str) -> str:
    address, port = text.split(":")
    return f"{socket.inet_ntoa(bytes.fromhex(address))}:{int(port, 16)}"


def _proc_ipvs(namespace: str) -> set[tuple]:
    """The kernel's own view (/proc/net/ip_vs, IPv4 only) as (service, sched, server, ...)."""
    text = subprocess.check_output(
        ["ip", "netns", "exec", namespace, "cat", "/proc/net/ip_vs"], text=True
    )
    rows, service, scheduler, has_servers = set(), None, None, True
    for line in text.splitlines()[3:]:
        fields = line.split()
        if fields[0] == "->":
            _, server, forward, weight, active, inactive = fields
            server = _hex_endpoint(server)
            counts = (int(weight), int(active), int(inactive))
            rows.add((service, scheduler, server, _FORWARD[forward], *counts))
            has_servers = True
            continue
        if not has_servers:
            rows.add((service, scheduler, None, None, None, None, None))
        kind, where, scheduler = fields[:3]
        if kind == "FWM":
            service = f"FWM {int(where, 16)}"
        else:
            service = f"{kind} {_hex_endpoint(where)}"
        has_servers = False
    if not has_servers:
        rows.add((service, scheduler, None, None, None, None, None))
    return rows


@pytest.mark.skipif(not IPVS_LOADED, reason="needs the ip_vs kernel module (modprobe ip_vs)")
def test_ipvs_shows_exactly_the_services_made_in_the_namespace(netns):
    # the services live in the namespace: removing it (the fixture) removes them
    subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _MAKE_SERVICES], check=True)
    run = _ipvs_run(netns)
    assert run.status == 0, run.stderr
    got = [
        (
            r["service"],
            r["scheduler"],
            None if r["server_address"] is None else f"{r['server_address']}:{r['server_port']}",
            r["forward"],
            r["weight"],
            r["active_conns"],
            r["inactive_conns"],
        )
        for r in run.json
    ]
    assert got == [
        ("TCP 10.10.0.1:80", "rr", "10.10.1.1:8080", "masq", 1, 0, 0),
        ("TCP 10.10.0.1:80", "rr", "10.10.1.2:8080", "masq", 2, 0, 0),
        ("UDP 10.10.0.2:53", "rr", None, None, None, None, None),
        ("FWM 257", "rr", "10.10.2.1:0", "masq", 1, 0, 0),
    ]
    assert set(got) == _proc_ipvs(netns)
    fwmark = run.json[-1]
    assert (fwmark["fwmark"], fwmark["protocol"], fwmark["service_address"]) == (257, None, None)
    # and nothing of it is visible from another namespace
    host = netns_shell("--json", "-c", "ipvs")
    assert host.status == 0 and not [r for r in host.json if r["service"].startswith("TCP 10.10.")]


def _message(attrs: list) -> object:
    """A reply as the kernel sends it: encoded, then decoded by pyroute2."""
    from pyroute2.netlink.generic import ipvs

    msg = ipvs.ipvsmsg()
    msg["cmd"], msg["version"], msg["attrs"] = ipvs.IPVS_CMD_NEW_SERVICE, 1, attrs
    msg.encode()
    decoded = ipvs.ipvsmsg(msg.data)
    decoded.decode()
    return decoded


def test_ipvs_records_from_kernel_shaped_messages():
    """The message -> record step, on replies encoded as the kernel encodes them."""
    ipvs = _plugin("ipvs")

    def service(*extra):
        base = [("IPVS_SVC_ATTR_SCHED_NAME", "wlc"), ("IPVS_SVC_ATTR_TIMEOUT", 300)]
        return _message([("IPVS_CMD_ATTR_SERVICE", {"attrs": [*extra, *base]})])

    def dest(addr, family, port, method, weight, active):
        stats = {"attrs": [("IPVS_STATS_ATTR_CONNS", 9), ("IPVS_STATS_ATTR_INBYTES", 1234)]}
        attrs = [
            ("IPVS_DEST_ATTR_ADDR", addr),
            ("IPVS_DEST_ATTR_PORT", port),
            ("IPVS_DEST_ATTR_FWD_METHOD", method),
            ("IPVS_DEST_ATTR_WEIGHT", weight),
            ("IPVS_DEST_ATTR_ACTIVE_CONNS", active),
            ("IPVS_DEST_ATTR_INACT_CONNS", 1),
            ("IPVS_DEST_ATTR_PERSIST_CONNS", 0),
            ("IPVS_DEST_ATTR_STATS64", stats),
            ("IPVS_DEST_ATTR_ADDR_FAMILY", family),
        ]
        return _message([("IPVS_CMD_ATTR_DEST", {"attrs": attrs})])

    flags = ("IPVS_SVC_ATTR_FLAGS", {"flags": 0x3, "mask": 0xFFFFFFFF})  # persistent|hashed
    v6 = service(
        ("IPVS_SVC_ATTR_AF", socket.AF_INET6),
        ("IPVS_SVC_ATTR_PROTOCOL", socket.IPPROTO_TCP),
        ("IPVS_SVC_ATTR_ADDR", "fd00::80"),
        ("IPVS_SVC_ATTR_PORT", 443),
        flags,
    )
    mark = service(
        ("IPVS_SVC_ATTR_AF", socket.AF_INET),
        ("IPVS_SVC_ATTR_PROTOCOL", socket.IPPROTO_TCP),
        ("IPVS_SVC_ATTR_ADDR", "0.0.0.0"),
        ("IPVS_SVC_ATTR_PORT", 0),
        ("IPVS_SVC_ATTR_FWMARK", 261),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": 0x2, "mask": 0xFFFFFFFF}),
    )
    tables = [
        (
            ipvs.service_of(mark),
            [
                ipvs.server_of(dest("10.0.1.9", socket.AF_INET, 0, 0, 1, 0)),
                ipvs.server_of(dest("10.0.1.3", socket.AF_INET, 0, 2, 1, 5)),
            ],
        ),
        (ipvs.service_of(v6), [ipvs.server_of(dest("fd00::2", socket.AF_INET6, 8443, 3, 0, 0))]),
    ]
    records = ipvs.records_of(tables)
    summary = [
        (r["service"], r["server_address"], r["forward"], r["weight"], r["active_conns"])
        for r in records
    ]
    assert summary == [
        ("TCP [fd00::80]:443", "fd00::2", "route", 0, 0),
        ("FWM 261", "10.0.1.3", "tunnel", 1, 5),
        ("FWM 261", "10.0.1.9", "masq", 1, 0),
    ]
    first, second = records[0], records[1]
    assert (first["family"], first["protocol"], first["service_port"]) == ("inet6", "tcp", 443)
    assert (first["flags"], first["persistence"], first["server_port"]) == (
        ["persistent"],
        300,
        8443,
    )
    assert (second["fwmark"], second["protocol"], second["service_address"]) == (261, None, None)
    assert second["persistence"] is None and second["flags"] == []
    assert second["stats"] == {
        "conns": 9,
        "inpkts": None,
        "outpkts": None,
        "inbytes": 1234,
        "outbytes": None,
    }
    assert not [k for r in records for k in r if k.startswith("_")]


# ---------------------------------------------------------------- both, as plugins
def test_plugins_load_as_plugins_and_show_in_help():
    registry = Registry()
    warnings: list[str] = []
    PluginLoader(warnings.append)(registry)
    assert warnings == []
    for name in ("sockets", "ipvs"):
        command = registry.get(name)
        assert command is not None and command.source == f"plugin {name}"
        assert not command.changes_state
        assert all(p.help for p in command.params)
    listing = netns_shell("-c", "help")
    assert listing.status == 0, listing.stderr
    names = {line.split()[0] for line in listing.stdout.splitlines() if line.startswith("  ")}
    assert {"sockets", "ipvs"} <= names
    usage = netns_shell("-c", "help sockets")
    assert usage.stdout.startswith("usage: sockets [-t] [-u] [-l] [-a] [-4] [-6] [port PORT]\n")
    assert netns_shell("-c", "help ipvs").stdout.startswith("usage: ipvs\n")


def test_no_plugins_removes_them():
    listing = netns_shell("--no-plugins", "-c", "help")
    assert listing.status == 0, listing.stderr
    names = {line.split()[0] for line in listing.stdout.splitlines() if line.startswith("  ")}
    assert "links" in names and not {"sockets", "ipvs"} & names
    for command in ("sockets", "ipvs"):
        run = netns_shell("--no-plugins", "-c", command)
        assert run.status == 2 and f"unknown command '{command}'" in run.stderr


def test_read_only_still_allows_them(socket_lab):
    run = netns_shell(socket_lab.name, "--read-only", "--json", "-c", "sockets -l")
    assert run.status == 0, run.stderr
    assert {r["local_port"] for r in run.json} >= {8080, 8443, 9000, 5353, 5354, 5356}
    ipvs = netns_shell(socket_lab.name, "--read-only", "-c", "ipvs")
    assert "read-only" not in ipvs.stderr
    assert ipvs.status == (0 if IPVS_LOADED else 1)


def test_help_names_the_plugin_each_command_comes_from():
    assert "from: plugin sockets" in netns_shell("-c", "help sockets").stdout
    lines = netns_shell("-c", "help").stdout.splitlines()
    assert any(line.strip().startswith("ipvs") and "[plugin ipvs]" in line for line in lines)
