"""A real multi-node Docker swarm on one machine (for `--demo swarm` and the tests).

    wan namespace:   bridge wan0 198.18.0.1/24, one veth port per node (n1, n2, ...)
    node namespace:  eth0 198.18.0.(10+K)/24 (the veth's other end), and a dockerd
                     started there with `nsenter --net` inside `unshare --uts`
                     (hostname = the node's name), with its own data root,
                     exec root, pidfile, socket and config file (architecture.md fact 11);
                     it starts its own containerd under its exec root.
    swarm:           node 1 is the manager, the others join as workers; one
                     attachable overlay network; one container pinned per node
                     (`docker -H NODE run`) and, optionally, a global service.

Every process of a node (dockerd, containerd, shims, containers) runs inside a
freezer cgroup `<base>/<node>` (containers through `--cgroup-parent`), so a node
can be frozen as one and everything it started is found again for tear-down.
Tear-down works from the names alone (`<prefix>-<pid>-<token>`), so a run that
was killed is cleaned up by the next one (`remove_stale_swarms`): it kills the
cgroups' processes, unmounts what lies under the run's directory, removes the
shim sockets, cgroups, namespaces and directories.  It never talks to the
host's own engine.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .discovery import overlay_file_glob
from .docker import DockerClient, DockerError
from .errors import NetnsShellError
from .lab import NETNS_DIR, _LabLock
from .swarm_teardown import (
    CGROUP_ROOT,
    SWARM_DIR,
    cgroup_path,
    freezer_state,
    join_cgroup,
    leftovers,
    remove_stale_swarms,
    remove_swarm,
)

__all__ = [
    "SWARM_DIR",
    "Swarm",
    "SwarmError",
    "SwarmNode",
    "dockerd_missing",
    "leftovers",
    "remove_stale_swarms",
    "remove_swarm",
    "swarm_demo_session",
]

WAN = "198.18.0"
SUBNET = "10.199.0"
IMAGE = "netns-shell-swarm-busybox:latest"
_APPLETS = ("sh", "sleep", "ip", "ping", "cat", "ls", "hostname", "nc", "wget", "arping")


class SwarmError(NetnsShellError):
    """The swarm lab could not be built (a dockerd that does not start, a join that fails)."""


def dockerd_missing() -> str | None:
    """Why no swarm lab can be built here (None when it can)."""
    for program in ("dockerd", "containerd", "docker", "nsenter", "unshare", "ip", "busybox"):
        if shutil.which(program) is None:
            return f"the swarm lab needs {program!r} (apt-get install docker.io busybox-static)"
    if not os.path.isdir(os.path.join(CGROUP_ROOT, "freezer")):
        return "the swarm lab needs the cgroup v1 freezer at /sys/fs/cgroup/freezer"
    return None


@dataclass
class SwarmNode:
    """One node: its network namespace, its dockerd and where its files are."""

    name: str  # also its hostname and the wan port's name (n1, n2, ...)
    index: int
    netns: str  # the namespace's name in /var/run/netns
    directory: str
    cgroup: str  # relative to each controller's root
    pid: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def addr(self) -> str:
        return f"{WAN}.{10 + self.index}"

    @property
    def socket(self) -> str:
        return os.path.join(self.directory, "docker.sock")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def exec_root(self) -> str:
        return os.path.join(self.directory, "exec")

    @property
    def data_root(self) -> str:
        return os.path.join(self.directory, "data")

    @property
    def netns_dir(self) -> str:
        """Where this node's engine keeps its namespace files (<exec-root>/netns)."""
        return os.path.join(self.exec_root, "netns")

    @property
    def netns_path(self) -> str:
        return os.path.join(NETNS_DIR, self.netns)

    def client(self, timeout: float = 5.0) -> DockerClient:
        return DockerClient(self.socket, timeout=timeout)

    def docker(self, *args: str, check: bool = True, timeout: float = 60, stdin=None) -> str:
        """The docker CLI against this node's engine; its stdout, stripped."""
        proc = subprocess.run(
            ["docker", "-H", self.endpoint, *args],
            capture_output=True,
            text=stdin is None,
            stdin=stdin,
            timeout=timeout,
            env={**os.environ, "DOCKER_CONFIG": os.path.join(self.directory, "cli")},
        )
        if check and proc.returncode != 0:
            err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
            raise SwarmError(f"{self.name}: docker {' '.join(args[:3])}: {err.strip()}")
        out = proc.stdout if isinstance(proc.stdout, str) else proc.stdout.decode()
        return out.strip()


