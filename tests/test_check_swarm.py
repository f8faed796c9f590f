"""`check` on a real 3-node swarm: each fault planted for real, the right kind named.

Each planted fault is compared with the kernel (`bridge -j fdb`, `ip -j neigh` via
nsenter) and with the engine (`docker -H NODE network inspect -v`), and removed
afterwards, also when the test fails.  Faults that break the cluster (a cut
link, a killed dockerd) get a swarm of their own.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from netns_shell.engine_view import overlay_mac
from netns_shell.swarm import SUBNET, leftovers
from tests.swarmenv import (
    docker_clients,
    engine_oracle,
    fdb_oracle,
    in_overlay,
    interrupted_check,
    interrupted_in_the_shell,
    neigh_oracle,
    nodes_option,
    remote_tasks,
    run_check,
    running_swarm,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.xdist_group("swarm")]


def _kinds(findings: list[dict]) -> set[tuple[str, str]]:
    return {(f["kind"], f["node"]) for f in findings}


def _container_ip(swarm, node) -> str:
    """The IP of the container pinned on `node`, from the engine."""
    view = engine_oracle(swarm, node)
    name = swarm.containers[node.name]
    return next(
        c["IPv4Address"].split("/")[0] for c in view["Containers"].values() if c["Name"] == name
    )


@pytest.fixture
def swarm(docker_swarm):
    """The shared swarm, healthy before the test and after it (the test undoes its fault)."""
    docker_swarm.wait_converged()
    yield docker_swarm
    docker_swarm.wait_converged()


def test_a_healthy_cluster_has_no_findings(swarm):
    for node in swarm.nodes:  # the oracle agrees the tables hold what the engine says
        remote = remote_tasks(swarm, node)
        neigh = neigh_oracle(swarm, node)
        fdb = {e["mac"]: e["dst"] for e in fdb_oracle(swarm, node)}
        for ip, vtep in remote.items():
            assert neigh[ip]["lladdr"] == overlay_mac(ip)
            assert fdb[overlay_mac(ip)] == vtep
    run = run_check(swarm, "--cluster")
    assert run.status == 0, run.stderr
    assert run.json == []
    assert "0 findings on 3 node(s)" in run.stderr
    text = run_check(swarm, "--cluster").stderr
    assert "clean" in text


def test_stale_fdb_entry(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    mac = overlay_mac(f"{SUBNET}.200")
    in_overlay(swarm, n1, "bridge", "fdb", "add", mac, "dev", "vxlan0", "dst", n2.addr,
               "self", "permanent")  # fmt: skip
    try:
        assert any(e["mac"] == mac for e in fdb_oracle(swarm, n1))
        run = run_check(swarm, first=n1)
        assert run.status == 1
        assert [(f["kind"], f["node"], f["mac"], f["vtep"]) for f in run.json] == [
            ("stale-fdb", "n1", mac, n2.addr)
        ]
    finally:
        in_overlay(swarm, n1, "bridge", "fdb", "del", mac, "dev", "vxlan0", "dst", n2.addr,
                   "self")  # fmt: skip


def test_stale_neighbour(swarm):
    n1 = swarm.nodes[0]
    ip = f"{SUBNET}.201"
    in_overlay(swarm, n1, "ip", "neigh", "add", ip, "lladdr", overlay_mac(ip), "dev", "vxlan0",
               "nud", "permanent")  # fmt: skip
    try:
        assert ip in neigh_oracle(swarm, n1)
        assert ip not in str(engine_oracle(swarm, n1))
        run = run_check(swarm, "--cluster")
        assert run.status == 1
        assert [(f["kind"], f["node"], f["ip"]) for f in run.json] == [("stale-neigh", "n1", ip)]
    finally:
        in_overlay(swarm, n1, "ip", "neigh", "del", ip, "dev", "vxlan0")


def test_missing_fdb_and_neighbour(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    ip = _container_ip(swarm, n1)
    mac = overlay_mac(ip)
    in_overlay(swarm, n2, "bridge", "fdb", "del", mac, "dev", "vxlan0", "dst", n1.addr, "self")
    in_overlay(swarm, n2, "ip", "neigh", "del", ip, "dev", "vxlan0")
    try:
        assert remote_tasks(swarm, n2)[ip] == n1.addr  # the engine still knows it
        assert mac not in {e["mac"] for e in fdb_oracle(swarm, n2)}
        run = run_check(swarm, first=n2)
        assert run.status == 1
        found = {(f["kind"], f["node"], f["ip"], f["vtep"]) for f in run.json}
        assert found == {("missing-fdb", "n2", ip, n1.addr), ("missing-neigh", "n2", ip, n1.addr)}
    finally:
        in_overlay(swarm, n2, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst", n1.addr,
                   "self", "permanent")  # fmt: skip
        in_overlay(swarm, n2, "ip", "neigh", "replace", ip, "lladdr", mac, "dev", "vxlan0",
                   "nud", "permanent")  # fmt: skip


def test_wrong_vtep(swarm):
    n1, n2, n3 = swarm.nodes
    ip = _container_ip(swarm, n2)
    mac = overlay_mac(ip)
    in_overlay(swarm, n1, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst", n3.addr,
               "self", "permanent")  # fmt: skip
    try:
        assert {e["mac"]: e["dst"] for e in fdb_oracle(swarm, n1)}[mac] == n3.addr
        run = run_check(swarm, first=n1)
        assert run.status == 1
        [finding] = run.json
        assert (finding["kind"], finding["ip"], finding["vtep"]) == ("wrong-vtep", ip, n3.addr)
        assert finding["expected"] == f"dst {n2.addr}"
    finally:
        in_overlay(swarm, n1, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst", n2.addr,
                   "self", "permanent")  # fmt: skip


def test_mac_ip_mismatch(swarm):
    n1, n3 = swarm.nodes[0], swarm.nodes[2]
    ip = _container_ip(swarm, n3)
    wrong = overlay_mac(f"{SUBNET}.202")
    in_overlay(swarm, n1, "ip", "neigh", "replace", ip, "lladdr", wrong, "dev", "vxlan0",
               "nud", "permanent")  # fmt: skip
    try:
        assert neigh_oracle(swarm, n1)[ip]["lladdr"] == wrong
        run = run_check(swarm, first=n1)
        assert [(f["kind"], f["ip"], f["mac"]) for f in run.json] == [
            ("mac-ip-mismatch", ip, wrong)
        ]
    finally:
        in_overlay(swarm, n1, "ip", "neigh", "replace", ip, "lladdr", overlay_mac(ip), "dev",
                   "vxlan0", "nud", "permanent")  # fmt: skip


def test_learned_only(swarm):
    n2, n3 = swarm.nodes[1], swarm.nodes[2]
    ip = _container_ip(swarm, n3)
    mac = overlay_mac(ip)
    in_overlay(swarm, n2, "bridge", "fdb", "del", mac, "dev", "vxlan0", "dst", n3.addr, "self")
    in_overlay(swarm, n2, "bridge", "fdb", "add", mac, "dev", "vxlan0", "dst", n3.addr, "self",
               "dynamic")  # fmt: skip
    try:
        entry = next(e for e in fdb_oracle(swarm, n2) if e["mac"] == mac)
        assert entry.get("state") != "permanent"  # iproute2 shows a learned entry
        run = run_check(swarm, first=n2)
        assert [(f["kind"], f["node"], f["ip"]) for f in run.json] == [("learned-only", "n2", ip)]
    finally:
        in_overlay(swarm, n2, "bridge", "fdb", "replace", mac, "dev", "vxlan0", "dst", n3.addr,
                   "self", "permanent")  # fmt: skip


def test_vtep_unreachable(swarm):
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    rule = ["ip", "-n", n1.netns, "route", "add", "unreachable", f"{n2.addr}/32"]
    import subprocess

    subprocess.run(rule, check=True)
    try:
        run = run_check(swarm, first=n1)
        assert [(f["kind"], f["vtep"]) for f in run.json] == [("vtep-unreachable", n2.addr)]
    finally:
        subprocess.run(["ip", "-n", n1.netns, "route", "del", "unreachable", f"{n2.addr}/32"])


def test_blocked_vxlan_leaves_the_control_plane_unchanged(swarm):
    """architecture.md fact 13: dropping UDP 4789 changes no table: `check` has nothing to say."""
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    undo = swarm.block_vxlan(n1, n2)
    try:
        run = run_check(swarm, "--cluster")
        assert (run.status, run.json) == (0, [])
    finally:
        undo()


def test_a_frozen_node_is_unreachable_and_the_others_answer(swarm):
    n3 = swarm.nodes[2]
    thaw = swarm.freeze(n3)
    try:
        started = time.monotonic()
        run = run_check(swarm, "--cluster", "--timeout", "1")
        took = time.monotonic() - started
    finally:
        thaw()
    assert took < 10
    kinds = _kinds(run.json)
    assert ("node-unreachable", "n3") in kinds
    assert "no answer within 1 s" in run.json[0]["found"]
    assert "n1 " in run.stderr and "n2 " in run.stderr  # the others' digests


def test_ctrl_c_stops_a_cluster_check_waiting_for_a_frozen_node(swarm):
    """n3 frozen: its engine's socket takes the connection and never answers.  SIGINT while
    `check --cluster --timeout 15` waits for it (3 s in: later than the start-up of Python on
    a busy machine) ends `-c` with 130 at once, and Ctrl-C in the shell brings the prompt
    back at once; no docker client is left running."""
    n3 = swarm.nodes[2]
    line = f"check --cluster --nodes {nodes_option(swarm)} --timeout 15"
    before = docker_clients(swarm)
    thaw = swarm.freeze(n3)
    try:
        status, took, err = interrupted_check(line, 3.0)
        prompt_after, shown = interrupted_in_the_shell(line, 2.0)
    finally:
        thaw()
    print(
        f"-c: exit {status} {took:.2f} s after SIGINT; the shell: prompt after {prompt_after:.2f} s"
    )
    assert status == 130 and "Traceback" not in err, err
    assert took < 2.5, err
    assert prompt_after < 2.5, shown
    assert docker_clients(swarm) - before == set()


def test_overlay_names_the_task_and_node_of_remote_entries(swarm):
    from tests.conftest import netns_shell

    n1 = swarm.nodes[0]
    run = netns_shell(
        f"--net={swarm.overlay_ns(n1)}", "--json", "-c", "overlay",
        env={"DOCKER_HOST": n1.endpoint},
    )  # fmt: skip
    assert run.status == 0, run.stderr
    rows = {r["mac"]: r for r in run.json}
    view = engine_oracle(swarm, n1)
    peers = {p["IP"]: p["Name"] for p in view["Peers"]}
    tasks = [t for s in view["Services"].values() for t in s["Tasks"]]
    remote = [t for t in tasks if t["Info"]["Host IP"] != n1.addr]
    assert len(remote) == 4  # two nodes, a container and a service task each
    for task in remote:
        row = rows[overlay_mac(task["EndpointIP"])]
        assert row["location"] == "remote"
        assert (row["container"], row["node"]) == (task["Name"], peers[task["Info"]["Host IP"]])
    assert {r["node"] for r in rows.values() if r["location"] == "local"} == {None}


@pytest.fixture(scope="module")
def breakable_swarm():
    with running_swarm(3) as swarm:
        yield swarm
    assert all(not v for v in leftovers(swarm.base).values()), leftovers(swarm.base)


def _poll(swarm, want, timeout: float = 60) -> list[dict]:  # gossip is slower when loaded
    """`check --cluster` until a finding satisfies `want`; every run's findings."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = run_check(swarm, "--cluster", "--timeout", "2")
        seen += run.json
        if any(want(f) for f in run.json):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"not reported within {timeout} s: {sorted(_kinds(seen))}")


