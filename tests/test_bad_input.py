"""Every bad input: one clear line on stderr, a non-zero status, no traceback, nothing created."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, netns_shell, unique


def _one_line_error(run, status: int, *fragments: str) -> None:
    assert run.status == status, (run.status, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert lines[0].startswith("netns-shell: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_path_creates_nothing(tmp_path):
    name = unique("no-such-namespace-")
    path = tmp_path / name
    _one_line_error(netns_shell("--net", str(path), "-c", "links"), 1, str(path), "no such file")
    assert not path.exists()
    # other tests create namespaces meanwhile: only this name matters
    after = set(os.listdir("/var/run/netns")) if os.path.isdir("/var/run/netns") else set()
    assert not any(name in n for n in after), after


def test_mistyped_name_creates_nothing():
    name = unique("nst-typo")
    _one_line_error(netns_shell(name, "-c", "links"), 1, "no namespace named")
    assert not os.path.exists(f"/var/run/netns/{name}")
    _one_line_error(netns_shell("-c", f"use {name}"), 1, "no namespace named")
    assert not os.path.exists(f"/var/run/netns/{name}")


def test_directory_as_net(tmp_path):
    _one_line_error(netns_shell("--net", str(tmp_path), "-c", "links"), 1, "is a directory")


def test_regular_file_as_net(tmp_path):
    path = tmp_path / "file"
    path.write_text("not a namespace\n")
    _one_line_error(netns_shell("--net", str(path), "-c", "links"), 1, "not a namespace file")


def test_empty_file_says_nothing_is_mounted_on_it(tmp_path):
    """On the host an empty netns file is a leftover: no talk of container volumes."""
    path = tmp_path / "1-abcdefghij"
    path.touch()
    run = netns_shell("--net", str(path), "-c", "links")
    _one_line_error(run, 1, "empty file", "nothing is mounted on it")
    assert ":rslave" not in run.stderr


MOUNT_AND_RUN = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'


def test_empty_file_on_a_bind_mounted_directory_hints_rslave(tmp_path):
    """In a container, the netns directory is a volume (a bind mount of the host's): an
    empty file there is a namespace mount that did not propagate into it."""
    source, volume = tmp_path / "host", tmp_path / "volume"
    source.mkdir()
    volume.mkdir()
    (source / "1-abcdefghij").touch()
    argv = [sys.executable, "-m", "netns_shell", "--net", f"{volume}/1-abcdefghij", "-c", "links"]
    run = subprocess.run(  # a private mount namespace: the bind mount goes when it ends
        ["unshare", "-m", "sh", "-c", MOUNT_AND_RUN, "sh", str(source), str(volume), *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "empty file" in run.stderr and ":rslave" in run.stderr, run.stderr
    assert len(run.stderr.splitlines()) == 1


@pytest.mark.parametrize("kind", ["mnt", "uts", "pid"])
def test_other_namespace_type_as_net(kind):
    _one_line_error(
        netns_shell("--net", f"/proc/self/ns/{kind}", "-c", "links"), 1, "not a network namespace"
    )


def test_dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    _one_line_error(
        netns_shell("-t", str(proc.pid), "-c", "links"), 1, f"PID {proc.pid}", "no such process"
    )


def test_kernel_thread_pid():
    _one_line_error(netns_shell("-t", "2", "-c", "links"), 1, "kernel thread")


def test_non_numeric_pid():
    _one_line_error(netns_shell("-t", "abc"), 2, "PID must be a number")


def test_ambiguous_prefix(lab):
    prefix = lab.base  # shared by every namespace of the lab
    _one_line_error(netns_shell(prefix, "-c", "links"), 1, "matches", "give more of the name")


def test_net_and_pid_together(lab):
    _one_line_error(netns_shell("--net", lab.entry_path, "-t", "1"), 2, "not allowed with")


def test_unknown_command_suggests(lab):
    _one_line_error(
        netns_shell("--net", lab.entry_path, "-c", "lnks"),
        2,
        "unknown command",
        "did you mean 'links'",
    )


def test_unknown_option(lab):
    _one_line_error(
        netns_shell("--net", lab.entry_path, "-c", "links -z"), 2, "unknown option '-z'"
    )
    _one_line_error(netns_shell("--bogus"), 2, "unrecognized arguments")


@pytest.mark.parametrize(
    "command,fragment",
    [
        ("links nosuch0", "no interface named 'nosuch0'"),
        ("neigh dev nosuch0", "no interface named 'nosuch0'"),
        ("fdb br nosuchbr", "no interface named 'nosuchbr'"),
        ("fdb dev nosuch0", "no interface named 'nosuch0'"),
        ("routes dev nosuch0", "no interface named 'nosuch0'"),
    ],
)
def test_unknown_interface_or_bridge(lab, command, fragment):
    _one_line_error(netns_shell("--net", lab.entry_path, "-c", command), 1, fragment)


def test_unknown_table(lab):
    _one_line_error(
        netns_shell("--net", lab.entry_path, "-c", "routes table nosuch"),
        2,
        "unknown routing table",
    )


def test_missing_option_value(lab):
    _one_line_error(netns_shell("--net", lab.entry_path, "-c", "fdb br"), 2, "needs a value")


def test_unbalanced_quote(lab):
    _one_line_error(
        netns_shell("--net", lab.entry_path, "-c", "exec echo 'oops"), 2, "cannot parse"
    )


def test_failure_in_a_sequence_sets_status_but_runs_the_rest(lab):
    run = netns_shell("--net", lab.entry_path, "--json", "-c", "links nosuch0; fdb dev vxlan0")
    assert run.status == 1
    assert run.json_documents and run.json_documents[-1]


@pytest.mark.parametrize(
    "dropped,named",
    [("-all", "CAP_SYS_ADMIN"), ("-sys_admin", "CAP_SYS_ADMIN"), ("-sys_ptrace", "CAP_SYS_PTRACE")],
)
def test_missing_privileges_are_named(dropped, named):
    import sys

    proc = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-all",
            f"--bounding-set={dropped}",
            sys.executable,
            "-m",
            "netns_shell",
            "--list",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{named} is missing" in lines[0], proc.stderr


@pytest.mark.parametrize(
    "command", ["ping -c 1 127.0.0.1", "arping -c 1 127.0.0.1", "capture -c 1"]
)
def test_missing_net_raw_is_named(lab, command):
    import sys

    proc = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-all",
            "--bounding-set=-net_raw",
            sys.executable,
            "-m",
            "netns_shell",
            "--net",
            lab.path("c1"),
            "-c",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.startswith("netns-shell:")]
    assert len(lines) == 1 and "CAP_NET_RAW is missing" in lines[0], proc.stderr


def test_read_only_refuses_state_changes_and_keeps_reads(lab):
    for command in ("ping -c 1 10.0.9.3", "arping -c 1 10.0.9.3", "exec true"):
        run = netns_shell("--read-only", "--net", lab.path("c1"), "-c", command)
        assert run.status == 2 and "read-only" in run.stderr, command
    run = netns_shell("--read-only", "--net", lab.path("c1"), "--json", "-c", "links; neigh")
    assert run.status == 0 and len(run.json_documents) == 2


def test_docker_socket_that_refuses_means_no_names(tmpdir_clean):
    import socket

    docker = tmpdir_clean / "docker" / "netns"
    docker.mkdir(parents=True)
    sandbox = docker / "0123456789ab"
    sandbox.touch()
    subprocess.run(["unshare", f"--net={sandbox}", "true"], check=True)
    refusing = socket.socket(socket.AF_UNIX)
    path = tmpdir_clean / "refuse.sock"
    refusing.bind(str(path))  # bound, never listening: connect() is refused
    try:
        run = netns_shell(
            "--json",
            "--list",
            env={"NETNS_SHELL_PATH": str(docker), "DOCKER_HOST": f"unix://{path}"},
        )
    finally:
        refusing.close()
    assert run.status == 0
    warnings = run.stderr.strip().splitlines()
    assert len(warnings) == 1 and "docker" in warnings[0] and "refused" in warnings[0]
    record = next(r for r in run.json if str(sandbox) in r["paths"])
    assert "container" not in record
