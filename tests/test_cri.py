"""Kubernetes pod names through the CRI, against a real containerd (tests/crienv.py).

The pods are made through the CRI itself (RunPodSandbox), in two Kubernetes
namespaces; netns-shell's answers are checked against the runtime's own
(PodSandboxStatus: netns path, pod IP, UID), the kernel (stat of the netns
file and of the sandbox process's /proc/PID/ns/net) and iproute2.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from netns_shell import protowire as pw
from netns_shell.cri import _from_verbose_info, pod_uid_of
from tests.conftest import netns_shell, unique
from tests.crienv import Containerd, Pod, private_containerd

pytestmark = pytest.mark.xdist_group("cri")


@dataclass
class Cluster:
    runtime: Containerd
    web: Pod  # shop/web
    db: Pod  # bank/db
    twin: Pod  # bank/web: same pod name as `web`, another Kubernetes namespace

    def cli(self, *args: str, **kwargs):
        return netns_shell("--cri", self.runtime.endpoint, "--no-pager", *args, **kwargs)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    token = unique("")
    with private_containerd() as runtime:
        yield Cluster(
            runtime,
            web=runtime.run_pod(f"web{token}", f"shop{token}"),
            db=runtime.run_pod(f"db{token}", f"bank{token}"),
            twin=runtime.run_pod(f"web{token}", f"bank{token}"),
        )


def _record_of(records: list[dict], path: str) -> dict:
    matches = [r for r in records if path in r.get("paths", ())]
    assert len(matches) == 1, (path, [r["name"] for r in records])
    return matches[0]


def _inode_inside(run) -> int:
    """The inode a `exec readlink /proc/self/ns/net` printed (net:[N])."""
    assert run.status == 0, run.stderr
    text = run.stdout.strip().splitlines()[-1]
    assert text.startswith("net:["), run.stdout
    return int(text[5:-1])


# ----------------------------------------------------------------------- ns


def test_ns_names_every_pod_as_its_runtime_does(cluster: Cluster) -> None:
    run = cluster.cli("--json", "-c", "ns")
    assert run.status == 0, run.stderr
    for pod in (cluster.web, cluster.db, cluster.twin):
        path = cluster.runtime.netns_path(pod)  # the runtime spec's network namespace
        record = _record_of(run.json, path)
        assert record["pod"] == f"{pod.namespace}/{pod.name}"
        assert (record["pod_name"], record["pod_namespace"]) == (pod.name, pod.namespace)
        assert record["pod_uid"] == pod.uid
        assert record["pod_sandbox_id"] == pod.id
        assert record["pod_ips"] == [cluster.runtime.pod_ip(pod)]
        assert record["kind"] == "cni pod"
        assert record["name"] == os.path.basename(path)
        # the kernel: the file's inode is the sandbox process's namespace
        pid = cluster.runtime.sandbox_pid(pod)
        assert record["inode"] == os.stat(path).st_ino == os.stat(f"/proc/{pid}/ns/net").st_ino
        assert pid in record["pids"]


def test_ns_table_shows_namespace_slash_pod(cluster: Cluster) -> None:
    run = cluster.cli("-c", "ns")
    assert run.status == 0, run.stderr
    for pod in (cluster.web, cluster.db):
        name = os.path.basename(cluster.runtime.netns_path(pod))
        line = next(line for line in run.stdout.splitlines() if name in line)
        assert f"{pod.namespace}/{pod.name}" in line


def test_runtime_endpoint_from_the_environment(cluster: Cluster) -> None:
    run = netns_shell(
        "--json", "-c", "ns", env={"CONTAINER_RUNTIME_ENDPOINT": cluster.runtime.endpoint}
    )
    assert run.status == 0, run.stderr
    record = _record_of(run.json, cluster.runtime.netns_path(cluster.db))
    assert record["pod"] == f"{cluster.db.namespace}/{cluster.db.name}"


def test_python_api_names_pods(cluster: Cluster, monkeypatch) -> None:
    from netns_shell import api

    monkeypatch.setenv("CONTAINER_RUNTIME_ENDPOINT", cluster.runtime.endpoint)
    records = api.namespaces(details=False)
    record = _record_of(records, cluster.runtime.netns_path(cluster.twin))
    assert record["pod"] == f"{cluster.twin.namespace}/{cluster.twin.name}"
    ip = cluster.runtime.pod_ip(cluster.twin)
    assert [h["pod"] for h in api.find(ip) if h["table"] == "address"] == [record["pod"]]
    with api.open_namespace(f"{cluster.twin.namespace}/{cluster.twin.name}") as ns:
        assert ns.inode == record["inode"]


def test_completion_offers_pod_names(cluster: Cluster) -> None:
    run = netns_shell(
        "--complete", "targets", env={"CONTAINER_RUNTIME_ENDPOINT": cluster.runtime.endpoint}
    )
    words = run.stdout.split("\0")
    pod = cluster.db
    assert f"{pod.namespace}/{pod.name}" in words and pod.name in words


def test_a_pod_name_with_escapes_reaches_the_terminal_escaped(cluster: Cluster) -> None:
    """The runtime passes on whatever metadata it was given: a hostile name is data."""
    name = f"evil\x1b[2J\x07{unique('')}"  # no ";": CNI_ARGS would refuse it
    pod = cluster.runtime.run_pod(name, "bad\x1b[31m")
    try:
        table = cluster.cli("-c", "ns")
        assert "\x1b" not in table.stdout and "\x07" not in table.stdout
        assert "bad\\x1b[31m/evil\\x1b[2J" in table.stdout
        records = cluster.cli("--json", "-c", "ns").json
        assert _record_of(records, cluster.runtime.netns_path(pod))["pod_name"] == name
    finally:
        cluster.runtime.remove_pod(pod)


# ------------------------------------------------------------- use / TARGET


@pytest.mark.parametrize(
    "how", ["name", "namespace/name", "prefix", "namespace/prefix", "uid", "sandbox id prefix"]
)
def test_use_enters_the_pod_namespace(cluster: Cluster, how: str) -> None:
    pod = cluster.db
    target = {
        "name": pod.name,
        "namespace/name": f"{pod.namespace}/{pod.name}",
        "prefix": pod.name[:-2],
        "namespace/prefix": f"{pod.namespace}/{pod.name[:4]}",
        "uid": pod.uid,
        "sandbox id prefix": pod.id[:13],
    }[how]
    run = cluster.cli("-c", f"use {target}; exec readlink /proc/self/ns/net")
    assert _inode_inside(run) == os.stat(cluster.runtime.netns_path(pod)).st_ino
    assert f"({pod.namespace}/{pod.name})" in run.stdout  # "now in cni-... (bank/db)"


def test_target_on_the_command_line_is_a_pod(cluster: Cluster) -> None:
    pod = cluster.web
    run = cluster.cli(f"{pod.namespace}/{pod.name}", "-c", "exec readlink /proc/self/ns/net")
    pid = cluster.runtime.sandbox_pid(pod)
    assert _inode_inside(run) == os.stat(f"/proc/{pid}/ns/net").st_ino


def test_a_pod_name_in_two_namespaces_is_ambiguous(cluster: Cluster) -> None:
    run = cluster.cli("-c", f"use {cluster.web.name}; exec true")
    assert run.status == 1
    assert "matches 2 namespaces" in run.stderr
    assert "rest of the line was not run" in run.stderr


# ------------------------------------------------------ find, links, topology


def test_find_a_pod_ip_names_the_pod(cluster: Cluster) -> None:
    pod = cluster.twin
    ip = cluster.runtime.pod_ip(pod)
    netns = os.path.basename(cluster.runtime.netns_path(pod))
    oracle = json.loads(subprocess.check_output(["ip", "-n", netns, "-j", "addr", "show"]))
    assert any(a["local"] == ip for link in oracle for a in link["addr_info"])
    run = cluster.cli("--json", "-c", f"find {ip}")
    assert run.status == 0, run.stderr
    hits = [r for r in run.json if r["table"] == "address"]
    assert [(h["netns"], h["pod"]) for h in hits] == [(netns, f"{pod.namespace}/{pod.name}")]
    table = cluster.cli("-c", f"find {ip}")
    assert f"{pod.namespace}/{pod.name}" in table.stdout


def _host_veth_peers(bridge: str) -> dict[str, str]:
    """Host veth on the pods' bridge -> the netns its peer is in, by iproute2: the veth's
    link_netnsid and the ids `ip netns list` gives the /var/run/netns files."""
    ports = json.loads(subprocess.check_output(["ip", "-j", "link", "show", "master", bridge]))
    ids = json.loads(subprocess.check_output(["ip", "-j", "netns", "list"]) or b"[]")
    by_id = {n["id"]: n["name"] for n in ids if "id" in n}
    return {p["ifname"]: by_id[p["link_netnsid"]] for p in ports if "link_netnsid" in p}


def test_links_d_and_topology_name_the_pod_behind_each_veth(cluster: Cluster) -> None:
    runtime = cluster.runtime
    expected = {
        os.path.basename(runtime.netns_path(p)): f"{p.namespace}/{p.name}"
        for p in (cluster.web, cluster.db, cluster.twin)
    }
    peers = _host_veth_peers(runtime.bridge)
    assert sorted(peers.values()) == sorted(expected)
    run = cluster.cli("--json", "-c", "links -d; topology")
    assert run.status == 0, run.stderr
    links, edges = run.json_documents
    for record in links:
        if record["ifname"] in peers:
            assert record["peer_netns"] == peers[record["ifname"]]
            assert record["peer_pod"] == expected[record["peer_netns"]]
    pod_edges = {
        (e["ifname"], e.get("peer_pod")) for e in edges if e.get("master") == runtime.bridge
    }
    assert pod_edges == {(ifname, expected[netns]) for ifname, netns in peers.items()}
    picture = cluster.cli("-c", "topology").stdout
    for name, pod in expected.items():
        assert f"@ {name} ({pod})" in picture


# ------------------------------------------------------------ without a CRI


def test_without_a_runtime_pods_are_named_by_uid_from_cgroups(cluster: Cluster, tmp_path) -> None:
    missing = f"unix://{tmp_path}/no-such.sock"
    run = netns_shell("--cri", missing, "--json", "-c", "ns")
    assert run.status == 0, run.stderr
    assert "pod names not available" in run.stderr
    for pod in (cluster.web, cluster.db):
        record = _record_of(run.json, cluster.runtime.netns_path(pod))
        assert "pod" not in record
        assert record["pod_uid"] == pod.uid  # the UID the runtime was given
        assert "no such socket" in record["pod_names_unavailable"]
        # the oracle: the sandbox process's cgroup path names that UID
        with open(f"/proc/{cluster.runtime.sandbox_pid(pod)}/cgroup") as fh:
            assert f"pod{pod.uid}" in fh.read()
    run = netns_shell(
        "--cri", missing, "-c", f"use {cluster.db.uid}; exec readlink /proc/self/ns/net"
    )
    assert _inode_inside(run) == os.stat(cluster.runtime.netns_path(cluster.db)).st_ino
    assert f"pod uid {cluster.db.uid}" in run.stdout


def test_without_any_runtime_socket_ns_says_names_are_not_available(cluster: Cluster) -> None:
    """No socket at all is no failure to warn about on every command: `ns` says it."""
    from netns_shell.cri import DEFAULT_ENDPOINTS

    present = [path for path in DEFAULT_ENDPOINTS if os.path.exists(path)]
    if present:
        pytest.skip(f"this host has a runtime socket ({present[0]})")
    env = {"CONTAINER_RUNTIME_ENDPOINT": ""}
    run = netns_shell("--no-pager", "-c", "ns", env=env)
    assert run.status == 0 and "cri" not in run.stderr, run.stderr
    assert run.stdout.rstrip().splitlines()[-1] == (
        "pods shown by UID only, their names are not available: "
        "no CRI socket found (give --cri ENDPOINT)"
    )
    name = os.path.basename(cluster.runtime.netns_path(cluster.web))
    line = next(line for line in run.stdout.splitlines() if name in line)
    assert f"pod uid {cluster.web.uid}" in line
    peers = netns_shell("--json", "-c", "links -d", env=env)
    assert peers.status == 0 and peers.stderr == "", peers.stderr


def test_a_hanging_runtime_does_not_hang_the_shell(cluster: Cluster, tmp_path) -> None:
    """A socket that accepts and never answers: the lookup gives up, the shell goes on."""
    path = str(tmp_path / "hang.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        run = netns_shell("--cri", path, "--json", "-c", "ns", timeout=60)
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
    assert run.status == 0, run.stderr
    assert took < 20, took
    assert "pod names not available" in run.stderr
    assert held, "netns-shell never connected to the runtime socket"
    record = _record_of(run.json, cluster.runtime.netns_path(cluster.web))
    assert record["pod_uid"] == cluster.web.uid  # still named by the cgroup fallback


DOCKER_CONTAINERD = "/run/docker/containerd/containerd.sock"


def test_a_containerd_without_its_cri_plugin_is_reported_not_fatal(cluster: Cluster) -> None:
    """Docker's own containerd runs with `disabled_plugins = ["cri"]`: it answers gRPC, but
    not the CRI (UNIMPLEMENTED for runtime.v1 and v1alpha2)."""
    if not os.path.exists(DOCKER_CONTAINERD):
        pytest.skip(f"no Docker-managed containerd at {DOCKER_CONTAINERD} (dockerd not running)")
    run = netns_shell("--cri", DOCKER_CONTAINERD, "--json", "-c", "ns")
    assert run.status == 0, run.stderr
    assert "serves no CRI" in run.stderr
    record = _record_of(run.json, cluster.runtime.netns_path(cluster.db))
    assert record["pod_uid"] == cluster.db.uid


# -------------------------------------------------------------------- pure


def test_protowire_round_trip_and_maps() -> None:
    data = pw.encode([(1, "abc"), (2, True), (3, [(1, "x"), (4, 300)]), (5, {"k": "v"}), (6, -1)])
    fields = pw.decode(data)
    assert pw.text(fields, 1) == "abc"
    assert pw.first(fields, 2) == 1
    nested = pw.decode(pw.first(fields, 3))
    assert (pw.text(nested, 1), pw.first(nested, 4)) == ("x", 300)
    assert pw.map_field(fields, 5) == {"k": "v"}
    assert pw.first(fields, 6) == (1 << 64) - 1


@pytest.mark.parametrize("bad", [b"\x0a\x05ab", b"\x08\xff", b"\x0b", b"\x00\x01", b"\x0d\x01"])
def test_protowire_refuses_malformed_messages(bad: bytes) -> None:
    with pytest.raises(pw.WireError):
        pw.decode(bad)


@pytest.mark.parametrize("raw", ["", "not json", "[]", '{"runtimeSpec": 3}', '{"pid": "7"}'])
def test_verbose_info_of_unknown_shape_names_nothing(raw: str) -> None:
    assert _from_verbose_info(raw) == (None, None)


def test_pod_uid_of_a_process_outside_kubernetes_is_none() -> None:
    assert pod_uid_of([os.getpid()]) is None
