"""Against a real Docker engine: a swarm overlay network, a service and a standalone container.

The engine is set up with the docker CLI (the product itself only talks to the
Engine API socket).  The tests skip, saying why, only when no engine answers.
Everything created here is removed afterwards, also when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import netns_shell, unique
from tests.dockerenv import docker, engine_or_skip, swarm_node, wait_for_path

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

IMAGE = "netns-shell-test-busybox:latest"


def _ensure_image() -> None:
    if docker("images", "-q", IMAGE):
        return
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is needed to make the test image offline")
    with tempfile.TemporaryDirectory() as root:
        tar_path = os.path.join(root, "rootfs.tar")
        with tarfile.open(tar_path, "w") as tar:
            tar.add(busybox, arcname="bin/busybox")
            for applet in ("sh", "sleep", "ip", "ping", "cat", "ls", "hostname"):
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        subprocess.run(["docker", "import", tar_path, IMAGE], check=True, capture_output=True)


@dataclass
class Swarm:
    network: str
    network_id: str
    service: str
    standalone: str
    containers: dict[str, dict] = field(default_factory=dict)  # name -> inspect

    @property
    def overlay_ns(self) -> str:
        return f"1-{self.network_id[:10]}"


def _wait_for_tasks(service: str, replicas: int, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}")
        running = ids.split()
        if len(running) >= replicas:
            return running
        time.sleep(0.5)
    raise RuntimeError(f"service {service} did not start {replicas} tasks")


@pytest.fixture(scope="module")
def swarm():
    engine_or_skip("to set up the test containers")
    _ensure_image()
    with swarm_node():
        yield from _swarm_setup()


def _swarm_setup() -> Iterator[Swarm]:
    name = unique("nst-ov")
    setup = Swarm(network=name, network_id="", service=f"{name}-svc", standalone=f"{name}-c")
    try:
        setup.network_id = docker("network", "create", "-d", "overlay", "--attachable", name)
        docker(
            "service",
            "create",
            "--detach",
            "--name",
            setup.service,
            "--replicas",
            "2",
            "--network",
            name,
            IMAGE,
            "sleep",
            "100000",
        )
        docker("run", "-d", "--name", setup.standalone, "--network", name, IMAGE, "sleep", "100000")
        ids = _wait_for_tasks(setup.service, 2)
        for cid in [*ids, setup.standalone]:
            info = json.loads(docker("inspect", cid))[0]
            setup.containers[info["Name"].lstrip("/")] = info
        wait_for_path(f"/var/run/docker/netns/{setup.overlay_ns}", "overlay namespace")
        yield setup
    finally:
        docker("service", "rm", setup.service, check=False)
        docker("rm", "-f", setup.standalone, check=False)
        _wait_gone(setup.service)
        for _ in range(30):  # the engine detaches the service's endpoints asynchronously
            if not docker("network", "rm", name, check=False) or not docker(
                "network", "ls", "-q", "--filter", f"name={name}"
            ):
                break
            time.sleep(1)


def _wait_gone(service: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not docker("ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={service}"):
            return
        time.sleep(0.5)


def _endpoint(info: dict, network: str) -> dict:
    return info["NetworkSettings"]["Networks"][network]


def _json(*args: str):
    run = netns_shell(*args)
    assert run.status == 0, run.stderr
    return run.json


def test_ns_names_the_overlay_after_its_network_and_sandboxes_after_containers(swarm):
    records = {r["name"]: r for r in _json("--json", "--list")}
    overlay = records[swarm.overlay_ns]
    assert overlay["kind"] == "docker overlay"
    assert overlay["network"] == swarm.network
    for name, info in swarm.containers.items():
        sandbox = os.path.basename(info["NetworkSettings"]["SandboxKey"])
        assert records[sandbox]["kind"] == "docker sandbox"
        assert records[sandbox]["container"] == name
        assert records[sandbox]["container_id"] == info["Id"]


def test_entering_by_container_name_and_id(swarm):
    info = swarm.containers[swarm.standalone]
    ip = _endpoint(info, swarm.network)["IPAddress"]
    for target in (swarm.standalone, info["Id"][:12]):
        links = _json(target, "--json", "-c", "links")
        assert any(a.get("local") == ip for link in links for a in link["addr_info"]), target
    by_network = _json(swarm.network, "--json", "-c", "links")
    assert {"br0", "vxlan0"} <= {link["ifname"] for link in by_network} or any(
        link["ifname"].startswith("vx-") for link in by_network
    )


def test_links_detail_names_the_container_behind_each_veth(swarm):
    links = _json(swarm.overlay_ns, "--json", "-c", "links -d")
    behind = {
        link.get("peer_container")
        for link in links
        if link.get("linkinfo", {}).get("info_kind") == "veth"
    }
    assert set(swarm.containers) <= behind
    run = netns_shell(swarm.overlay_ns, "-c", "links -d")
    assert f"({swarm.standalone})" in run.stdout


def test_find_container_ip_and_mac_names_the_container(swarm):
    for name, info in swarm.containers.items():
        endpoint = _endpoint(info, swarm.network)
        for needle in (endpoint["IPAddress"], endpoint["MacAddress"]):
            hits = _json("--json", "-c", f"find {needle}")
            assert any(h.get("container") == name for h in hits), (name, needle, hits)


def test_overlay_joins_mac_ip_and_container(swarm):
    rows = {r["mac"]: r for r in _json(swarm.overlay_ns, "--json", "-c", "overlay")}
    for name, info in swarm.containers.items():
        endpoint = _endpoint(info, swarm.network)
        row = rows[endpoint["MacAddress"]]
        assert row["container"] == name
        assert endpoint["IPAddress"] in row["ip"]
        assert row["location"] == "local" and not row["flags"]


def test_topology_shows_br0_with_its_ports(swarm):
    run = netns_shell("-c", "topology")
    assert run.status == 0, run.stderr
    block = run.stdout.split(f"{swarm.overlay_ns} ({swarm.network})\n", 1)[1].split("\n\n")[0]
    assert "(bridge)" in block and "(vxlan) vni" in block
    for name in swarm.containers:
        assert f"({name})" in block


def test_without_an_engine_everything_works_without_names(swarm, tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    run = netns_shell("--json", "--list", env=env)
    assert run.status == 0 and run.stderr == ""
    overlay = next(r for r in run.json if r["name"] == swarm.overlay_ns)
    assert "network" not in overlay


def test_an_engine_that_hangs_times_out_once(swarm, tmp_path):
    import socket
    import threading

    path = str(tmp_path / "hang.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def hold():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # accept, never answer
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        run = netns_shell("--list", env={"DOCKER_HOST": f"unix://{path}"})
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
    assert run.status == 0
    warnings = [line for line in run.stderr.splitlines() if "docker" in line]
    assert len(warnings) == 1 and "no answer" in warnings[0]
    assert elapsed < 15
    assert swarm.overlay_ns in run.stdout