@dataclass
class Swarm:
    """`up()` (or `with Swarm() as swarm:`) builds it, `down()` removes everything."""

    nodes_wanted: int = 3
    prefix: str = "nsswarm"
    service: bool = True
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes: list[SwarmNode] = field(default_factory=list)
    network: str = ""
    network_id: str = ""
    containers: dict[str, str] = field(default_factory=dict)  # node name -> container name
    timings: dict[str, float] = field(default_factory=dict)
    #: told each step of up() and down() as it starts (a phrase such as "forming the swarm")
    progress: Callable[[str], None] = field(default=lambda step: None, repr=False)
    _lock: _LabLock | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base = f"{self.prefix}-{os.getpid()}-{self.token}"
        self.directory = os.path.join(SWARM_DIR, self.base)
        self.wan = f"{self.base}-wan"
        self.network = f"{self.base}-net"
        self.service_name = f"{self.base}-svc"
        self.nodes = [
            SwarmNode(
                name=f"n{k}",
                index=k,
                netns=f"{self.base}-n{k}",
                directory=os.path.join(self.directory, f"n{k}"),
                cgroup=f"{self.base}/n{k}",
            )
            for k in range(1, self.nodes_wanted + 1)
        ]

    @property
    def manager(self) -> SwarmNode:
        return self.nodes[0]

    def node(self, name: str) -> SwarmNode:
        return next(n for n in self.nodes if n.name == name)

    # ------------------------------------------------------------ bring up
    def up(self) -> Swarm:
        reason = dockerd_missing()
        if reason:
            raise SwarmError(reason)
        started = time.monotonic()
        self._lock = _LabLock.take(self.base)
        try:
            self.progress(f"wiring {len(self.nodes)} node namespaces")
            self._build_wan()
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            # a shared mount, as / is on a systemd host: the nodes' namespace directories can
            # then be mounted into containers with rslave propagation (architecture.md fact 16)
            _run(["mount", "--bind", self.directory, self.directory])
            _run(["mount", "--make-shared", self.directory])
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                self.progress(f"starting {len(self.nodes)} dockerd")
                list(pool.map(self._start_dockerd, self.nodes))
                self.progress("forming the swarm")
                self._form_swarm()
                self.progress("loading the image on every node")
                list(pool.map(self._load_image, self.nodes))
                self.progress("creating the overlay and one container per node")
                self.network_id = self.manager.docker(
                    "network", "create", "-d", "overlay", "--attachable",
                    "--subnet", f"{SUBNET}.0/24", self.network,
                )  # fmt: skip
                list(pool.map(self._run_container, self.nodes))
            if self.service:
                self.manager.docker(
                    "service", "create", "-d", "--mode", "global", "--no-resolve-image",
                    "--name", self.service_name, "--network", self.network, IMAGE, "sleep", "1d",
                )  # fmt: skip
            self.progress("waiting for the overlay to converge")
            self.wait_converged()
        except BaseException:
            self.down()
            raise
        self.timings["up"] = time.monotonic() - started
        return self

    def _build_wan(self) -> None:
        _run(["ip", "netns", "add", self.wan])
        commands = ["link set lo up", "link add wan0 type bridge", f"addr add {WAN}.1/24 dev wan0"]
        commands.append("link set wan0 up")
        for node in self.nodes:
            _run(["ip", "netns", "add", node.netns])
            commands += [  # created inside the namespaces: nothing touches the root one
                f"link add {node.name} type veth peer name eth0 netns {node.netns}",
                f"link set {node.name} master wan0 up",
            ]
        _ip(self.wan, commands)
        for node in self.nodes:
            _ip(
                node.netns,
                ["link set lo up", f"addr add {node.addr}/24 dev eth0", "link set eth0 up"],
            )

    def _start_dockerd(self, node: SwarmNode) -> None:
        for sub in ("", "data", "exec", "cli"):
            os.makedirs(os.path.join(node.directory, sub), mode=0o700, exist_ok=True)
        config = os.path.join(node.directory, "daemon.json")
        with open(config, "w") as f:  # else every node shares /etc/docker/key.json
            json.dump({"deprecated-key-path": os.path.join(node.data_root, "key.json")}, f)
        os.makedirs(cgroup_path("freezer", node.cgroup), exist_ok=True)
        argv = [
            "unshare", "--uts", "sh", "-c",
            'echo "$0" > /proc/sys/kernel/hostname && exec "$@"', node.name,
            "nsenter", f"--net={node.netns_path}", "--",
            "dockerd", "--config-file", config,
            "--data-root", node.data_root, "--exec-root", node.exec_root,
            "--pidfile", os.path.join(node.directory, "docker.pid"),
            "-H", node.endpoint, "--bridge=none", "--storage-driver=vfs",
            "--cgroup-parent", f"/{node.cgroup}", "--log-level=warn",
        ]  # fmt: skip
        log = open(os.path.join(node.directory, "dockerd.log"), "wb")
        with log:
            node.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches us, and we tear down
                preexec_fn=join_cgroup(node.cgroup),
            )
        node.pid = node.proc.pid
        deadline = time.monotonic() + 30
        while True:
            try:
                node.client(timeout=2).ping()
                return
            except DockerError:
                if node.proc.poll() is not None or time.monotonic() > deadline:
                    raise SwarmError(
                        f"{node.name}: dockerd did not start: {_tail(node.directory)}"
                    ) from None
                time.sleep(0.1)

    def _form_swarm(self) -> None:
        m = self.manager
        m.docker("swarm", "init", "--advertise-addr", m.addr, "--listen-addr", f"{m.addr}:2377")
        token = m.docker("swarm", "join-token", "-q", "worker")
        join = ["swarm", "join", "--token", token, f"{m.addr}:2377"]
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            futures = [pool.submit(self._join, node, join) for node in self.nodes[1:]]
            for future in futures:
                future.result()

    @staticmethod
    def _join(node: SwarmNode, join: list[str]) -> None:
        node.docker(*join, "--advertise-addr", node.addr, "--listen-addr", f"{node.addr}:2377")

    def _load_image(self, node: SwarmNode) -> None:
        tar_path = os.path.join(self.directory, "rootfs.tar")
        if not os.path.exists(tar_path):
            _busybox_rootfs(tar_path)
        node.docker("import", tar_path, IMAGE)

    def _run_container(self, node: SwarmNode) -> None:
        name = f"{self.base}-c{node.index}"
        node.docker(
            "run", "-d", "--name", name, "--hostname", f"c{node.index}",
            "--network", self.network, IMAGE, "sleep", "1d",
        )  # fmt: skip
        self.containers[node.name] = name

    def load_image(self, tar_path: str, tag: str, changes: list[str] = ()) -> float:
        """`docker import` a root filesystem tar as `tag` on every node (once per tag);
        the seconds it took."""
        started = time.monotonic()

        def load(node: SwarmNode) -> None:
            if node.docker("images", "-q", tag):
                return
            argv = ["import"]
            for change in changes:
                argv += ["--change", change]
            node.docker(*argv, tar_path, tag, timeout=120)

        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(load, self.nodes))
        return time.monotonic() - started

    # ------------------------------------------------------------ views
    def overlay_ns(self, node: SwarmNode) -> str:
        """The path of the overlay network's namespace on `node` (<exec-root>/netns/N-<id>)."""
        found = glob.glob(os.path.join(node.netns_dir, overlay_file_glob(self.network_id)))
        if not found:
            raise SwarmError(f"{node.name}: no overlay namespace for {self.network}")
        return found[0]

    def engine_view(self, node: SwarmNode, timeout: float = 5.0) -> dict[str, Any]:
        return node.client(timeout).get(f"/networks/{self.network_id}?verbose=true")

    def expected_endpoints(self) -> int:
        return len(self.nodes) * (2 if self.service else 1)

    def wait_converged(self, timeout: float = 60) -> None:
        """Until every node's engine lists every endpoint and its kernel has the remote ones."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [n.name for n in self.nodes if not self._converged(n)]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise SwarmError(f"the overlay did not converge on {', '.join(missing)}")
            time.sleep(0.3)

    def _converged(self, node: SwarmNode) -> bool:
        """Every endpoint in the node's engine view and gossip, and every remote one in its
        kernel: a permanent neighbour and an FDB entry to a VTEP (the engine adds them one
        after the other, so both are waited for)."""
        try:
            view = self.engine_view(node)
        except DockerError:
            return False
        tasks = [t for s in (view.get("Services") or {}).values() for t in s.get("Tasks") or ()]
        if len(tasks) < self.expected_endpoints() or len(view.get("Peers") or ()) < len(self.nodes):
            return False
        # a task the engine has no Info for yet (or any more: an agent's, going) is on no
        # node it can name; the lab's own endpoints are counted above
        remote = {
            t.get("EndpointIP")
            for t in tasks
            if t.get("Info") and t["Info"].get("Host IP") != node.addr
        }
        try:
            path = self.overlay_ns(node)
        except SwarmError:
            return False
        from .engine_view import overlay_mac

        neighbours = _json_in(path, "ip", "-j", "neigh", "show", "nud", "permanent")
        fdb = _json_in(path, "bridge", "-j", "fdb", "show")
        known = {n.get("dst") for n in neighbours}
        tunnelled = {e.get("mac") for e in fdb if e.get("dst")}
        return remote <= known and {overlay_mac(ip) for ip in remote} - {None} <= tunnelled

    # ------------------------------------------------------------ faults
    def block_vxlan(self, node: SwarmNode, other: SwarmNode) -> Callable[[], None]:
        """Drop VXLAN (UDP 4789) between two nodes, in `node`'s namespace; returns the undo."""
        rules = [
            ["INPUT", "-s", other.addr, "-p", "udp", "--dport", "4789", "-j", "DROP"],
            ["OUTPUT", "-d", other.addr, "-p", "udp", "--dport", "4789", "-j", "DROP"],
        ]
        for rule in rules:
            _run(["nsenter", f"--net={node.netns_path}", "iptables", "-w", "-I", *rule])

        def undo() -> None:
            for rule in rules:
                _run(["nsenter", f"--net={node.netns_path}", "iptables", "-w", "-D", *rule])

        return undo

    def cut(self, node: SwarmNode) -> Callable[[], None]:
        """Take `node`'s wan link down (its port on the wan bridge); returns the undo."""
        _ip(self.wan, [f"link set {node.name} down"])
        return lambda: _ip(self.wan, [f"link set {node.name} up"])

    def freeze(self, node: SwarmNode) -> Callable[[], None]:
        """Freeze every process of `node` (cgroup freezer); returns the thaw."""
        freezer_state(node.cgroup, "FROZEN")
        return lambda: freezer_state(node.cgroup, "THAWED")

    def kill_engine(self, node: SwarmNode) -> None:
        """kill -9 the node's dockerd (containerd, shims and containers live on)."""
        if node.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
            if node.proc is not None:
                node.proc.wait(timeout=10)

    # ------------------------------------------------------------ tear down
    def down(self) -> None:
        """Remove everything this swarm made (idempotent; never raises for what is gone)."""
        started = time.monotonic()
        self.progress("stopping the nodes and removing everything")
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for node in self.nodes:
            if node.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        remove_swarm(self.base)
        for node in self.nodes:
            if node.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.wait(timeout=5)
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
        self.timings["down"] = time.monotonic() - started

    def __enter__(self) -> Swarm:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def _tail(directory: str) -> str:
    try:
        with open(os.path.join(directory, "dockerd.log"), errors="replace") as f:
            lines = f.read().strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no output"


