"""`dns` on a real 3-node swarm: Docker's embedded resolver (127.0.0.11) answering inside a
container's namespace for services, their tasks and containers on other nodes.

The oracle is the engine (`docker network inspect -v`: the service's VIP and its tasks'
EndpointIPs) and `dig` run inside the same namespace (nsenter --net) against 127.0.0.11.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import netns_shell
from tests.swarmenv import engine_oracle

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("swarm")]


def _sandbox(node, container: str) -> str:
    return json.loads(node.docker("inspect", container))[0]["NetworkSettings"]["SandboxKey"]


def _dig(sandbox: str, name: str) -> list[str]:
    out = subprocess.run(
        ["nsenter", f"--net={sandbox}", "dig", "+short", "@127.0.0.11", name, "A"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line for line in out.split() if line[0].isdigit())


def _answers(sandbox: str, name: str) -> tuple[list[str], dict]:
    run = netns_shell("--net", sandbox, "--json", "-c", f"dns {name}", timeout=60)
    assert run.status == 0, run.stderr
    addresses = sorted(r.get("address") or r.get("data") for r in run.json if r.get("type") == "A")
    return addresses, run.json[0] if run.json else {}


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig (bind9-dnsutils) is needed")
def test_dns_answers_like_the_embedded_resolver_for_services_tasks_and_containers(docker_swarm):
    swarm = docker_swarm
    swarm.wait_converged()
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    sandbox = _sandbox(n1, swarm.containers[n1.name])
    view = engine_oracle(swarm, n1)
    service = view["Services"][swarm.service_name]
    vip = service["VIP"].split("/")[0]
    tasks = sorted(t["EndpointIP"] for t in service["Tasks"])
    assert len(tasks) == len(swarm.nodes)
    other = swarm.containers[n2.name]
    other_ip = next(
        c["IPv4Address"].split("/")[0]
        for c in engine_oracle(swarm, n2)["Containers"].values()
        if c["Name"] == other
    )
    for name, expected in (
        (swarm.service_name, [vip]),
        (f"tasks.{swarm.service_name}", tasks),
        (other, [other_ip]),
    ):
        assert _dig(sandbox, name) == expected, name  # the oracle agrees with the engine
        addresses, first = _answers(sandbox, name)
        assert addresses == expected, (name, first)
        assert "127.0.0.11" in json.dumps(first), first  # it says which server answered


def test_firewall_shows_the_load_balancers_mangle_marks(docker_swarm):
    """In the overlay's lb_ namespace (and a container with a service VIP) the engine marks
    packets to each VIP in mangle (iptables); `firewall -t mangle` shows those rules with
    their counters as `iptables-save -c` does."""
    swarm = docker_swarm
    swarm.wait_converged()
    n1 = swarm.nodes[0]
    sandbox = _sandbox(n1, swarm.containers[n1.name])
    view = engine_oracle(swarm, n1)
    vip = view["Services"][swarm.service_name]["VIP"].split("/")[0]
    saved = subprocess.run(
        ["nsenter", f"--net={sandbox}", "iptables-save", "-c", "-t", "mangle"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    marked = [line for line in saved.splitlines() if vip in line and "MARK" in line]
    if not marked and not os.path.exists("/proc/net/ip_vs"):
        pytest.skip("no ip_vs in this kernel: the engine programs no load balancer (no VIP marks)")
    assert marked, saved  # the oracle: the engine marks the VIP in mangle
    run = netns_shell("--net", sandbox, "--json", "-c", "firewall -t mangle", timeout=60)
    assert run.status == 0, run.stderr
    rules = [r for r in run.json if r.get("kind") == "rule"]
    mine = [r for r in rules if vip in json.dumps(r) and "MARK" in json.dumps(r).upper()]
    assert len(mine) == len(marked), (rules, marked)
    text = netns_shell("--net", sandbox, "-c", "firewall -t mangle", timeout=60)
    assert vip in text.stdout and "MARK" in text.stdout.upper(), text.stdout