def test_gossip_blocked_both_ways_is_peer_missing(breakable_swarm):
    """TCP/UDP 7946 dropped both ways between n3 and all others (VXLAN 4789 and the manager's
    2377 kept): n1 and n2 drop n3 from Peers (and its endpoints with it) while n3's engine
    still answers and lists its endpoints: peer-missing on n1 and n2, object n3's VTEP."""
    swarm = breakable_swarm
    n1, _n2, n3 = swarm.nodes
    for chain, port in (("INPUT", "--dport"), ("INPUT", "--sport"), ("OUTPUT", "--dport"),
                        ("OUTPUT", "--sport")):  # fmt: skip
        for proto in ("tcp", "udp"):
            subprocess.run(["nsenter", f"--net={n3.netns_path}", "iptables", "-w", "-I", chain,
                            "-p", proto, port, "7946", "-j", "DROP"], check=True)  # fmt: skip
    seen = _poll(swarm, lambda f: (f["kind"], f["node"]) == ("peer-missing", "n1"))
    assert n3.addr not in {p["IP"] for p in engine_oracle(swarm, n1)["Peers"]}
    assert "Ready" in swarm.manager.docker("node", "ls", "--filter", "name=n3",
                                           "--format", "{{.Status}}")  # fmt: skip
    missing = {(f["node"], f["vtep"]) for f in seen if f["kind"] == "peer-missing"}
    assert ("n1", n3.addr) in missing and missing <= {("n1", n3.addr), ("n2", n3.addr)}
    # left blocked: the next tests cut n3 and kill n2 on this swarm


