"""`check --via container|service` on a real 3-node swarm: each node's tables read ON the node.

A small image of the product (netns_shell.swarm_image: this host's python3.11, the
package, its pure-Python dependencies; cached by content hash) is imported into every
node's engine.  The agents' findings are compared with the kernel (`bridge -j fdb`,
`ip -j route` via nsenter) and with direct mode; afterwards no container and no service
of theirs is left on any node, also after a frozen node, a timeout or Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from netns_shell.agents import LABEL
from netns_shell.engine_view import overlay_mac
from netns_shell.swarm import SUBNET
from netns_shell.swarm_image import agent_rootfs, import_changes
from tests.conftest import Run, netns_shell
from tests.swarmenv import (
    docker_clients,
    fdb_oracle,
    in_overlay,
    interrupted_check,
    nodes_option,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("swarm")]


@pytest.fixture(scope="module")
def agent_swarm(docker_swarm):
    tar, tag = agent_rootfs()
    seconds = docker_swarm.load_image(tar, tag, import_changes())
    print(f"agent image {tag} loaded into {len(docker_swarm.nodes)} nodes in {seconds:.1f} s")
    docker_swarm.agent_image = tag
    return docker_swarm


@pytest.fixture
def swarm(agent_swarm):
    agent_swarm.wait_converged()
    yield agent_swarm
    agent_swarm.wait_converged()
    assert _left_behind(agent_swarm) == []


def _line(swarm, via: str, *extra: str) -> str:
    words = ["check", "--cluster", "--via", via, "--image", swarm.agent_image]
    if via == "service":  # one mount source per node: the lab's nodes keep their files apart
        words += [
            "--nodes", nodes_option(swarm, [swarm.manager]),
            "--netns-dir", f"{swarm.directory}/{{{{.Node.Hostname}}}}/exec/netns",
            "--engine-socket", f"{swarm.directory}/{{{{.Node.Hostname}}}}/docker.sock",
        ]  # fmt: skip
    else:
        words += ["--nodes", nodes_option(swarm)]
    return " ".join([*words, *extra])


def _check(swarm, via: str, *extra: str) -> Run:
    return netns_shell("--json", "-c", _line(swarm, via, *extra), timeout=90)


def _left_behind(swarm, wait: float = 20) -> list[str]:
    """The agents' services and containers still on the nodes (the engines remove a removed
    service's task containers on their own, within seconds)."""
    deadline = time.monotonic() + wait
    while True:
        found = [
            f"service {name}"
            for name in swarm.manager.docker("service", "ls", "--format", "{{.Name}}").split()
            if name.startswith("netns-shell-check-")
        ]
        for node in swarm.nodes:
            out = node.docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label={LABEL}")
            out += "\n" + node.docker("ps", "-a", "--format", "{{.Names}}")
            found += [
                f"{node.name}: {n}" for n in set(out.split()) if n.startswith("netns-shell-check-")
            ]
        if not found or time.monotonic() > deadline:
            return sorted(found)
        time.sleep(0.5)


@pytest.mark.parametrize("via", ["container", "service"])
def test_agents_check_each_node_on_the_node(swarm, via):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    healthy = _check(swarm, via)
    assert (healthy.status, healthy.json) == (0, []), healthy.stderr
    for node in swarm.nodes:
        assert f"{node.name} [{via}] {swarm.network}" in healthy.stderr
    assert "0 findings on 3 node(s)" in healthy.stderr and f"(reached: {via})" in healthy.stderr

    # a stale entry in n1's overlay namespace and, through containers, no route to n2 in
    # n1's own namespace (the one that holds the vxlan socket: the agent must find it on the
    # node); not through a service: the manager n1 would then lose n2's answer itself
    mac = overlay_mac(f"{SUBNET}.210")
    in_overlay(swarm, n1, "bridge", "fdb", "add", mac, "dev", "vxlan0", "dst", n2.addr,
               "self", "permanent")  # fmt: skip
    route = ["ip", "-n", n1.netns, "route", "add", "unreachable", f"{n2.addr}/32"]
    if via == "container":
        subprocess.run(route, check=True)
    try:
        assert any(e["mac"] == mac for e in fdb_oracle(swarm, n1))
        started = time.monotonic()
        run = _check(swarm, via)
        took = time.monotonic() - started
        direct = netns_shell("--json", "-c", f"check --cluster --nodes {nodes_option(swarm)}")
    finally:
        in_overlay(swarm, n1, "bridge", "fdb", "del", mac, "dev", "vxlan0", "dst", n2.addr,
                   "self")  # fmt: skip
        if via == "container":
            subprocess.run([*route[:4], "del", *route[5:]], check=True)
    print(f"check --cluster --via {via}: {took:.1f} s")
    assert run.status == 1, run.stderr
    found = {(f["kind"], f["node"], f["mac"], f["vtep"]) for f in run.json}
    assert ("stale-fdb", "n1", mac, n2.addr) in found
    kinds = {"stale-fdb", "vtep-unreachable"} if via == "container" else {"stale-fdb"}
    assert {f["kind"] for f in run.json} == kinds
    # the same verdict as direct mode, which reads the same kernels from here
    assert sorted((f["kind"], f["node"], f["mac"], f["ip"], f["vtep"]) for f in run.json) == sorted(
        (f["kind"], f["node"], f["mac"], f["ip"], f["vtep"]) for f in direct.json
    )
    assert took < 20


