"""The help examples that need a Docker engine's objects run on the real 3-node swarm.

tests/test_examples.py runs every other example against the single-host lab and lists these
in ON_SWARM; here each of them runs through the console script in the shell that
`--demo swarm` opens (DOCKER_HOST = n1's engine, NETNS_SHELL_NODES = every node,
NETNS_SHELL_PATH = every node's namespace directory), from inside container c1 on n1 (a
container of the overlay) or, for `check`, from n1's overlay namespace.  The examples'
placeholder names become the swarm's (SwarmWorld.names): `web` is a container on n2 that
listens on port 80 (busybox httpd), `tasks.web` the swarm's global service, `my-overlay`
its network, the node sockets its nodes' engines, `--image` the product's image built by
netns_shell.swarm_image, 10.0.0.2 a DNS server (dnsmasq) in container c2's namespace.

Each must exit 0 (or its documented verdict status) without a traceback, and its output
is compared with an oracle where that is cheap: the engine (`docker inspect`,
`docker network inspect -v`), `dig`, `iptables-save`, `conntrack -L`.  Only what cannot
run on this machine is skipped (test_examples.NEEDS_ENGINE), after checking that it says
why in one line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from netns_shell.swarm_image import agent_rootfs, import_changes
from tests.conftest import Run, netns_shell
from tests.swarmenv import engine_oracle, neigh_oracle, nodes_option
from tests.test_examples import HELP_EXAMPLES, NEEDS_ENGINE, ON_SWARM, VERDICTS, _substitute

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("swarm")]

SWARM_EXAMPLES = [example for example in HELP_EXAMPLES if example in ON_SWARM]

DNS_RECORD = ("example.org", "fd00:199::250")  # what the DNS server at "10.0.0.2" answers


class SwarmWorld:
    """The swarm with what the examples talk about, and the names that replace theirs."""

    def __init__(self, swarm):
        self.swarm = swarm
        self.n1, self.n2, self.n3 = swarm.nodes[:3]
        self.web = f"{swarm.base}-web"
        self.dns_server: subprocess.Popen | None = None
        self.image = ""

    def inspect(self, node, container: str) -> tuple[str, str]:
        """(IP on the overlay, sandbox path) of a container, from its engine."""
        info = json.loads(node.docker("inspect", container))[0]
        ip = info["NetworkSettings"]["Networks"][self.swarm.network]["IPAddress"]
        return ip, info["NetworkSettings"]["SandboxKey"]

    def env(self) -> dict[str, str]:
        """What `--demo swarm` sets for its shell (netns_shell.swarm.swarm_demo_session)."""
        nodes = self.swarm.nodes
        return {
            "DOCKER_HOST": self.n1.endpoint,
            "NETNS_SHELL_NODES": nodes_option(self.swarm),
            "NETNS_SHELL_PATH": ":".join(n.netns_dir for n in nodes),
        }

    def names(self) -> dict[str, str]:
        swarm = self.swarm
        return {
            "web": self.web,
            "tasks.web": f"tasks.{swarm.service_name}",
            "10.0.9.3": self.web_ip,  # `dns 10.0.9.3`: the reverse lookup of a container
            "10.0.0.2": self.c2_ip,
            "10.0.1.7": self.c3_ip,
            "my-overlay": swarm.network,
            "unix:///run/n1.sock": self.n1.endpoint,
            "unix:///run/n2.sock": self.n2.endpoint,
            "netns-shell:latest": self.image,
            # the swarm's nodes each have one: a name shared by several is given by its path
            "ingress_sbox": os.path.join(self.n1.netns_dir, "ingress_sbox"),
        }

    def line(self, example: str) -> str:
        line = _substitute(example, self.names())
        if "--via service" in example:
            # the lab's nodes share one machine, so each keeps its engine's files in a
            # directory of its own, which the agents must be told (on a real cluster every
            # node has /var/run/docker/netns and /var/run/docker.sock, the defaults)
            top = self.swarm.directory
            line += (
                f" --netns-dir {top}/{{{{.Node.Hostname}}}}/exec/netns"
                f" --engine-socket {top}/{{{{.Node.Hostname}}}}/docker.sock"
            )
        return line

    def where(self, example: str) -> str:
        """The namespace an example runs in: c1's, or n1's overlay namespace for `check`."""
        if example.startswith("check"):
            return self.swarm.overlay_ns(self.n1)
        return self.c1_sandbox


def _start_dns_server(sandbox: str, ip: str) -> subprocess.Popen:
    """dnsmasq answering DNS_RECORD only, on `ip`:53 inside the namespace `sandbox`."""
    name, address = DNS_RECORD
    proc = subprocess.Popen(
        ["nsenter", f"--net={sandbox}", "dnsmasq", "--keep-in-foreground", "--no-resolv",
         "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--bind-interfaces",
         f"--listen-address={ip}", "--port=53", f"--host-record={name},{address}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while _dig(sandbox, ip, name, "AAAA") != [address]:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "dnsmasq does not answer"
        time.sleep(0.1)
    return proc


def _dig(sandbox: str, server: str, name: str, rtype: str = "A") -> list[str]:
    """`dig +short` run inside the namespace (PTR: `dig -x`): the answers, sorted."""
    query = ["-x", name] if rtype == "PTR" else [name, rtype]
    out = subprocess.run(
        ["nsenter", f"--net={sandbox}", "dig", "+short", "+time=1", "+tries=1",
         f"@{server}", *query],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return sorted(line for line in out.split() if not line.startswith(";"))


@pytest.fixture(scope="module")
def world(docker_swarm):
    swarm = docker_swarm
    swarm.wait_converged()
    world = SwarmWorld(swarm)
    world.n2.docker(
        "run", "-d", "--name", world.web, "--network", swarm.network, "--entrypoint",
        "busybox", "netns-shell-swarm-busybox:latest", "httpd", "-f", "-p", "80", "-h", "/",
    )  # fmt: skip
    try:
        world.web_ip, _ = world.inspect(world.n2, world.web)
        world.c1_ip, world.c1_sandbox = world.inspect(world.n1, swarm.containers["n1"])
        world.c2_ip, c2_sandbox = world.inspect(world.n2, swarm.containers["n2"])
        world.c3_ip, _ = world.inspect(world.n3, swarm.containers["n3"])
        tar, world.image = agent_rootfs()
        swarm.load_image(tar, world.image, import_changes())
        deadline = time.monotonic() + 30  # n1 learns the new container through gossip
        while _dig(world.c1_sandbox, "127.0.0.11", world.web) != [world.web_ip]:
            assert time.monotonic() < deadline, "n1's embedded DNS does not know web"
            time.sleep(0.3)
        swarm.wait_converged()
        if shutil.which("dnsmasq"):
            world.dns_server = _start_dns_server(c2_sandbox, world.c2_ip)
        yield world
    finally:
        if world.dns_server is not None:
            world.dns_server.kill()
            world.dns_server.wait()
        world.n2.docker("rm", "-f", world.web, check=False)
        _wait_gone(swarm, getattr(world, "web_ip", None))


def _wait_gone(swarm, ip: str | None, timeout: float = 30) -> None:
    """Until no node's engine nor kernel knows `ip`: the swarm is as the next tests expect."""
    deadline = time.monotonic() + timeout
    while ip is not None:
        known = [
            node.name
            for node in swarm.nodes
            if ip in json.dumps(engine_oracle(swarm, node)) or ip in neigh_oracle(swarm, node)
        ]
        if not known:
            return
        assert time.monotonic() < deadline, f"{ip} still known on {known} after its removal"
        time.sleep(0.3)