def test_a_cut_node_makes_the_views_differ(breakable_swarm):
    """Fact 13: the others drop a cut node's endpoints from gossip and kernel together,
    while the cut node still lists theirs: the engines' views differ."""
    swarm = breakable_swarm
    n1, _n2, n3 = swarm.nodes
    c3 = _container_ip(swarm, n3)
    swarm.cut(n3)  # left cut: the next test kills another node of this swarm
    seen = _poll(swarm, lambda f: (f["kind"], f["node"], f["ip"]) == ("views-differ", "n1", c3))
    assert c3 in {t["EndpointIP"] for s in engine_oracle(swarm, n3)["Services"].values()
                  for t in s["Tasks"]}  # fmt: skip
    assert c3 not in remote_tasks(swarm, n1)
    assert overlay_mac(c3) not in {e["mac"] for e in fdb_oracle(swarm, n1)}
    on_n1 = {f["kind"] for f in seen if f["node"] == "n1"}
    # nothing stale or missing is left behind on n1 (n3 is out of its gossip: peer-missing)
    assert on_n1 <= {"views-differ", "peer-missing"}, on_n1


def test_a_killed_engine_is_unreachable_and_its_entries_stay(breakable_swarm):
    swarm = breakable_swarm
    n1, n2 = swarm.nodes[0], swarm.nodes[1]
    before = fdb_oracle(swarm, n2)
    swarm.kill_engine(n2)
    run = run_check(swarm, "--cluster", "--timeout", "2")
    assert run.status == 1
    unreachable = [f for f in run.json if f["kind"] == "node-unreachable"]
    assert [f["node"] for f in unreachable] == ["n2"]
    assert fdb_oracle(swarm, n2) == before  # fact 13: its own permanent entries stay
    # n1's engine drops n2 from its gossip, and its kernel entries with it
    deadline = time.monotonic() + 30
    while n2.addr in {p["IP"] for p in engine_oracle(swarm, n1)["Peers"]}:
        assert time.monotonic() < deadline, "n1 still gossips with the killed node"
        time.sleep(0.5)
    _poll(swarm, lambda f: True)  # findings remain (n2 unreachable)
    run = run_check(swarm, "--cluster", "--timeout", "2")
    on_n1 = [f for f in run.json if f["node"] == "n1" and f["vtep"] == n2.addr]
    assert on_n1 == [] or all(f["kind"] == "peer-missing" for f in on_n1), on_n1


def test_demo_swarm_checks_clean_and_leaves_nothing():
    import re
    import subprocess
    import sys

    from netns_shell.swarm import dockerd_missing

    if dockerd_missing():
        pytest.skip(dockerd_missing())
    proc = subprocess.run(
        [sys.executable, "-m", "netns_shell", "--demo", "swarm", "--json", "-c",
         "overlay; check --cluster"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    base = re.search(r"everything named (\S+)\*", proc.stderr).group(1)
    assert "0 findings on 3 node(s)" in proc.stderr
    rows, end = json.JSONDecoder().raw_decode(proc.stdout)
    assert json.loads(proc.stdout[end:]) == []  # check --cluster: no findings
    assert any(r["location"] == "remote" for r in rows)  # `overlay` ran in n1's namespace
    assert all(not v for v in leftovers(base).values()), leftovers(base)