#: the --timeout of the frozen-node check: the frozen node costs that much, no more
FROZEN_TIMEOUT = 15


@pytest.mark.parametrize("via", ["container", "service"])
def test_a_frozen_node_is_unreachable_and_the_others_answer(swarm, via):
    n3 = swarm.nodes[2]
    thaw = swarm.freeze(n3)
    try:
        started = time.monotonic()
        # the healthy nodes' agents must answer within it on a loaded machine too
        run = _check(swarm, via, "--timeout", str(FROZEN_TIMEOUT))
        took = time.monotonic() - started
    finally:
        thaw()
    print(f"--via {via} with n3 frozen: {took:.1f} s\n{run.stderr}")
    assert run.status == 1, run.stderr
    assert [(f["kind"], f["node"]) for f in run.json if f["node"] == "n3"] == [
        ("node-unreachable", "n3")
    ]
    assert f"n1 [{via}]" in run.stderr and f"n2 [{via}]" in run.stderr
    assert took < FROZEN_TIMEOUT + 5


def _wait_at_work(proc: subprocess.Popen, seconds: float = 60) -> None:
    """Until the shell talks to an engine (a socket open, or a docker CLI call running) or
    has ended: a Ctrl-C before would only interrupt the interpreter's start."""
    deadline = time.monotonic() + seconds
    pid = proc.pid
    while proc.poll() is None:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as fh:
                if fh.read().split():
                    return
            if any(
                os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
                for fd in os.listdir(f"/proc/{pid}/fd")
            ):
                return
        except FileNotFoundError:  # an fd closed while we looked, or the process ended
            continue
        assert time.monotonic() < deadline, "the shell never reached an engine"
        time.sleep(0.02)


@pytest.mark.parametrize("via", ["container", "service"])
@pytest.mark.parametrize("delay", [0.0, 1.0])
def test_ctrl_c_leaves_no_agent_behind(swarm, via, delay):
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", "--json", "-c", _line(swarm, via)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_at_work(proc)
    time.sleep(delay)  # as it reaches the engines, or a second into the agents' work
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (130, 0, 1), err  # 0/1: it had finished already
    if proc.returncode != 130:
        assert isinstance(json.loads(out), list)
    assert _left_behind(swarm) == []


@pytest.mark.parametrize("via", ["container", "service"])
def test_ctrl_c_does_not_wait_for_a_frozen_node(swarm, via):
    """n3 frozen: SIGINT while the agents wait for it ends `-c` with 130 without waiting for
    n3; the agents already created on the other nodes are removed first (`docker rm -f`:
    0.1-2.9 s measured on a busy machine), no docker client is left running."""
    n3 = swarm.nodes[2]
    before = docker_clients(swarm)
    thaw = swarm.freeze(n3)
    try:
        status, took, err = interrupted_check(_line(swarm, via, "--timeout", "15"), 3.0)
        clients = docker_clients(swarm) - before
    finally:
        thaw()
    print(f"--via {via}, n3 frozen: exit {status} {took:.2f} s after SIGINT")
    assert status == 130 and "Traceback" not in err, err
    assert took < 5, err  # n3's deadline is 15 s away
    assert clients == set()
    assert _left_behind(swarm) == []