def _run(world: SwarmWorld, example: str, *options: str) -> Run:
    line = world.line(example)
    return netns_shell(
        "--net", world.where(example), *options, "-c", line, env=world.env(), timeout=90
    )


def _assert_ran(example: str, run: Run) -> None:
    ok = VERDICTS.get(example.split()[0], (0,))
    assert run.status in ok, f"{example}: exit {run.status}\n{run.stdout}\n{run.stderr}"
    assert run.status == 0 or run.stdout, f"{example}: a verdict with no output"
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr


def _dns_data(run: Run, rtype: str) -> list[str]:
    """The DATA column of `dns`'s answer rows of type `rtype`."""
    rows = [line.split() for line in run.stdout.splitlines()]
    return sorted(row[-1] for row in rows if len(row) >= 4 and row[1] == rtype)


@pytest.mark.parametrize("example", SWARM_EXAMPLES)
def test_every_engine_example_runs_on_the_swarm(example, world):
    if example in NEEDS_ENGINE:
        _assert_cannot_run_here(world, example)
        pytest.skip(f"needs {NEEDS_ENGINE[example]}")
    if example.startswith("dns example.org") and world.dns_server is None:
        pytest.skip("dnsmasq (Debian dnsmasq-base) is needed for the DNS server at 10.0.0.2")
    if example.startswith("conntrack"):  # DNS traffic to the embedded resolver, to be listed
        _dig(world.c1_sandbox, "127.0.0.11", world.web)
    run = _run(world, example)
    _assert_ran(example, run)
    _check_output(world, example, run)


