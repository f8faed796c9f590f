"""The Python API: the same queries as the commands, and a python-nsenter style Namespace."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

import netns_shell
from netns_shell import api
from netns_shell.errors import NamespaceError
from tests.conftest import bridge_json, ip_json
from tests.conftest import netns_shell as run_shell


def test_open_by_name_path_and_pid(lab, process_netns):
    with api.open_namespace(lab.name("c1")) as by_name:
        assert by_name.inode == os.stat(lab.path("c1")).st_ino
    with api.open_namespace(lab.path("c1")) as by_path:
        assert by_path.inode == os.stat(lab.path("c1")).st_ino
    with api.open_namespace(process_netns) as by_pid:
        assert by_pid.inode == os.stat(f"/proc/{process_netns}/ns/net").st_ino
    with pytest.raises(NamespaceError):
        api.open_namespace(lab.name("c1") + "-no-such")


def test_queries_return_the_records_of_the_commands(lab):
    assert [r["ifname"] for r in api.links(lab.path("c1"))] == ["lo", "eth0"]
    assert api.fdb(lab.overlay, dev="vxlan0") == [
        {"ifname": "vxlan0", **r}
        for r in bridge_json("-n", lab.overlay, "fdb", "show", "dev", "vxlan0")
    ]
    assert api.neighbours(lab.overlay, family=4) == ip_json("-n", lab.overlay, "-4", "neigh")
    assert api.routes(lab.overlay, table="all", family=4) == ip_json(
        "-n", lab.overlay, "-4", "route", "show", "table", "all"
    )
    veths = [r for r in api.links(lab.overlay, detail=True) if r["ifname"] == "veth0"]
    assert veths[0]["peer_netns"] == lab.name("c1")
    # a handle can be reused across calls
    with api.open_namespace(lab.overlay) as ns:
        assert api.links(ns, name="br0")[0]["ifname"] == "br0"
        assert ns.fd >= 0


def test_namespaces_and_find(lab):
    names = {r["name"] for r in api.namespaces(details=False)}
    assert set(lab.roles) <= {n.rsplit("-", 1)[-1] for n in names if n.startswith(lab.base)}
    hits = api.find(lab.members[0].ip)
    assert (lab.name("c1"), "address") in {(h["netns"], h["table"]) for h in hits}


def test_package_attributes_are_the_api():
    assert netns_shell.links is api.links
    assert netns_shell.Namespace is api.Namespace
    with pytest.raises(AttributeError):
        netns_shell.no_such_thing  # noqa: B018


def test_namespace_context_moves_only_the_calling_thread(lab):
    home = os.stat("/proc/thread-self/ns/net").st_ino
    target = os.stat(lab.path("c2")).st_ino
    seen_by_other_thread = []
    with api.Namespace(lab.path("c2"), "net"):
        assert os.stat("/proc/thread-self/ns/net").st_ino == target
        out = subprocess.check_output(["ip", "-br", "addr", "show", "dev", "eth0"], text=True)
        assert lab.members[1].ip in out  # a child started here runs in the namespace
        worker = threading.Thread(
            target=lambda: seen_by_other_thread.append(os.stat("/proc/thread-self/ns/net").st_ino)
        )
        worker.start()
        worker.join()
    assert os.stat("/proc/thread-self/ns/net").st_ino == home
    # a thread started inside inherits the namespace of its creator (architecture.md fact 1)
    assert seen_by_other_thread == [target]


def test_namespace_context_by_pid_and_errors(process_netns):
    with api.Namespace(process_netns, "net"):
        assert (
            os.stat("/proc/thread-self/ns/net").st_ino
            == os.stat(f"/proc/{process_netns}/ns/net").st_ino
        )
    with pytest.raises(NamespaceError, match="not a net namespace"):
        with api.Namespace("/proc/self/ns/uts", "net"):
            pass
    with pytest.raises(Exception, match="unknown namespace type"):
        api.Namespace(1, "bogus")


def test_capture_to_file(fresh_lab, tmp_path):
    c1, c2 = fresh_lab.members[0], fresh_lab.members[1]
    path = tmp_path / "api.pcap"
    captured = threading.Event()

    def traffic():  # until the capture has its 3 packets: it may take long to start
        deadline = time.monotonic() + 60
        while not captured.is_set() and time.monotonic() < deadline:
            run_shell("--net", fresh_lab.path("c1"), "-c", f"ping -c 3 {c2.ip}")

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        result = api.capture_to_file(
            fresh_lab.path("c2"), str(path), bpf="icmp[icmptype] == icmp-echo", count=3, duration=60
        )
    finally:
        captured.set()
        sender.join()
    assert result["captured"] == 3 and result["interface"] == "eth0"
    assert result["reason"] == "count" and result["dropped"] == 0
    rows = subprocess.check_output(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "ip.src"], text=True
    ).split()
    assert rows == [c1.ip] * 3


def test_a_fresh_interpreter_imports_the_cli_and_the_api():
    import subprocess
    import sys

    code = "import netns_shell.cli, netns_shell; print(netns_shell.find.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "netns_shell.api", out.stderr
    version = subprocess.run(
        [sys.executable, "-m", "netns_shell", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
