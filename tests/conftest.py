"""Shared fixtures: real namespaces that are always removed, and the real CLI.

Every name a test creates is unique to the run (pid + random token), so
tests can run in parallel (pytest -n) and never touch what others made.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netns_shell.lab import Lab

ROOT = Path(__file__).resolve().parent.parent

# The workers of pytest-xdist run with COLUMNS=80 and LINES=24 in their environment, and a
# terminal's size is read from those before the terminal itself (shutil.get_terminal_size):
# a pseudo-terminal a test opens at 200 columns would get tables fitted to 80. Every
# program a test starts takes the size of the terminal it is given, or none.
for _variable in ("COLUMNS", "LINES"):
    os.environ.pop(_variable, None)


def unique(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid()}{secrets.token_hex(3)}"


@dataclass
class Run:
    """What one run of the console script gave back."""

    status: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)

    @property
    def json_documents(self) -> list:
        decoder = json.JSONDecoder()
        docs, text, i = [], self.stdout, 0
        while i < len(text):
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            doc, i = decoder.raw_decode(text, i)
            docs.append(doc)
        return docs


def netns_shell(
    *args: str, input: str | None = None, env: dict | None = None, timeout: float = 60
) -> Run:
    """Run the real console script (python -m netns_shell) and collect its output."""
    full_env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "netns_shell", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        errors="surrogateescape",
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def ip_json(*args: str) -> list:
    """iproute2's JSON output (the oracle)."""
    return json.loads(subprocess.check_output(["ip", "-j", *args]) or b"[]")


def bridge_json(*args: str) -> list:
    return json.loads(subprocess.check_output(["bridge", "-j", *args]) or b"[]")


def sh(*args: str) -> str:
    return subprocess.check_output(args, text=True)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """A Docker-overlay-shaped lab (read-only for the tests that share it)."""
    with Lab(prefix="nst") as built:
        yield built


@pytest.fixture
def fresh_lab() -> Iterator[Lab]:
    """A lab of the test's own, for tests that change it."""
    with Lab(prefix="nst") as built:
        yield built


@pytest.fixture
def netns() -> Iterator[str]:
    """An empty named namespace (in /var/run/netns), removed afterwards."""
    name = unique("nst-e")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def tmpdir_clean() -> Iterator[Path]:
    """A temporary directory; any namespace bind mounts inside are unmounted first."""
    path = Path(tempfile.mkdtemp(prefix="nst-"))
    try:
        yield path
    finally:
        for mount in _mounts_under(path):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(path, ignore_errors=True)


def _mounts_under(path: Path) -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            point = line.split()[4]
            if point.startswith(str(path) + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


@pytest.fixture
def process_netns() -> Iterator[int]:
    """A process in a namespace of its own that no file names (process-only)."""
    proc = subprocess.Popen(["unshare", "--net", "sleep", "300"])
    try:
        _wait_for_own_netns(proc.pid)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _wait_for_own_netns(pid: int) -> None:
    """Wait until `unshare` has made its namespace and exec'd the program."""
    import time

    mine = os.stat("/proc/self/ns/net").st_ino
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as fh:
                comm = fh.read().strip()
            if comm != "unshare" and os.stat(f"/proc/{pid}/ns/net").st_ino != mine:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"process {pid} did not enter a namespace of its own")


def wait_listening(netns: str, port: int, *, udp: bool = False, seconds: float = 30) -> None:
    """Wait until a socket of `netns` listens on `port` (a server started in the background
    is ready only then: before, a client is refused)."""
    import time

    argv = ["ip", "netns", "exec", netns, "ss", "-Hln" + ("u" if udp else "t"), f"sport = :{port}"]
    deadline = time.monotonic() + seconds
    while not subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip():
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on port {port} in {netns} after {seconds} s")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def docker_swarm():
    """A real 3-node swarm (netns_shell.swarm), one per test process, removed at the end."""
    from tests.swarmenv import running_swarm

    with running_swarm(3) as swarm:
        yield swarm


#: escape sequences a pseudo-terminal shows (colours, cursor moves, charset switches, CR)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
#: the REPL's prompt, '...[namespace]> ', with the label in bold
PROMPT = r"\](\x1b\[[0-9;]*m)*> ?"


@pytest.fixture
def shell(tmp_path):
    """Start `netns-shell ARGS` on a pseudo-terminal with a temporary home; returns at the
    first prompt. Every shell started is ended afterwards."""
    import pexpect

    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
        "PAGER": "cat",
    }
    children = []

    def start(*args: str) -> pexpect.spawn:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "netns_shell", *args],
            env=env,
            encoding="utf-8",
            timeout=20,
            dimensions=(50, 200),
        )
        children.append(child)
        child.expect(PROMPT)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)
