"""Entering namespaces by path, PID and name, checked against nsenter; threads stay home."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from netns_shell.namespace import NetNamespace, run_in_each
from netns_shell.netlink.links import list_links
from tests.conftest import netns_shell


def _ifnames_via_nsenter(*nsenter_args: str) -> list[str]:
    out = subprocess.check_output(["nsenter", *nsenter_args, "ip", "-j", "link", "show"])
    import json

    return [link["ifname"] for link in json.loads(out)]


def _ifnames(run) -> list[str]:
    assert run.status == 0, run.stderr
    return [link["ifname"] for link in run.json]


def test_enter_by_path_matches_nsenter(lab):
    path = lab.path("c1")
    assert _ifnames(netns_shell("--net", path, "--json", "-c", "links")) == _ifnames_via_nsenter(
        f"--net={path}"
    )
    assert _ifnames(netns_shell(f"--net={path}", "--json", "-c", "links")) == ["lo", "eth0"]


def test_enter_by_pid_matches_nsenter(process_netns):
    subprocess.run(
        [
            "nsenter",
            "-t",
            str(process_netns),
            "-n",
            "ip",
            "link",
            "add",
            "pidtest0",
            "type",
            "bridge",
        ],
        check=True,
    )
    mine = _ifnames(netns_shell("-t", str(process_netns), "--json", "-c", "links"))
    assert mine == _ifnames_via_nsenter("-t", str(process_netns), "-n")
    assert "pidtest0" in mine


def test_enter_by_name_and_unique_prefix(lab):
    by_name = netns_shell(lab.name("c2"), "--json", "-c", "links")
    prefix = lab.name("c2")[:-1]  # '...-c' is shared by c1..c3, so use the full unique one
    assert _ifnames(by_name) == _ifnames_via_nsenter(f"--net={lab.path('c2')}")
    assert netns_shell(prefix, "-c", "links").status != 0  # ambiguous
    unique_prefix = lab.overlay[:-1]  # '...-ov' names only the overlay namespace
    run = netns_shell(unique_prefix, "--json", "-c", "links")
    assert "vxlan0" in _ifnames(run)


def test_use_and_host_in_one_session(lab):
    run = netns_shell("--json", "-c", f"use {lab.name('c3')}; links; host; use pid:{os.getpid()}")
    assert run.status == 0, run.stderr
    (links,) = run.json_documents
    assert [link["ifname"] for link in links] == ["lo", "eth0"]
    assert links[1]["address"] == lab.members[2].mac


def test_handle_runs_inside_and_thread_stays_home(lab):
    home = os.stat("/proc/thread-self/ns/net").st_ino
    with NetNamespace.open_path(lab.path("c1")) as ns:
        inside = ns.run(lambda: os.stat("/proc/thread-self/ns/net").st_ino)
        assert inside == ns.inode == os.stat(lab.path("c1")).st_ino
        assert [r["ifname"] for r in list_links(ns)] == ["lo", "eth0"]
    assert os.stat("/proc/thread-self/ns/net").st_ino == home
    # no thread of this process is left in another namespace
    for tid in os.listdir("/proc/self/task"):
        assert os.stat(f"/proc/self/task/{tid}/ns/net").st_ino == home


def test_run_in_each_visits_every_namespace_and_returns(lab):
    home = os.stat("/proc/thread-self/ns/net").st_ino
    handles = [NetNamespace.open_path(lab.path(role)) for role in lab.roles]
    try:
        seen = [
            result
            for _, result in run_in_each(
                handles, lambda ns: os.stat("/proc/thread-self/ns/net").st_ino
            )
        ]
    finally:
        for ns in handles:
            ns.close()
    assert seen == [os.stat(lab.path(role)).st_ino for role in lab.roles]
    assert threading.active_count() >= 1
    assert os.stat("/proc/thread-self/ns/net").st_ino == home


def test_exec_runs_program_inside(lab):
    run = netns_shell("--net", lab.path("c1"), "-c", "exec ip -br addr show dev eth0")
    assert run.status == 0, run.stderr
    assert lab.members[0].ip in run.stdout


def test_exec_passes_exit_status(lab):
    assert netns_shell("--net", lab.path("c1"), "-c", "exec sh -c 'exit 7'").status == 7
    run = netns_shell("--net", lab.path("c1"), "-c", "exec no-such-program-xyz")
    assert run.status != 0
    assert len(run.stderr.strip().splitlines()) == 1 and "not found" in run.stderr


def test_exec_joins_uts_and_pid_namespaces_of_a_process():
    proc = subprocess.Popen(
        [
            "unshare",
            "--kill-child",
            "--uts",
            "--net",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            "hostname inner-host; exec sleep 300",
        ]
    )
    try:
        import time

        target, comm = None, ""
        deadline = time.monotonic() + 30
        while comm != "sleep":  # after `hostname`: the namespaces are complete
            assert time.monotonic() < deadline, f"unshare's child runs {comm!r}, not sleep"
            time.sleep(0.02)
            children = subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
            ).stdout.split()
            if children:
                target = int(children[0])
                with open(f"/proc/{target}/comm") as fh:
                    comm = fh.read().strip()
        run = netns_shell("-t", str(target), "-c", "exec -u hostname")
        assert run.stdout.strip() == "inner-host", run.stderr
        run = netns_shell("-t", str(target), "-c", "exec -p sh -c 'echo $$'")
        assert int(run.stdout.strip()) < 10  # a fresh PID namespace numbers from 1
        run = netns_shell("-t", str(target), "-c", "exec -a hostname")
        assert run.stdout.strip() == "inner-host"
    finally:
        proc.kill()
        proc.wait()


def test_exec_extra_namespaces_need_a_process_target(lab):
    run = netns_shell("--net", lab.path("c1"), "-c", "exec -u hostname")
    assert run.status == 1
    assert "-t PID" in run.stderr


@pytest.mark.parametrize("command", ["exec true", "exec -a true"])
def test_read_only_mode_refuses_exec(lab, command):
    run = netns_shell("--read-only", "--net", lab.path("c1"), "-c", command)
    assert run.status == 2
    assert "read-only" in run.stderr


def test_sigterm_ends_the_shell_and_its_program(lab):
    import signal
    import sys
    import time

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netns_shell",
            "--net",
            lab.path("c1"),
            "-c",
            "exec sleep 300; links",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            found = subprocess.run(
                ["pgrep", "-P", str(proc.pid), "-x", "sleep"], capture_output=True, text=True
            )
            if found.returncode == 0:
                break
            assert time.monotonic() < deadline, "the shell did not start `sleep`"
            time.sleep(0.02)
        sleeper = int(found.stdout.split()[0])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "eth0" not in out  # the next command did not run
    assert (
        not os.path.exists(f"/proc/{sleeper}")
        or open(f"/proc/{sleeper}/stat").read().split()[2] == "Z"
    )
