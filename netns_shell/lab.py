"""A throwaway Docker-overlay-shaped lab of namespaces (for --demo and the tests).

    underlay ns ("host" of the overlay): ul0 192.0.2.1/24, the vxlan UDP socket
    overlay ns: br0 10.0.9.1/24 + fd00:9::1/64, vxlan0 (VNI, dstport 4789, created in
                the underlay and moved in, as Docker does), veth0..N-1 -> containers,
                FDB entries MAC -> remote VTEP and permanent neighbours for remote
                containers, a route in table 100
    container ns c1..cN: eth0 10.0.9.(1+i)/24, fd00:9::(1+i)/64, default route via br0

With `inconsistent=True` it also plants what `overlay` must flag: a neighbour
whose MAC has no FDB entry, an FDB entry with no neighbour, a MAC behind two
ports (a local container's MAC also pointed at a remote VTEP), and a VTEP the
underlay has no route to.

Everything is built with iproute2 under names unique to the run
(`<prefix>-<pid>-<random>-<role>`) and removed by `destroy()`, which also
runs on exit from the context manager, after Ctrl-C or an exception.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .errors import NetnsShellError
from .files import PrivateDir, UnsafePathError

__all__ = [
    "Lab",
    "LabContainer",
    "RemoteEndpoint",
    "demo_session",
    "remove_orphaned",
    "remove_stale_labs",
    "settle_ipv6",
    "wait_settled",
]

NETNS_DIR = "/var/run/netns"
#: where each lab keeps the lock file that says its owner is alive
LABS_DIR = "/run/netns-shell/labs"
SUBNET = "10.0.9"
SUBNET6 = "fd00:9"
UNDERLAY = "192.0.2"


@dataclass(frozen=True)
class LabContainer:
    """A container namespace of the lab and what the overlay knows about it."""

    role: str
    ip: str
    ip6: str
    mac: str
    bridge_port: str  # the veth in the overlay namespace


@dataclass(frozen=True)
class RemoteEndpoint:
    """A container on another node, known through the vxlan FDB and neighbours."""

    ip: str
    mac: str
    vtep: str


@dataclass
class Lab:
    """Build with `build()` (or `with Lab() as lab:`), remove with `destroy()`."""

    prefix: str = "nslab"
    containers: int = 3
    inconsistent: bool = False
    vni: int = 4097
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    built: list[str] = field(default_factory=list)
    _lock: _LabLock | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base = f"{self.prefix}-{os.getpid()}-{self.token}"
        self.members = [
            LabContainer(
                role=f"c{i}",
                ip=f"{SUBNET}.{i + 1}",
                ip6=f"{SUBNET6}::{i + 1}",
                mac=f"02:42:0a:00:09:{i + 1:02x}",
                bridge_port=f"veth{i - 1}",
            )
            for i in range(1, self.containers + 1)
        ]
        self.remotes = [
            RemoteEndpoint(ip=f"{SUBNET}.10", mac="02:42:0a:00:09:0a", vtep=f"{UNDERLAY}.11"),
            RemoteEndpoint(ip=f"{SUBNET}.11", mac="02:42:0a:00:09:0b", vtep=f"{UNDERLAY}.12"),
        ]
        # planted inconsistencies (only with inconsistent=True)
        self.orphan_neighbour = RemoteEndpoint(f"{SUBNET}.20", "02:42:0a:00:09:14", "")
        self.orphan_fdb = RemoteEndpoint("", "02:42:0a:00:09:15", f"{UNDERLAY}.13")
        self.unrouted = RemoteEndpoint(f"{SUBNET}.22", "02:42:0a:00:09:16", "198.51.100.7")
        self.duplicate = (
            RemoteEndpoint(self.members[1].ip, self.members[1].mac, f"{UNDERLAY}.14")
            if len(self.members) > 1
            else None
        )
        self.gateway_ip = f"{SUBNET}.1"

    # ----------------------------------------------------------- naming
    def name(self, role: str) -> str:
        return f"{self.base}-{role}"

    def path(self, role: str) -> str:
        return os.path.join(NETNS_DIR, self.name(role))

    @property
    def overlay(self) -> str:
        return self.name("ovl")

    @property
    def underlay(self) -> str:
        return self.name("ul")

    @property
    def entry_path(self) -> str:
        return self.path("ovl")

    @property
    def roles(self) -> list[str]:
        return ["ul", "ovl", *(c.role for c in self.members)]

    # ---------------------------------------------------------- building
    def build(self) -> Lab:
        if shutil.which("ip") is None or shutil.which("bridge") is None:
            raise NetnsShellError(
                "the lab needs iproute2 ('ip' and 'bridge'): apt-get install iproute2"
            )
        self._lock = _LabLock.take(self.base)
        try:
            for role in self.roles:
                _run(["ip", "netns", "add", self.name(role)])
                self.built.append(self.name(role))
                settle_ipv6(self.path(role))
            self._build_underlay()
            self._build_overlay()
            for member in self.members:
                self._build_container(member)
            self._fill_tables()
            wait_settled([self.path(role) for role in self.roles])
        except BaseException:
            self.destroy()
            raise
        return self

    def _ip(self, role: str, commands: list[str]) -> None:
        _run(["ip", "-n", self.name(role), "-batch", "-"], "\n".join(commands) + "\n")

    def _bridge(self, role: str, commands: list[str]) -> None:
        _run(["bridge", "-n", self.name(role), "-batch", "-"], "\n".join(commands) + "\n")

    def _build_underlay(self) -> None:
        self._ip(
            "ul",
            [
                "link set lo up",
                "link add ul0 type bridge",  # stands in for the node's NIC (no dummy module needed)
                f"addr add {UNDERLAY}.1/24 dev ul0",
                "link set ul0 up",
                f"link add vxlan0 type vxlan id {self.vni} dstport 4789 local {UNDERLAY}.1 "
                "nolearning proxy l2miss l3miss",
                f"link set vxlan0 netns {self.overlay}",
            ],
        )

    def _build_overlay(self) -> None:
        commands = [
            "link set lo up",
            "link add br0 type bridge",
            "link set br0 mtu 1450",
            f"addr add {self.gateway_ip}/24 dev br0",
            f"addr add {SUBNET6}::1/64 dev br0 nodad",
            "link set vxlan0 mtu 1450 master br0 up",
        ]
        for member in self.members:
            commands += [
                f"link add {member.bridge_port} mtu 1450 type veth peer name eth0 "
                f"netns {self.name(member.role)}",
                f"link set {member.bridge_port} master br0 up",
            ]
        commands += ["link set br0 up"]
        self._ip("ovl", commands)

    def _build_container(self, member: LabContainer) -> None:
        self._ip(
            member.role,
            [
                "link set lo up",
                f"link set eth0 address {member.mac}",
                f"addr add {member.ip}/24 dev eth0",
                f"addr add {member.ip6}/64 dev eth0 nodad",
                "link set eth0 up",
                f"route add default via {self.gateway_ip}",
            ],
        )

    def _fill_tables(self) -> None:
        neighbours = [
            f"neigh add {r.ip} lladdr {r.mac} dev vxlan0 nud permanent" for r in self.remotes
        ]
        neighbours += [
            f"neigh add {m.ip} lladdr {m.mac} dev br0 nud permanent" for m in self.members
        ]
        neighbours += [
            f"neigh add {SUBNET6}::10 lladdr {self.remotes[0].mac} dev vxlan0 nud permanent",
            f"route add 172.31.0.0/16 via {self.members[0].ip} table 100",
            "route add blackhole 172.30.0.0/16 table 100",
            f"route add {SUBNET6}:ff::/64 via {self.members[0].ip6} dev br0",
        ]
        fdb = [f"fdb add {r.mac} dev vxlan0 dst {r.vtep} self permanent" for r in self.remotes]
        # local containers: static on their port ('replace': the kernel may have learned them)
        fdb += [f"fdb replace {m.mac} dev {m.bridge_port} master static" for m in self.members]
        if self.inconsistent:
            neighbours += [
                f"neigh add {self.orphan_neighbour.ip} lladdr {self.orphan_neighbour.mac} "
                "dev vxlan0 nud permanent",
                f"neigh add {self.unrouted.ip} lladdr {self.unrouted.mac} dev vxlan0 nud permanent",
            ]
            fdb += [
                f"fdb add {self.orphan_fdb.mac} dev vxlan0 dst {self.orphan_fdb.vtep} "
                "self permanent",
                f"fdb add {self.unrouted.mac} dev vxlan0 dst {self.unrouted.vtep} self permanent",
                # a local container's MAC also sent to a remote VTEP: one MAC behind two ports
                f"fdb add {self.duplicate.mac} dev vxlan0 dst {self.duplicate.vtep} self permanent",
            ]
        self._ip("ovl", neighbours)
        self._bridge("ovl", fdb)
        first = self.members[0]
        others = [
            f"neigh add {m.ip} lladdr {m.mac} dev eth0 nud permanent" for m in self.members[1:]
        ]
        if others:
            self._ip(first.role, others)

    # ---------------------------------------------------------- removing
    def destroy(self) -> None:
        """Remove every namespace this lab created (idempotent, never raises)."""
        for name in reversed(self.built):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.built.clear()
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __enter__(self) -> Lab:
        return self.build() if not self.built else self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def wait_settled(paths: list[str], *, carriers: bool = True, timeout: float = 30.0) -> None:
    """Wait until carriers are up and no address is tentative in these namespaces.

    Links get their carrier, and IPv6 link-local addresses their local routes,
    a moment after `ip` returns; waiting makes a lab a fixed picture, so two
    reads of a table agree.  `carriers=False` waits for addresses only (for
    namespaces with links that will never get a carrier, like a bridge
    without ports).  A moment is usually milliseconds, but seconds on a
    loaded machine: raises NetnsShellError, naming the link, if `timeout`
    seconds pass first (a lab still changing would make every later read a race).
    """
    import time

    from .namespace import NetNamespace
    from .netlink.links import list_links

    deadline = time.monotonic() + timeout
    for path in paths:
        with NetNamespace.open_path(path) as ns:
            while unsettled := _unsettled(list_links(ns), carriers):
                if time.monotonic() > deadline:
                    raise NetnsShellError(
                        f"lab: {unsettled} in {path} did not settle within {timeout:g} s"
                    )
                time.sleep(0.05)


def _unsettled(links, carriers: bool) -> str:
    """What is not settled yet ('LINK: why'), or '' when nothing."""
    links = list(links)
    with_up_ports = {link.get("master") for link in links if "UP" in link["flags"]}
    for link in links:
        name = link["ifname"]
        down = link.get("operstate") in ("DOWN", "LOWERLAYERDOWN")
        if carriers and "UP" in link["flags"] and down:
            return f"{name}: no carrier"
        # a bridge turns UP a moment after its first port forwards
        if carriers and name in with_up_ports and link.get("operstate") != "UP":
            return f"{name}: a bridge with a port up is {link.get('operstate')}"
        if any(a.get("tentative") for a in link.get("addr_info", ())):
            return f"{name}: tentative address"
    return ""


def settle_ipv6(path: str) -> None:
    """Turn off IPv6 duplicate address detection in a fresh namespace.

    Without it, link-local addresses (and their local routes) appear a second
    or so after a link comes up, so two reads of the tables made moments apart
    could differ; with it, the lab is complete when build() returns.
    """
    from .namespace import NetNamespace

    def write() -> None:
        for conf in ("all", "default"):
            for knob in ("accept_dad", "dad_transmits"):
                with open(f"/proc/sys/net/ipv6/conf/{conf}/{knob}", "w") as fh:
                    fh.write("0")

    with NetNamespace.open_path(path) as ns:
        try:
            ns.run(write)
        except OSError:
            pass  # no IPv6 in this kernel: nothing to settle


def _run(argv: list[str], stdin: str | None = None) -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise NetnsShellError(f"lab: {' '.join(argv[:4])}: {detail[-1] if detail else 'failed'}")


class _LabLock:
    """Proof that a lab's owner is alive: a lock file it holds (flock) while the lab exists.

    A lab whose lock file can be locked by someone else was left behind by a
    process that died (kill -9, a crash); a PID test could not tell, since PIDs
    are reused and differ between PID namespaces.  The files live in a root-only
    directory (LABS_DIR, 0700) and are never followed through a symlink.
    """

    def __init__(self, directory: PrivateDir, name: str, fd: int):
        self.directory, self.name, self.fd = directory, name, fd

    @classmethod
    def take(cls, base: str) -> _LabLock:
        directory = PrivateDir.open(LABS_DIR)
        name = f"{base}.lock"
        try:
            fd = directory.open_file(name, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            directory.close()
            raise
        return cls(directory, name, fd)

    def release(self) -> None:
        try:
            os.unlink(self.name, dir_fd=self.directory.fd)
        except OSError:
            pass
        os.close(self.fd)
        self.directory.close()


def remove_stale_labs(prefix: str) -> list[str]:
    """Delete the namespaces of labs of `prefix` whose owner died; returns their names.

    Only labs with a lock file nobody holds are removed (see _LabLock); the
    namespaces removed are exactly `<base>-<role>` of such a lab.
    """
    return remove_orphaned(prefix, _remove_namespaces_of)


def remove_orphaned(prefix: str, remove: Callable[[str], list[str]]) -> list[str]:
    """Call `remove(base)` for each lab of `prefix` whose lock file nobody holds (its owner
    died), then delete the lock; returns what the calls returned, joined.

    The lock is held while `remove` runs, so two cleaners never remove one lab twice.
    """
    removed: list[str] = []
    try:
        directory = PrivateDir.open(LABS_DIR)
    except (OSError, UnsafePathError):
        return removed
    try:
        for lock_name in sorted(os.listdir(directory.fd)):
            base = lock_name[: -len(".lock")]
            if not lock_name.endswith(".lock") or not base.startswith(f"{prefix}-"):
                continue
            try:
                fd = directory.open_file(lock_name, os.O_RDWR)
            except (OSError, UnsafePathError):
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
                removed += remove(base)
                os.unlink(lock_name, dir_fd=directory.fd)
            finally:
                os.close(fd)
    finally:
        directory.close()
    return removed


def _remove_namespaces_of(base: str) -> list[str]:
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []
    removed = []
    for name in names:
        if name.startswith(f"{base}-") and "-" not in name[len(base) + 1 :]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            removed.append(name)
    return removed


@contextlib.contextmanager
def demo_session() -> Iterator[Lab]:
    """The --demo lab: built on entry, removed on exit, Ctrl-C, SIGTERM/SIGHUP or a crash.

    (The command line turns SIGTERM and SIGHUP into an interruption that
    unwinds through here.)
    """
    stale = remove_stale_labs("nsdemo")
    if stale:
        sys.stderr.write(
            "netns-shell: removed a demo lab left behind by a netns-shell that was killed: "
            f"{', '.join(stale)}\n"
        )
    lab = Lab(prefix="nsdemo", inconsistent=True)
    try:
        lab.build()
        sys.stderr.write(
            f"netns-shell: demo lab built: {len(lab.roles)} namespaces named {lab.base}-*\n"
            f"  overlay {lab.overlay}: br0, vxlan0 (VNI {lab.vni}) with remote VTEPs, "
            f"{len(lab.members)} containers on veths\n"
            "  try: ns, links -d, fdb, neigh, bridges, routes table all, use <Tab>, help\n"
            "  the lab is removed when you leave (exit or Ctrl-D)\n"
        )
        yield lab
    finally:
        lab.destroy()