def _busybox_rootfs(tar_path: str) -> None:
    busybox = shutil.which("busybox")
    tmp = tempfile.mktemp(dir=os.path.dirname(tar_path))
    with tarfile.open(tmp, "w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in _APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    os.replace(tmp, tar_path)


def _json_in(netns_path: str, *argv: str) -> list[dict[str, Any]]:
    """An iproute2 `-j` answer read inside a namespace ([] when it fails)."""
    out = subprocess.run(
        ["nsenter", f"--net={netns_path}", *argv], capture_output=True, text=True
    ).stdout
    return json.loads(out or "[]")


def _run(argv: list[str], stdin: str | None = None) -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise SwarmError(f"swarm: {' '.join(argv[:4])}: {detail[-1] if detail else 'failed'}")


def _ip(netns: str, commands: list[str]) -> None:
    _run(["ip", "-n", netns, "-batch", "-"], "\n".join(commands) + "\n")


def _demo_progress(step: str) -> None:
    """A start-up and tear-down of several seconds says what it is doing, on a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write(f"netns-shell: demo swarm: {step}...\n")
        sys.stderr.flush()


@contextlib.contextmanager
def swarm_demo_session(nodes: int = 3) -> Iterator[Swarm]:
    """The `--demo swarm` lab: built on entry, removed on exit, Ctrl-C or a crash."""
    stale = remove_stale_swarms("nsdemoswarm")
    if stale:
        sys.stderr.write(
            f"netns-shell: removed a demo swarm left behind by a killed run: {', '.join(stale)}\n"
        )
    swarm = Swarm(nodes_wanted=nodes, prefix="nsdemoswarm", progress=_demo_progress)
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "NETNS_SHELL_NODES", "NETNS_SHELL_PATH")}
    try:
        swarm.up()
        # the shell's names come from node 1's engine; `check --cluster` asks every node;
        # `ns` lists the nodes' namespace files
        os.environ["DOCKER_HOST"] = swarm.manager.endpoint
        os.environ["NETNS_SHELL_NODES"] = ",".join(f"{n.name}={n.endpoint}" for n in swarm.nodes)
        os.environ["NETNS_SHELL_PATH"] = ":".join(n.netns_dir for n in swarm.nodes)
        sys.stderr.write(
            f"netns-shell: demo swarm up in {swarm.timings['up']:.1f} s: {len(swarm.nodes)} "
            f"dockerd nodes ({', '.join(n.name + ' ' + n.addr for n in swarm.nodes)}), "
            f"overlay {swarm.network}, one container per node and a global service; "
            f"everything named {swarm.base}*\n"
            f"  the shell starts in n1's overlay namespace; try: overlay, fdb, neigh, "
            "check, check --cluster\n"
            f"  a node's engine: docker -H {swarm.manager.endpoint} ...\n"
            "  everything is removed when you leave (exit or Ctrl-D)\n"
        )
        yield swarm
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        swarm.down()
        _demo_progress(f"removed in {swarm.timings['down']:.1f} s")