def _engine_events(swarm, since: float) -> list[str]:
    """What every node's engine did to containers and services since `since` (unix time)."""
    until = f"{time.time() + 1:.3f}"
    return [
        f"{node.name}: {line}"
        for node in swarm.nodes
        for line in node.docker(
            "events", "--since", f"{since:.3f}", "--until", until,
            "--filter", "type=container", "--filter", "type=service",
            "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ).splitlines()
    ]  # fmt: skip


def test_read_only_refuses_agents_before_any_engine_is_asked(swarm):
    """`--read-only`: `--via container|service` are refused in one line, exit 2, and no engine
    sees a container or service event; the direct check still answers."""
    deadline = time.monotonic() + 30  # the engines finish what earlier tests left them first
    while _engine_events(swarm, time.time() - 3) and time.monotonic() < deadline:
        time.sleep(1)
    since = time.time()
    for via in ("container", "service"):
        run = netns_shell("--read-only", "-c", _line(swarm, via))
        assert run.status == 2, run.stderr
        assert run.stderr.strip().splitlines() == [
            f"netns-shell: check --via {via}: disabled in --read-only mode "
            "(it creates containers or a service on the engines)"
        ]
    line = f"check --cluster --nodes {nodes_option(swarm)}"
    direct = netns_shell("--read-only", "--json", "-c", line)
    assert (direct.status, direct.json) == (0, []), direct.stderr
    assert "(reached: direct)" in direct.stderr
    assert _engine_events(swarm, since) == []


def test_an_image_missing_on_the_nodes_is_named_not_pulled(swarm):
    """`--via container` with an image no node has: each node named, with the image and how
    to load it, and no registry asked (create --pull never); this shell's own engine
    (DOCKER_HOST, no --nodes) is named by its node's name."""
    image = f"netns-shell-absent-{swarm.token}:1"
    run = netns_shell("-c", f"check --cluster --via container --image {image} "
                      f"--nodes {nodes_option(swarm)}", timeout=90)  # fmt: skip
    assert run.status == 2, run.stderr
    for node in swarm.nodes:
        assert (
            f"{node.name}: image {image} is not on node {node.name}: load it with "
            f"`docker save {image} | docker -H {node.endpoint} load`"
        ) in run.stderr
    assert "registry" not in run.stderr and "docker.io" not in run.stderr, run.stderr
    n2 = swarm.nodes[1]
    alone = netns_shell("-c", f"check --via container --image {image}",
                        env={"DOCKER_HOST": n2.endpoint}, timeout=90)  # fmt: skip
    assert alone.status == 2
    assert f"check: no node answered: n2: image {image} is not on node n2" in alone.stderr


def test_a_rejected_service_task_says_why(swarm):
    """`--via service` with an image no node has: each task is rejected, and the engine's
    reason (the task's Status.Err) is in the answer."""
    image = f"netns-shell-absent-{swarm.token}:1"
    words = _line(swarm, "service", "--timeout", "20").split()
    words[words.index("--image") + 1] = image
    run = netns_shell("--json", "-c", " ".join(words), timeout=90)
    assert run.status == 2, run.stderr
    for node in swarm.nodes:
        assert f"{node.name}: its task ended (rejected: " in run.stderr, run.stderr
    assert f"No such image: {image}" in run.stderr, run.stderr


def test_collect_prints_this_nodes_material(swarm):
    """`check --collect` on a node (what the agents run) gives its view and tables."""
    n1 = swarm.nodes[0]
    run = netns_shell("-c", "check --collect", env={"DOCKER_HOST": n1.endpoint})
    assert run.status == 0, run.stderr
    [record] = [json.loads(line) for line in run.stdout.splitlines()]
    assert record["node"] == {"name": "n1", "addr": n1.addr}
    assert record["network"]["name"] == swarm.network
    fdb = {mac: [e["dst"] for e in entries] for mac, entries in record["tables"]["fdb"].items()}
    assert fdb == {e["mac"]: [e["dst"]] for e in fdb_oracle(swarm, n1)}