def _check_output(world: SwarmWorld, example: str, run: Run) -> None:
    """What the oracle says the example's output must hold."""
    swarm, out = world.swarm, run.stdout
    command = example.split()[0]
    if example == "dns web":
        assert _dns_data(run, "A") == [world.web_ip], out
        assert "127.0.0.11" in run.stderr + out  # which server answered
    elif example == "dns tasks.web":
        service = engine_oracle(swarm, world.n1)["Services"][swarm.service_name]
        tasks = sorted(t["EndpointIP"] for t in service["Tasks"])
        assert len(tasks) == len(swarm.nodes)
        assert _dns_data(run, "A") == tasks, out
    elif example == "dns 10.0.9.3":
        [name] = _dns_data(run, "PTR")
        assert name == _dig(world.c1_sandbox, "127.0.0.11", world.web_ip, "PTR")[0]
        assert name.startswith(f"{world.web}."), out
    elif example.startswith("dns example.org"):
        assert _dns_data(run, "AAAA") == [DNS_RECORD[1]], out
        assert world.c2_ip in run.stderr + out
    elif command in ("tcping", "ping", "traceroute"):
        assert run.status == 0, out
        assert world.web_ip in out, out
        if command == "tcping":
            assert "open" in out and " 0% loss" in out, out
        elif command == "ping":
            assert re.search(r"\b1430 bytes from ", out), out  # 1422 + 8 ICMP header
        else:
            assert "reached" in out, out
    elif command == "conntrack":
        oracle = subprocess.run(
            ["nsenter", f"--net={world.c1_sandbox}", "conntrack", "-L", "-p", "udp",
             "-d", "127.0.0.11"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        assert oracle.strip(), "conntrack -L lists no DNS flow"
        assert "127.0.0.11:53" in out, out
    elif command == "firewall":
        saved = subprocess.run(
            ["nsenter", f"--net={world.c1_sandbox}", "iptables-save", "-t", "nat"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rules = [line for line in saved.splitlines() if line.startswith("-A DOCKER_OUTPUT ")]
        assert rules, saved  # the engine's chain for its embedded DNS
        shown = [line for line in out.splitlines() if "DOCKER_OUTPUT" in line and "dnat" in line]
        assert len(shown) == len(rules), (out, rules)
    elif command == "check":
        _check_verdict(world, example, run)
    elif command == "trace":
        assert run.status == 0, out  # c3 is reached: the path is open
        assert "delivered" in out and world.c3_ip in out, out
    else:
        raise AssertionError(f"no oracle for {example!r}: add one here")


def _check_verdict(world: SwarmWorld, example: str, run: Run) -> None:
    """The swarm is healthy: a clean verdict over the nodes the example names."""
    text = run.stdout + run.stderr  # the summary goes to stderr under --json
    assert run.status == 0, text
    nodes = 2 if "--nodes" in example else (3 if "--cluster" in example else 1)
    assert f"0 findings on {nodes} node(s)" in text, text
    assert world.swarm.network in text, text
    if "--json" in example:
        assert json.loads(run.stdout) == []
        assert "0 findings" in run.stderr, run.stderr
    if "--via service" in example:
        assert "(reached: service)" in text, text
        services = world.n1.docker("service", "ls", "--format", "{{.Name}}").split()
        assert [s for s in services if s.startswith("netns-shell-check-")] == []


def _assert_cannot_run_here(world: SwarmWorld, example: str) -> None:
    """An example of NEEDS_ENGINE still answers with its reason in one line, no traceback."""
    if "ipvs" in example:
        if os.path.exists("/proc/net/ip_vs"):
            pytest.fail(f"{example}: this kernel has ip_vs now: drop it from NEEDS_ENGINE")
        run = _run(world, example)
        assert run.status != 0
        assert "netns-shell: ipvs: " in run.stderr and "ip_vs" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr, run.stderr


def test_every_engine_example_is_a_help_example():
    """ON_SWARM and NEEDS_ENGINE name examples that `help` shows (none stale), and what
    cannot run here is among what needs the swarm."""
    assert set(ON_SWARM) <= set(HELP_EXAMPLES), set(ON_SWARM) - set(HELP_EXAMPLES)
    assert set(NEEDS_ENGINE) <= set(ON_SWARM), set(NEEDS_ENGINE) - set(ON_SWARM)
