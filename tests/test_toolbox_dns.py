"""`dns` against `dig` run inside the same namespace, on real servers: dnsmasq in a test
namespace (read through a holder process whose own resolv.conf differs from the host's),
and Docker's embedded DNS (127.0.0.11) answering for a real container."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _wait_for_own_netns, netns_shell, unique, wait_listening
from tests.dockerenv import docker, engine_or_skip


def _dig(path: str, *args: str) -> list[str]:
    out = subprocess.check_output(
        ["nsenter", f"--net={path}", "dig", "+short", "+tries=1", "+time=2", *args], text=True
    )
    return out.split("\n")[:-1]


@pytest.fixture
def dns_lab(netns) -> Iterator[tuple[str, int]]:
    """dnsmasq on 127.0.0.1 in `netns`, and a process in it whose resolv.conf points there."""
    conf = Path(tempfile.mkdtemp(prefix="nst-dns-"))
    (conf / "resolv.conf").write_text("nameserver 127.0.0.1\nsearch test\noptions ndots:1\n")
    (conf / "hosts").write_text("10.79.9.9 from-hosts-file\n")
    server = holder = None
    try:
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                netns,
                "dnsmasq",
                "--keep-in-foreground",
                "-C",
                "/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--pid-file=",
                "--user=root",
                "--address=/nosuch.test/",
                "--host-record=web.test,10.79.0.5,fd79::5",
                "--srv-host=_http._tcp.web.test,web.test,8080,1,5",
                "--txt-record=web.test,hello dns",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        holder = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"mount --bind {conf}/resolv.conf /etc/resolv.conf && "
                f"mount --bind {conf}/hosts /etc/hosts && "
                f"exec nsenter --net=/var/run/netns/{netns} sleep 300",
            ],
        )
        _wait_for_own_netns(holder.pid)
        wait_listening(netns, 53, udp=True)  # before, dig is refused (and exits 9)
        yield netns, holder.pid
    finally:
        for proc in (holder, server):
            if proc is not None:
                proc.kill()
                proc.wait()
        for name in ("resolv.conf", "hosts"):
            (conf / name).unlink(missing_ok=True)
        conf.rmdir()


def _dns(*args: str) -> tuple[list[dict], str]:
    run = netns_shell("--json", *args)
    assert run.status == 0, run.stderr
    return run.json, run.stderr


def test_dns_uses_the_holders_resolver_and_matches_dig(dns_lab):
    netns, pid = dns_lab
    path = f"/var/run/netns/{netns}"
    # `web` is found through the holder's search list (the host's resolv.conf knows nothing)
    records, notes = _dns("-t", str(pid), "-c", "dns web")
    assert [r["data"] for r in records] == _dig(path, "@127.0.0.1", "web.test")
    assert records[0]["name"] == "web.test." and records[0]["server"] == "127.0.0.1"
    assert f"/etc/resolv.conf of PID {pid}" in notes and "NOERROR from 127.0.0.1" in notes
    for qtype in ("AAAA", "TXT", "SRV"):
        name = "_http._tcp.web.test" if qtype == "SRV" else "web.test"
        records, _ = _dns("-t", str(pid), "-c", f"dns {name} -t {qtype}")
        assert [r["data"] for r in records] == _dig(path, "@127.0.0.1", name, qtype), qtype
        assert {r["type"] for r in records} == {qtype}
    records, _ = _dns("--net", path, "-c", "dns 10.79.0.5 @127.0.0.1")
    assert [r["data"] for r in records] == _dig(path, "@127.0.0.1", "-x", "10.79.0.5")


def test_dns_nxdomain_and_silent_server(dns_lab):
    netns, pid = dns_lab
    run = netns_shell("-t", str(pid), "-c", "dns nosuch.test.")
    assert run.status == 1 and "NXDOMAIN from 127.0.0.1" in run.stdout
    run = netns_shell("--net", f"/var/run/netns/{netns}", "-c", "dns web.test @127.0.0.9")
    assert run.status == 1 and "127.0.0.9: Connection refused" in run.stdout


def test_ping_resolves_with_the_namespaces_resolver(dns_lab):
    _, pid = dns_lab
    run = netns_shell("-t", str(pid), "--json", "-c", "ping -c 1 -W 0.2 web")
    assert run.json[0]["to"] == "10.79.0.5"
    run = netns_shell("-t", str(pid), "--json", "-c", "ping -c 1 -W 0.2 from-hosts-file")
    assert run.json[0]["to"] == "10.79.9.9"


@pytest.fixture(scope="module")
def two_containers() -> Iterator[tuple[str, str, str]]:
    engine_or_skip("to start containers")
    from tests.test_docker import IMAGE, _ensure_image

    _ensure_image()
    name = unique("nst-dn")
    docker("network", "create", name)
    try:
        for suffix in ("a", "b"):
            docker(
                "run",
                "-d",
                "--name",
                f"{name}{suffix}",
                "--network",
                name,
                IMAGE,
                "sleep",
                "100000",
            )
        sandbox = docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", f"{name}a")
        yield sandbox, f"{name}a", f"{name}b"
    finally:
        for suffix in ("a", "b"):
            docker("rm", "-f", f"{name}{suffix}", check=False)
        docker("network", "rm", name, check=False)


def test_dns_docker_embedded_server(two_containers):
    sandbox, first, second = two_containers
    records, notes = _dns("--net", sandbox, "-c", f"dns {second}")
    assert [r["data"] for r in records] == _dig(sandbox, "@127.0.0.11", second)
    assert records[0]["server"] == "127.0.0.11" and "NOERROR from 127.0.0.11" in notes
    run = netns_shell(first, "--json", "-c", f"ping -c 1 {second}")
    assert run.status == 0, run.stderr
    assert run.json[0]["from"] == records[0]["data"]
