"""`CMD | PROGRAM ...` and `CMD > FILE` / `>> FILE` at the end of a command.

The oracle for what goes through a pipe is the command's own plain output
(the same line without the pipe, stdout not a terminal), and the host
programs themselves (grep, wc, head) for what they make of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from netns_shell.commands.line import CommandLine, Redirect, parse_line, split_commands
from netns_shell.errors import UsageError
from tests.conftest import netns_shell, unique


# ------------------------------------------------------------------ grammar
def test_pipes_and_redirections_end_a_command():
    assert parse_line("fdb | grep 02:42") == [CommandLine(("fdb",), (("grep", "02:42"),))]
    assert parse_line("links -d > /tmp/l.txt; routes >> f") == [
        CommandLine(("links", "-d"), (), Redirect("/tmp/l.txt")),
        CommandLine(("routes",), (), Redirect("f", append=True)),
    ]
    assert parse_line("links|grep x|wc -l>out") == [
        CommandLine(("links",), (("grep", "x"), ("wc", "-l")), Redirect("out"))
    ]
    assert parse_line("fdb") == [CommandLine(("fdb",))] and parse_line("fdb")[0].plain


def test_a_quoted_or_escaped_operator_is_a_word():
    assert split_commands("exec echo '|' \">\" \\> 'a>>b' x\\|y") == [
        ["exec", "echo", "|", ">", ">", "a>>b", "x|y"]
    ]
    (line,) = parse_line("capture 'len > 100' | grep ICMP")
    assert line.words == ("capture", "len > 100") and line.programs == (("grep", "ICMP"),)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("| grep x", "'|' needs a command before it"),
        ("fdb |", "'|' needs a program after it"),
        ("fdb | | wc", "'|' needs a program before it"),
        ("fdb >", "'>' needs a file name after it"),
        ("fdb >> ;", "'>>' needs a file name after it"),
        ("fdb > a b", "unexpected 'b' after '> a'"),
        ("fdb > a | grep x", "unexpected '|' after '> a'"),
        ("> f", "'>' needs a command before it"),
    ],
)
def test_malformed_pipes_are_one_usage_error(line, message):
    with pytest.raises(UsageError, match=message.replace("|", r"\|")):
        parse_line(line)


# ---------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def many_routes():
    """A namespace with 4000 routes: `routes` prints ~200 KB, more than a pipe holds."""
    name = unique("nst-p")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        batch = ["link add d0 type veth peer name d1", "link set d1 up", "link set d0 up"]
        batch += ["addr add 10.0.0.1/8 dev d0"]
        batch += [f"route add 10.{i // 250}.{i % 250}.0/24 via 10.0.0.2" for i in range(4000)]
        subprocess.run(
            ["ip", "-n", name, "-batch", "-"], input="\n".join(batch), text=True, check=True
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _lines(run) -> list[str]:
    assert run.status == 0 and run.stderr == "", run.stderr
    return run.stdout.splitlines(keepends=True)


def test_output_through_host_programs_is_the_plain_output(many_routes):
    plain = _lines(netns_shell(many_routes, "-c", "routes"))
    assert len(plain) > 4000
    grep = netns_shell(many_routes, "-c", "routes | grep -F 10.7.")
    assert _lines(grep) == [line for line in plain if "10.7." in line]
    assert netns_shell(many_routes, "-c", "routes | wc -l").stdout.strip() == str(len(plain))
    two = netns_shell(many_routes, "-c", "routes | grep -v DST | sort -r | head -2")
    assert _lines(two) == sorted(plain[1:], reverse=True)[:2]
    # JSON when asked, exactly the document the command prints
    whole = netns_shell(many_routes, "--json", "-c", "routes")
    piped = netns_shell(many_routes, "--json", "-c", "routes | cat")
    assert piped.status == 0 and piped.stdout == whole.stdout and piped.json


def test_a_reader_that_leaves_early_is_no_error(many_routes):
    """`head -1` closes the pipe while ~200 KB are still to come: the command stops, quietly,
    and the next command of the line still writes to the terminal."""
    run = netns_shell(many_routes, "-c", "routes | head -1; links lo")
    assert run.status == 0, run.stderr
    assert run.stderr == ""
    lines = run.stdout.splitlines()
    assert lines[0].split()[:2] == ["DST", "GATEWAY"]
    assert lines[1].split()[:2] == ["IDX", "IFNAME"] and lines[2].split()[1] == "lo"
    # in the REPL too (lines on stdin), then the shell goes on
    run = netns_shell(many_routes, input="routes | head -1\nlinks lo | wc -l\n")
    assert run.status == 0 and run.stdout.splitlines()[1:] == ["2"], (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr and "Broken" not in run.stderr


def test_the_status_is_the_pipelines(netns):
    assert netns_shell(netns, "-c", "links | grep -q lo").status == 0
    assert netns_shell(netns, "-c", "links | grep -q nosuchname").status == 1
    assert netns_shell(netns, "-c", "links | sh -c 'cat >/dev/null; exit 7' | cat").status == 7
    failed = netns_shell(netns, "-c", "links nosuchdev | cat")
    assert failed.status == 1 and "nosuchdev" in failed.stderr
    missing = netns_shell(netns, "-c", f"links | nosuch-{unique()}")
    assert missing.status == 127 and "command not found" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


def test_programs_run_on_the_host(netns):
    """The shell is in the namespace; the program after `|` is not."""
    host = os.readlink("/proc/self/ns/net")
    run = netns_shell(netns, "-c", "links | readlink /proc/self/ns/net")
    assert run.status == 0 and run.stdout.strip() == host, run.stderr
    run = netns_shell("-c", f"use {netns}; exec readlink /proc/self/ns/net | cat")
    assert run.status == 0 and run.stdout.strip() != host  # exec runs inside, cat outside
    # argv never goes through a shell
    run = netns_shell(netns, "-c", "links | echo '$(id)' '`id`' ';id'")
    assert run.stdout == "$(id) `id` ;id\n"


def test_exec_output_goes_through_the_pipe(netns, tmp_path):
    run = netns_shell(netns, "-c", "exec ip -o link show lo | tr a-z A-Z")
    assert run.status == 0 and "LOOPBACK" in run.stdout, run.stderr
    target = tmp_path / "out"
    run = netns_shell(netns, "-c", f"exec echo hi > {target}")
    assert run.status == 0 and run.stdout == "" and target.read_text() == "hi\n"


def test_redirection_writes_the_plain_output(netns, tmp_path):
    plain = netns_shell(netns, "-c", "links -d").stdout
    target = tmp_path / "l.txt"
    run = netns_shell(netns, "-c", f"links -d > {target}")
    assert run.status == 0 and run.stdout == "" and target.read_text() == plain
    assert target.stat().st_mode & 0o777 == 0o600
    run = netns_shell(netns, "-c", f"links -d >> {target}; links -d>>{target}")
    assert run.status == 0 and target.read_text() == plain * 3
    netns_shell(netns, "-c", f"links lo > {target}")  # truncates, as a shell does
    assert target.read_text() == netns_shell(netns, "-c", "links lo").stdout
    # the last program of a pipe writes to the file
    run = netns_shell(netns, "-c", f"links -d | wc -l > {target}")
    assert target.read_text().strip() == str(len(plain.splitlines()))
    assert netns_shell(netns, "-c", "links > /dev/null").status == 0


def test_a_redirection_never_follows_or_clobbers(netns, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "planted").symlink_to(victim)
    os.link(victim, tmp_path / "hard")
    for name, message in (("planted", "is a symbolic link"), ("hard", "has 2 hard links")):
        for op in (">", ">>"):
            run = netns_shell(netns, "-c", f"links {op} {tmp_path / name}")
            assert run.status == 2 and message in run.stderr, run.stderr
            assert len(run.stderr.splitlines()) == 1 and run.stdout == ""
    run = netns_shell(netns, "-c", "links > /dev/full")
    assert run.status == 2 and "character device" in run.stderr
    assert victim.read_text() == "precious"


def test_read_only_refuses_pipes_and_redirections(netns, tmp_path):
    marker, target = tmp_path / "marker", tmp_path / "out"
    for line in (f"links | touch {marker}", f"links > {target}", f"links >> {target}"):
        run = netns_shell("--read-only", netns, "-c", line)
        assert run.status == 2 and run.stdout == "", run.stderr
        assert run.stderr.splitlines() == [
            "netns-shell: pipes and redirections ('|', '>') are disabled in --read-only mode"
        ]
    assert not marker.exists() and not target.exists()


def _shell(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "netns_shell", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def _wait_for_children(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = _children(pid)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {count} children of {pid}")


def test_ctrl_c_ends_the_command_and_the_programs(netns):
    """A terminal sends SIGINT to the whole foreground group: both end, no traceback."""
    proc = _shell(netns, "-c", "watch | cat; links", start_new_session=True)
    try:
        _wait_for_children(proc.pid, 1)
        assert "watching" in proc.stderr.readline()  # the command runs: Ctrl-C is for it
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "IFNAME" not in out  # the rest of the line did not run


def test_ctrl_c_to_the_shell_alone_also_ends_a_program_that_reads_nothing(netns):
    proc = _shell(netns, "-c", "watch | sleep 300")
    try:
        (sleeper,) = _wait_for_children(proc.pid, 1)
        assert "watching" in proc.stderr.readline()  # the command runs: Ctrl-C is for it
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert not os.path.exists(f"/proc/{sleeper}")
