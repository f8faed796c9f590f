"""Attacks a hostile review tried, each reproduced against the real tool (docs/hardening.md)."""

from __future__ import annotations

import io
import json
import os
import select
import shlex
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from netns_shell.commands import build_registry
from netns_shell.commands.line import quote, split_commands
from netns_shell.completion import CompletionState, candidates, expected_at
from netns_shell.debuglog import DebugLog
from netns_shell.docker import DockerClient, DockerError, DockerNames
from netns_shell.extensions import PluginLoader
from netns_shell.files import PrivateDir, UnsafePathError
from tests.conftest import PROMPT, ip_json, netns_shell, unique


def _batch(netns: str, lines) -> None:
    subprocess.run(
        ["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True
    )


def _altname_lines(dev: str, count: int) -> list[str]:
    return [f"link property add dev {dev} altname a{i:03d}{'x' * 123}" for i in range(count)]


def test_a_link_message_bigger_than_64k_is_not_hidden(netns):
    """A veth with ~490 altnames of 127 bytes makes one RTM_NEWLINK of about 70 KiB, more than
    a 64 KiB receive buffer: the kernel cut it and the link vanished from every view."""
    _batch(
        netns,
        [
            "link add hid0 type veth peer name hid1",
            "link set hid0 up",
            "link set hid1 up",
            "addr add 198.51.100.1/24 dev hid0",
            *_altname_lines("hid0", 490),
        ],
    )
    ref = ip_json("-n", netns, "link", "show")
    assert "hid0" in [r["ifname"] for r in ref]
    mine = netns_shell(netns, "--json", "-c", "links")
    assert mine.status == 0, mine.stderr
    assert [r["ifname"] for r in mine.json] == [r["ifname"] for r in ref]
    (hidden,) = [r for r in mine.json if r["ifname"] == "hid0"]
    assert hidden["altnames"] == next(r for r in ref if r["ifname"] == "hid0")["altnames"]
    routes = netns_shell(netns, "--json", "-c", "routes -4")
    assert {r.get("dev") for r in routes.json} == {"hid0"}
    found = netns_shell("--json", "-c", "find hid0")
    assert [r["dev"] for r in found.json if r["netns"] == netns] == ["hid0"]
    ns = netns_shell("--json", "-c", "ns")
    (entry,) = [r for r in ns.json if r["name"] == netns]
    assert entry["links"] == len(ref)
    capture = netns_shell(netns, "-c", "capture -i hid0 --duration 0.2")
    assert capture.status == 0, capture.stderr
    assert "capturing on hid0" in capture.stderr
    peers = netns_shell(netns, "--json", "-c", "links -d hid1")
    assert peers.json[0]["link"] == "hid0"
    assert json.loads(netns_shell(netns, "--json", "-c", "topology").stdout)


# ------------------------------------------------------------------ completion
HOSTILE_NAMES = ["x$(touch pwned)", "a b;c", "q'uo\"te", "back\\slash", "`touch pwned2`"]


@pytest.fixture
def hostile_namespaces():
    """Named namespaces whose names are shell code, separators, quotes and escapes."""
    suffix = unique("-")
    made = []
    try:
        for name in HOSTILE_NAMES:
            subprocess.run(["ip", "netns", "add", name + suffix], check=True)
            made.append(name + suffix)
        yield made
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


def _bash_complete(words: list[str], cwd: str) -> list[str]:
    """COMPREPLY of the bash completion script for a command line being typed."""
    script = netns_shell("--completion", "bash").stdout
    bindir = os.path.dirname(sys.executable)
    driver = (
        script
        + 'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _netns_shell\n'
        + 'printf "%s\\0" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "-c", driver, "bash", *words],
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"},
        check=True,
    )
    return [w.decode() for w in proc.stdout.split(b"\0") if w]


def test_bash_completion_treats_names_as_data(hostile_namespaces, tmp_path):
    """The old script ran `compgen -W "$(netns-shell --complete targets)"`: compgen expands
    $(...) and backquotes inside the words, so Tab ran a name as a command, as root."""
    replies = _bash_complete(["netns-shell", ""], str(tmp_path))
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    for name in hostile_namespaces:
        quoted = [r for r in replies if shlex.split(r) == [name]]
        assert len(quoted) == 1, (name, replies)
    # a typed prefix, opening quote included, narrows to the one name
    name = hostile_namespaces[1]  # 'a b;c...'
    assert [shlex.split(r) for r in _bash_complete(["netns-shell", "'a b"], str(tmp_path))] == [
        [name]
    ]
    assert _bash_complete(["netns-shell", "-c", "lin"], str(tmp_path)) == ["links"]
    assert "--read-only" in _bash_complete(["netns-shell", "--re"], str(tmp_path))


def test_tab_in_the_shell_inserts_names_quoted_for_its_parser(hostile_namespaces):
    """A name holding ';' was inserted raw: on Enter it became a second command."""
    registry = build_registry()
    state = CompletionState(namespaces={name: "named" for name in hostile_namespaces})
    for name in hostile_namespaces:
        typings = [f"use {quote(name[:3])}"] + ([f"use '{name[:3]}"] if "'" not in name else [])
        for typed in typings:
            expect = expected_at(registry, typed)
            words = [w for w, _ in candidates(expect, registry, state) if w == name]
            assert words == [name]
            line = typed[: expect.start] + quote(name)
            assert split_commands(line) == [["use", name]]
    # the real thing: the completed text is what `use` receives
    from netns_shell.render import Console
    from netns_shell.session import Session

    session = Session(registry=registry, console=Console(stdout=io.StringIO()))
    try:
        for name in hostile_namespaces:
            assert session.execute("use " + quote(name)) == 0
            assert session.namespace.path == f"/var/run/netns/{name}"
    finally:
        session.close()


def test_line_splitting_is_linear_in_word_length():
    """shlex took 2 minutes on a 2 MB word (quadratic); the splitter is one linear pass."""
    for word in ("a" * 2_000_000, '"' + "b" * 2_000_000 + '"', "c\\ " * 500_000):
        start = time.process_time()  # CPU time: other processes on a busy machine do not count
        (words,) = split_commands(f"links {word}")
        assert len(words) == 2
        assert time.process_time() - start < 2.0


# ------------------------------------------------------------------ files written as root


def _capture_to(netns: str, target: str, *extra: str):
    return netns_shell(netns, *extra, "-c", f"capture -i lo --duration 0.2 -w {quote(target)}")


def test_capture_file_never_follows_or_clobbers(netns, tmp_path):
    """`capture -w` followed a symlink planted in /tmp and truncated its target as root."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "x.pcap").symlink_to(victim)
    os.link(victim, tmp_path / "hard.pcap")
    real = tmp_path / "theirs"
    real.mkdir()
    (tmp_path / "linkdir").symlink_to(real)
    os.lchown(tmp_path / "linkdir", 4242, 4242)  # a directory link planted by another user
    cases = {
        "x.pcap": "is a symbolic link",
        "hard.pcap": "has 2 hard links",
        "linkdir/y.pcap": "symbolic link owned by uid 4242",
    }
    for name, message in cases.items():
        run = _capture_to(netns, str(tmp_path / name))
        assert run.status == 2, (name, run.stderr)
        assert message in run.stderr and len(run.stderr.splitlines()) == 1, run.stderr
    assert victim.read_bytes() == b"precious"
    assert not (real / "y.pcap").exists()
    for device, message in (("/dev/full", "is a character device"), ("/dev/tty0", "terminal")):
        run = _capture_to(netns, device)
        assert run.status == 2 and message in run.stderr, run.stderr
    # a new file is created 0600; an existing regular file of ours is replaced
    fresh = tmp_path / "new.pcap"
    assert _capture_to(netns, str(fresh)).status == 0
    assert fresh.stat().st_mode & 0o777 == 0o600
    old = tmp_path / "old.pcap"
    old.write_bytes(b"x" * 100)
    assert _capture_to(netns, str(old)).status == 0
    assert old.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1" and old.stat().st_size == 24
    # a named pipe is written to (its reader decides), /dev/null discards
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    assert _capture_to(netns, str(fifo)).status == 0
    assert reader.communicate(timeout=10)[0][:4] == b"\xd4\xc3\xb2\xa1"
    assert _capture_to(netns, "/dev/null").status == 0
    # --read-only writes no file at all
    run = _capture_to(netns, str(tmp_path / "ro.pcap"), "--read-only")
    assert run.status == 2 and "--read-only" in run.stderr
    assert not (tmp_path / "ro.pcap").exists()


def test_history_and_debug_log_stay_in_a_private_directory(tmp_path):
    """History and the debug log were opened by path: a symlink planted in a HOME that belongs
    to someone else (sudo keeps HOME) made root append to any file."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    state = tmp_path / "state"
    directory = PrivateDir.open(str(state / "netns-shell"))
    directory.close()
    assert (state / "netns-shell").stat().st_mode & 0o777 == 0o700
    (state / "netns-shell" / "history").symlink_to(victim)
    (state / "netns-shell" / "debug.log").symlink_to(victim)
    env = {"XDG_STATE_HOME": str(state), "HOME": str(tmp_path), "TERM": "xterm"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell"],
        env={**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", **env},
        encoding="utf-8",
        timeout=20,
    )
    try:
        child.expect(PROMPT)
        child.sendline("help")
        child.expect(PROMPT)
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.terminate(force=True)
    assert victim.read_bytes() == b"precious"
    log = DebugLog(directory=str(state / "netns-shell"))
    assert "not writable" in log.record("boom", ValueError("x"))
    assert victim.read_bytes() == b"precious"
    # a state directory that belongs to someone else is not used at all
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 4242, 4242)
    with pytest.raises(UnsafePathError):
        PrivateDir.open(str(theirs / "netns-shell"))
    assert not (theirs / "netns-shell").exists()


def _one_arp_pcap(path) -> None:
    """One ARP request inside an 802.1Q tag: a frame the struct decoder leaves to scapy."""
    frame = bytes.fromhex("ffffffffffff020000000001810000640806")
    frame += bytes.fromhex("0001080006040001020000000001c0000201")
    frame += bytes(6) + bytes.fromhex("c0000202")
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    path.write_bytes(header + struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame)


def test_scapy_keeps_no_cache_under_home(tmp_path):
    """scapy pickles its tables into ~/.cache/scapy, following symlinks and deleting what it
    cannot read: as root with someone else's HOME, a way to clobber files."""
    home = tmp_path / "home"
    (home / ".cache" / "scapy").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    for table in ("manufdb", "services", "ethertypes", "bluetoothids"):
        (home / ".cache" / "scapy" / f"{table}.pickle").symlink_to(victim)
    _one_arp_pcap(tmp_path / "arp.pcap")
    run = netns_shell("-c", f"capture -r {tmp_path / 'arp.pcap'}", env={"HOME": str(home)})
    assert run.status == 0, run.stderr
    assert "Dot1Q" in run.stdout and "192.0.2.2" in run.stdout, run.stdout  # scapy decoded it
    assert victim.read_bytes() == b"precious"
    assert not (home / ".config").exists()
    assert all(p.is_symlink() for p in (home / ".cache" / "scapy").iterdir())


# ------------------------------------------------------------------ --read-only
VOLATILE = {"used", "updated"}  # and every *_timer: they count down on their own


def _stable(value):
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in value.items()
            if k not in VOLATILE and not k.endswith("_timer")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _host_state(lab, *directories) -> dict:
    """What a command could change: every table of the lab's namespaces, and files."""
    state: dict = {}
    for role in lab.roles:
        name = lab.name(role)
        for what in (["-d", "link"], ["addr"], ["route", "show", "table", "all"], ["neigh"]):
            state[(role, *what)] = _stable(ip_json("-n", name, *what))
        fdb = json.loads(subprocess.check_output(["bridge", "-n", name, "-j", "fdb"]) or b"[]")
        state[(role, "fdb")] = [f for f in fdb if f.get("state")]  # learned entries come and go
    for directory in directories:
        state[str(directory)] = sorted(str(p) for p in Path(directory).rglob("*"))
    return state


def _differences(before, after, path="") -> list[str]:
    """Where two snapshots differ, as paths (for the failure message)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            d
            for k in {*before, *after}
            for d in _differences(before.get(k), after.get(k), f"{path}/{k}")
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for d in _differences(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def _run_briefly(args: list[str], env: dict, cwd: str) -> tuple[int, str]:
    """Run the CLI; a command that goes on (capture, watch) gets SIGTERM after 3 s."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        cwd=cwd,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=3)
    except subprocess.TimeoutExpired:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    return proc.returncode, err


def _still_state(lab, *directories, seconds: float = 30) -> dict:
    """_host_state once two reads in a row agree: the picture every command is held to."""
    deadline = time.monotonic() + seconds
    state = _host_state(lab, *directories)
    while (again := _host_state(lab, *directories)) != state:
        assert time.monotonic() < deadline, ("the lab kept changing", _differences(state, again))
        time.sleep(0.2)
        state = again
    return state


@pytest.mark.timeout(900)  # ~80 command lines, each a fresh interpreter: minutes when loaded
def test_read_only_changes_nothing_whatever_the_command(fresh_lab, tmp_path):
    """Every command of the registry (plugins included), bare and as in its help examples,
    in --read-only mode: the lab's tables, the home and state directories and the current
    directory stay exactly as they were, no namespace is created, no traceback."""
    registry = build_registry()
    PluginLoader(lambda message: None)(registry)
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {"HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "PAGER": "cat"}
    before = _still_state(fresh_lab, home, cwd)
    namespaces = set(os.listdir("/var/run/netns"))
    lines = [line for c in registry for line in (c.name, *c.examples)]
    for line in lines:
        status, err = _run_briefly(
            ["--read-only", "--net", fresh_lab.entry_path, "-c", line], env, str(cwd)
        )
        assert "Traceback" not in err and "internal error" not in err, (line, err)
        after = _host_state(fresh_lab, home, cwd)
        assert after == before, (line, _differences(before, after))
        created = set(os.listdir("/var/run/netns")) - namespaces
        assert not created & set(line.split()), (line, created)
    refused = ["exec x", "ping x", "arping x", "check --via container", "check --via service"]
    refused += ["trace 10.0.0.1 --probe"]  # an option that changes state, with a DEST
    # and every option declared to change state, with each value that does
    declared = [
        f"{c.name} {p.usage_of(value)}"
        for c in registry
        for p in c.params
        if p.changes_state
        for value in (p.changes_state_with or (p.const if p.is_switch else "x",))
    ]
    # a command that needs more words is run above with them (trace DEST --probe)
    refused += [
        line
        for line in declared
        if not any(r.split()[0] == line.split()[0] and line.split()[1] in r for r in refused)
    ]
    for line in refused:
        status, err = _run_briefly(
            ["--read-only", "--net", fresh_lab.entry_path, "-c", line], env, str(cwd)
        )
        assert status == 2 and "--read-only" in err, (line, err)
        assert len(err.strip().splitlines()) == 1, (line, err)
        assert _host_state(fresh_lab, home, cwd) == before, line
    run = netns_shell("--read-only", "--demo")
    assert run.status == 2 and "--read-only" in run.stderr


def test_read_only_pager_runs_only_in_less_secure_mode(lab, tmp_path):
    """less allows `!command`; in --read-only it runs with LESSSECURE=1, and any other pager
    (more, most, a script) is not run at all: the table is printed whole."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    seen = tmp_path / "seen"
    for name in ("less", "more"):
        script = bindir / name
        script.write_text(f"#!/bin/sh\necho {name} LESSSECURE=$LESSSECURE >> {seen}\ncat\n")
        script.chmod(0o755)
    for pager, expected in (("less", "less LESSSECURE=1"), ("more", None)):
        if seen.exists():
            seen.unlink()
        child = pexpect.spawn(
            sys.executable,
            ["-m", "netns_shell", "--read-only", "--net", lab.entry_path, "-c", "links"],
            env={
                **{k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")},
                "PAGER": str(bindir / pager),
                "TERM": "xterm",
            },
            encoding="utf-8",
            timeout=20,
            dimensions=(6, 200),
        )
        child.expect(pexpect.EOF)
        assert "vxlan0" in child.before and "veth2" in child.before
        if expected is None:
            assert not seen.exists()
        else:
            assert seen.read_text().strip() == expected


# ------------------------------------------------------------------ PID targets
def _spawn_with_pid(argv: list[str], pid: int, attempts: int = 50) -> subprocess.Popen | None:
    """Start argv as process `pid` (ns_last_pid, as CRIU does), or None if others raced us."""
    for _ in range(attempts):
        with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
            fh.write(str(pid - 1))
        proc = subprocess.Popen(argv)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


def test_exec_after_pid_reuse_refuses_instead_of_joining_the_new_process():
    """`-t PID` then the process exits and its PID goes to another: `exec -m` joined the
    newcomer's mount namespace. The handle now holds a pidfd and refuses."""
    target = subprocess.Popen(["unshare", "--net", "--mount", "sleep", "300"])
    shell = None
    newcomer = None
    try:
        pid = target.pid
        _wait_for_exec(pid, "sleep")  # unshare has made its namespaces and run sleep
        ours = os.readlink(f"/proc/{pid}/ns/mnt")
        shell = subprocess.Popen(
            [sys.executable, "-m", "netns_shell", "-t", str(pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # the shell holds its handle on the target once it has run a command in it (a
        # fixed wait is not enough on a loaded machine: the handle would be opened on the
        # newcomer, which is what -t PID means at that moment)
        shell.stdin.write("exec -m readlink /proc/self/ns/mnt\n")
        shell.stdin.flush()
        assert _line_within(shell.stdout, 60) == ours
        target.kill()
        target.wait()
        newcomer = _spawn_with_pid(["unshare", "--mount", "sleep", "300"], pid)
        if newcomer is None:
            pytest.skip("could not get the PID back (other processes took it)")
        _wait_for_exec(pid, "sleep")
        theirs = os.readlink(f"/proc/{pid}/ns/mnt")  # the freed number may come back
        out, err = shell.communicate("exec -m readlink /proc/self/ns/mnt\n", timeout=60)
        assert theirs not in out, "joined the mount namespace of the process that got the PID"
        assert f"PID {pid} has exited" in err, err
        assert shell.returncode != 0
    finally:
        for proc in (target, newcomer, shell):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_for_exec(pid: int, comm: str, seconds: float = 30) -> None:
    """Until process `pid` runs `comm` (unshare has exec'd its command)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with open(f"/proc/{pid}/comm") as fh:
                if fh.read().strip() == comm:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"process {pid} never ran {comm}"
        time.sleep(0.02)


def _line_within(stream, seconds: float) -> str:
    """One line of a child's output, or AssertionError after `seconds`."""
    ready, _, _ = select.select([stream], [], [], seconds)
    assert ready, f"no output within {seconds} s"
    return stream.readline().strip()


# ------------------------------------------------------------------ a line stops
@pytest.mark.parametrize(
    "args",
    [
        ["-c", "use nosuch-namespace; exec touch marker"],
        ["-c", "use nosuch-namespace", "-c", "exec touch marker"],
        ["-c", "usee nosuch-namespace; exec touch marker"],
    ],
    ids=["same line", "next -c", "mistyped use"],
)
def test_a_failed_use_stops_the_rest(args, tmp_path):
    """`-c 'use typo; exec ...'` ran exec on the host."""
    run = subprocess.run(
        [sys.executable, "-m", "netns_shell", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0
    assert not (tmp_path / "marker").exists(), run.stderr
    assert "not run" in run.stderr or len(args) > 2


def test_a_failed_use_stops_a_script_on_stdin(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "netns_shell"],
        input="use nosuch-namespace\nexec touch marker\n",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0 and not (tmp_path / "marker").exists()


def test_ctrl_c_stops_the_rest_of_the_line(lab, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netns_shell",
            "--net",
            lab.entry_path,
            "-c",
            "watch; exec touch marker",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "watching" in proc.stderr.readline()  # said once subscribed: the watch runs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert not (tmp_path / "marker").exists(), err


class _HostileEngine:
    """A Docker engine on a unix socket that answers as the test says: slowly, endlessly,
    or with JSON of the wrong shape. `routes` maps a path prefix to a function(path, conn)."""

    def __init__(self, path: str, routes):
        import socket
        import threading

        self.path, self.routes = path, routes
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(64)
        self.server.settimeout(0.2)
        self.stop = threading.Event()
        self.conns: list = []
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import threading

        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ")[1].decode()
            self.requests.append(path)
            for prefix, answer in self.routes:
                if path.startswith(prefix):
                    answer(path, conn, self.stop)
                    return
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        finally:
            try:
                conn.shutdown(2)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.thread.join()
        for conn in self.conns:
            conn.close()
        self.server.close()


def _json_answer(value):
    body = value if isinstance(value, bytes) else json.dumps(value).encode()

    def answer(path, conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    return answer


def _hang(path, conn, stop):
    stop.wait(30)


def _sandbox_dir(tmpdir_clean, count: int) -> tuple[Path, list[str]]:
    docker = tmpdir_clean / "docker" / "netns"
    docker.mkdir(parents=True)
    keys = [f"{i:012x}" for i in range(0xABC000, 0xABC000 + count)]
    for key in keys:
        (docker / key).touch()
        subprocess.run(["unshare", f"--net={docker / key}", "true"], check=True)
    return docker, keys


def _container(key: str, name: str) -> dict:
    return {
        "Id": key * 5 + "abcd",
        "Name": "/" + name,
        "NetworkSettings": {"SandboxKey": f"/var/run/docker/netns/{key}", "Networks": {}},
        "State": {"Pid": 0},
    }


def _seconds_without_engine(docker: Path, *args: str) -> float:
    """How long the same run takes when no engine answers at all (connection refused): the
    interpreter's start and the namespaces' discovery, which a loaded machine stretches."""
    started = time.monotonic()
    run = netns_shell(
        *args, env={"NETNS_SHELL_PATH": str(docker), "DOCKER_HOST": "unix:///nonexistent.sock"}
    )
    assert run.status == 0, run.stderr
    return time.monotonic() - started


def test_an_engine_that_hangs_per_container_costs_one_deadline(tmpdir_clean):
    """15 containers whose details never come: `ns` took 2 s per container (30 s). Now one
    deadline bounds the round, one warning says names are missing, the shell goes on."""
    docker, keys = _sandbox_dir(tmpdir_clean, 15)
    summaries = [{"Id": key * 5 + "abcd"} for key in keys]
    engine = _HostileEngine(
        str(tmpdir_clean / "engine.sock"),
        [
            ("/networks", _json_answer([])),
            ("/containers/json", _json_answer(summaries)),
            ("/containers/", _hang),
        ],
    )
    try:
        started = time.monotonic()
        run = netns_shell(
            "--json",
            "-c",
            "ns; ns",
            env={"NETNS_SHELL_PATH": str(docker), "DOCKER_HOST": f"unix://{engine.path}"},
        )
        elapsed = time.monotonic() - started
        details = [p for p in engine.requests if p.startswith("/containers/") and "json" != p]
    finally:
        engine.close()
    assert run.status == 0, run.stderr
    alone = _seconds_without_engine(docker, "--json", "-c", "ns; ns")
    assert elapsed - alone < 2.5, (elapsed, alone)  # one round (ROUND_SECONDS), not 15
    warnings = run.stderr.strip().splitlines()
    assert len(warnings) == 1 and "0 of 15 containers" in warnings[0], warnings
    assert len(details) <= 2, details  # backed off: the second `ns` did not ask again
    for document in run.json_documents:
        assert {k for r in document for k in r["paths"]} >= {str(docker / k) for k in keys}


def test_a_slow_engine_gives_the_names_it_managed_within_the_deadline(tmpdir_clean):
    docker, keys = _sandbox_dir(tmpdir_clean, 6)

    def slow_details(path, conn, stop):
        key = path.split("/")[2][:12]
        stop.wait(0.4)
        _json_answer(_container(key, f"c-{key}"))(path, conn, stop)

    engine = _HostileEngine(
        str(tmpdir_clean / "engine.sock"),
        [
            ("/networks", _json_answer([])),
            ("/containers/json", _json_answer([{"Id": k * 5 + "abcd"} for k in keys])),
            ("/containers/", slow_details),
        ],
    )
    try:
        started = time.monotonic()
        run = netns_shell(
            "--json",
            "--list",
            env={"NETNS_SHELL_PATH": str(docker), "DOCKER_HOST": f"unix://{engine.path}"},
        )
        elapsed = time.monotonic() - started
    finally:
        engine.close()
    alone = _seconds_without_engine(docker, "--json", "--list")
    assert run.status == 0 and elapsed - alone < 2.5, (run.stderr, elapsed, alone)
    named = {r["container"] for r in run.json if "container" in r}
    assert 1 <= len(named) < len(keys), named
    assert named <= {f"c-{k}" for k in keys}
    (warning,) = run.stderr.strip().splitlines()
    assert f"of {len(keys)} containers" in warning and "missing" in warning


def test_an_endless_answer_is_cut_at_a_size_cap(tmpdir_clean):
    """An engine that streams an endless body: read with no cap, 833 MB RSS in 2 s."""
    docker, _ = _sandbox_dir(tmpdir_clean, 1)

    def endless(path, conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
        block = b'"' + b"x" * (1 << 20) + b'",'
        while not stop.is_set():
            conn.sendall(block)

    engine = _HostileEngine(str(tmpdir_clean / "engine.sock"), [("/networks", endless)])
    try:
        proc = subprocess.run(
            [
                "/usr/bin/env",
                f"NETNS_SHELL_PATH={docker}",
                f"DOCKER_HOST=unix://{engine.path}",
                sys.executable,
                "-c",
                # VmHWM: this process's own peak (ru_maxrss would carry the forking test
                # worker's size across exec)
                "import runpy, sys; sys.argv = ['netns-shell', '--list'];"
                "code = 0\n"
                "try: runpy.run_module('netns_shell', run_name='__main__')\n"
                "except SystemExit as e: code = e.code\n"
                "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')];"
                "print(hwm[0], file=sys.stderr);"
                "sys.exit(code)",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        engine.close()
    assert proc.returncode == 0, proc.stderr
    *warnings, max_rss_kb = proc.stderr.strip().splitlines()
    assert len(warnings) == 1 and "larger than 32 MiB" in warnings[0], warnings
    assert int(max_rss_kb) < 200 * 1024, max_rss_kb


@pytest.mark.parametrize(
    "networks, containers, details",
    [
        ({"message": "x"}, [], {}),
        ([1, "x", None, {"Id": 5, "Name": ["a"]}], "nope", {}),
        ([], [{"Id": "../../../etc/passwd"}, {"Id": None}, 7], {}),
        ([], [{"Id": "ab" * 32}], {"NetworkSettings": "x", "Name": 5, "State": [], "Config": 1}),
        (
            [],
            [{"Id": "ab" * 32}],
            {
                "NetworkSettings": {"SandboxKey": 5, "Networks": {"n": "x", "m": {"IPAddress": 1}}},
                "Config": {"Labels": ["a"]},
            },
        ),
        (b"[" * 100000 + b"]" * 100000, [], {}),
        (b"\xff\xfe not json", [], {}),
    ],
    ids=["object", "mixed-list", "bad-ids", "wrong-types", "wrong-inner-types", "deep", "binary"],
)
def test_malformed_engine_answers_are_refused_without_a_traceback(
    tmpdir_clean, networks, containers, details
):
    docker, _ = _sandbox_dir(tmpdir_clean, 1)
    engine = _HostileEngine(
        str(tmpdir_clean / "engine.sock"),
        [
            ("/networks", _json_answer(networks)),
            ("/containers/json", _json_answer(containers)),
            ("/containers/", _json_answer(details)),
        ],
    )
    try:
        run = netns_shell(
            "--json",
            "-c",
            "ns; overlay; find 10.1.2.3",
            env={"NETNS_SHELL_PATH": str(docker), "DOCKER_HOST": f"unix://{engine.path}"},
        )
        # what the shell's enrichment swallowed before: the loader raised TypeError/KeyError
        try:
            names = DockerNames.load(DockerClient(engine.path))
        except DockerError:
            names = None
        if names is not None:
            for key in (*names.sandboxes, "1-abcdefgh12", "lb_abcdefgh1", "ingress_sbox"):
                json.dumps(names.labels_for(key))
            json.dumps([names.endpoints_on(n) for n in names.networks])
    finally:
        engine.close()
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) <= 2, run.stderr
    assert run.json_documents[0], run.stdout


def test_routes_of_a_fresh_namespace_are_empty_not_an_error():
    """A namespace nothing was configured in has no main table yet: the kernel answers ENOENT
    (`ip route` prints nothing), and one family of `table N` may be missing too."""
    fresh = unique("nst-f")
    subprocess.run(["ip", "netns", "add", fresh], check=True)
    try:
        assert ip_json("-n", fresh, "route", "show") == []
        for line in ("routes", "routes -4", "routes -6", "routes table 5", "routes table all"):
            run = netns_shell(fresh, "--json", "-c", line)
            assert run.status == 0 and run.json == [] and run.stderr == "", (line, run.stderr)
        subprocess.run(["ip", "-n", fresh, "link", "set", "lo", "up"], check=True)
        subprocess.run(
            ["ip", "-n", fresh, "route", "add", "192.0.2.0/24", "dev", "lo", "table", "5"],
            check=True,
        )
        run = netns_shell(fresh, "--json", "-c", "routes table 5")  # IPv6 table 5 is absent
        assert run.status == 0, run.stderr
        assert [r["dst"] for r in run.json] == ["192.0.2.0/24"]
    finally:
        subprocess.run(["ip", "netns", "del", fresh], check=False)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "0"])
def test_durations_that_are_not_a_finite_positive_number_are_refused(lab, value):
    run = netns_shell(lab.entry_path, "-c", f"capture --duration {value} -c 1")
    assert run.status == 2 and "positive number of seconds" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr


def test_python_m_does_not_import_from_the_current_directory(lab, tmp_path):
    """`python -m netns_shell` put the current directory first on sys.path: a `tabulate.py`
    or `prompt_toolkit/` planted where root runs it was imported with root's privileges."""
    marker = tmp_path / "imported"
    plant = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("tabulate", "pyroute2", "grpc"):
        (tmp_path / f"{name}.py").write_text(plant)
    (tmp_path / "prompt_toolkit").mkdir()
    (tmp_path / "prompt_toolkit" / "__init__.py").write_text(plant)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell", "--no-pager", "--net", lab.entry_path],
        cwd=str(tmp_path),
        env={**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"},
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 200),
    )
    try:
        child.expect(r"\]")  # the prompt
        child.sendline("links")
        child.expect("vxlan0")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert not marker.exists(), marker.read_text()


@pytest.mark.parametrize(
    "redirect, status, message",
    [("<&-", 0, ""), (">&-", 2, "standard output is closed"), ("2>&-", 0, None)],
)
def test_closed_standard_streams_give_a_line_not_a_traceback(lab, redirect, status, message):
    script = f"{shlex.quote(sys.executable)} -m netns_shell --net {lab.entry_path} -c links"
    proc = subprocess.run(
        ["sh", "-c", f"{script} {redirect}"], capture_output=True, text=True, timeout=30
    )
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert proc.returncode == status, proc.stderr
    if message is not None:
        assert message in proc.stderr
    repl = subprocess.run(
        ["sh", "-c", f"{shlex.quote(sys.executable)} -m netns_shell --net {lab.entry_path} <&-"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert repl.returncode == 0 and "Traceback" not in repl.stderr, repl.stderr


def _slow_filter() -> str:
    """A filter within the size limit that libpcap's optimiser takes many seconds over."""
    words = " or ".join(f"port {i}" for i in range(1, 2000))
    return words[:8000].rsplit(" or ", 1)[0]


def _wait_for_threads(pid: int, count: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while len(os.listdir(f"/proc/{pid}/task")) < count:
        assert time.monotonic() < deadline, f"process {pid} did not start {count} threads"
        time.sleep(0.02)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_filter_that_compiles_for_minutes_yields_to_signals(netns, signum, status):
    """libpcap compiled a huge filter for minutes with SIGTERM pending; now the compilation
    is abandoned on a signal and the shell exits at once."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", netns, "-c", f"capture -i lo {_slow_filter()}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_threads(proc.pid, 2)  # the compiling worker runs beside the waiting main thread
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 1.5
    assert proc.returncode == status, err
    assert "Traceback" not in err and "internal error" not in err, err


def test_a_filter_past_the_limits_is_refused_in_one_line(netns):
    run = netns_shell(netns, "-c", "capture -i lo " + " or ".join(["icmp"] * 3000))
    assert run.status == 2 and "at most 8192" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_symlink_in_a_search_directory_names_nothing(tmpdir_clean):
    """A symlink planted in an earlier search directory (one a container can write to) gave its
    name to the namespace it points at: `use` by that name entered someone else's namespace."""
    early, late = tmpdir_clean / "early" / "netns", tmpdir_clean / "late" / "netns"
    early.mkdir(parents=True)
    late.mkdir(parents=True)
    real = late / unique("real-")
    real.touch()
    subprocess.run(["unshare", f"--net={real}", "true"], check=True)
    decoy = early / "looks-harmless"
    decoy.symlink_to(real)
    (early / "points-at-host").symlink_to("/proc/1/ns/net")
    env = {"NETNS_SHELL_PATH": f"{early}:{late}"}
    run = netns_shell("--json", "--list", env=env)
    assert run.status == 0, run.stderr
    names = {r["name"] for r in run.json}
    paths = {p for r in run.json for p in r["paths"]}
    assert real.name in names and "looks-harmless" not in names and "points-at-host" not in names
    assert str(decoy) not in paths
    entered = netns_shell("looks-harmless", "-c", "links", env=env)
    assert entered.status != 0 and "Traceback" not in entered.stderr


@pytest.mark.parametrize(
    "info, networks, view",
    [
        ([], [], {}),
        ({"Swarm": "x", "Name": 5}, {"a": 1}, []),
        (
            {"Swarm": {"NodeAddr": "not-an-ip"}},
            [{"Id": "../../x", "Driver": "overlay"}, {"Id": 7}, "x"],
            {"Peers": [1, {"IP": "x"}], "Services": {"s": {"Tasks": [5, {"EndpointIP": []}]}}},
        ),
        (
            {"Swarm": {"NodeAddr": "192.0.2.1"}},
            [{"Id": "abcdefghij" * 2 + "abcde", "Driver": "overlay", "Name": "n"}],
            {"Containers": {"x": "y", "lb-n": {"IPv4Address": 5}}, "Services": []},
        ),
    ],
    ids=["lists", "wrong-types", "bad-values", "bad-containers"],
)
def test_check_and_overlay_refuse_malformed_engine_views(tmpdir_clean, info, networks, view):
    """The engine views `check`, `overlay` and `trace` read (/info, /networks, the verbose
    network) are hostile data too: a wrong shape is a finding-free answer or one line."""
    engine = _HostileEngine(
        str(tmpdir_clean / "engine.sock"),
        [
            ("/info", _json_answer(info)),
            ("/networks/", _json_answer(view)),
            ("/networks", _json_answer(networks)),
            ("/containers/json", _json_answer([{"Id": "ab" * 32}])),
            ("/containers/", _json_answer({"NetworkSettings": {"SandboxKey": 5}})),
        ],
    )
    try:
        env = {"DOCKER_HOST": f"unix://{engine.path}"}
        nodes = f"--nodes n1=unix://{engine.path}"
        runs = [
            netns_shell("--json", "-c", f"check {nodes}", env=env),
            netns_shell("--json", "-c", f"check --cluster {nodes}", env=env),
            netns_shell("--json", "-c", f"trace {nodes} 10.1.2.3", env=env),
            netns_shell("--json", "-c", f"trace {nodes} 'web\r\nPOST /x HTTP/1.1'", env=env),
        ]
    finally:
        engine.close()
    for run in runs:
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
        assert run.status in (0, 1, 2), run.stderr
    assert not any(p.startswith("POST") or "\r" in p for p in engine.requests), engine.requests


def test_an_agent_answer_of_the_wrong_shape_is_an_error_not_a_crash():
    from netns_shell.collect import MARK, material_from_records

    for records in (
        [{"mark": MARK, "node": "x", "network": {"id": 1}, "view": []}],
        [{"mark": MARK, "network": {"id": "n"}, "view": {"endpoints": {"1.2.3.4": {"zz": 1}}}}],
        [{"mark": MARK, "network": {}, "view": {}, "tables": {"path": 1}}],
    ):
        material = material_from_records(records, name="n3", mode="container", endpoint="x")
        assert material.name == "n3"
        assert material.error is None or "malformed" in material.error
