"""No terminal escape from a namespace reaches the terminal, whatever the command.

Escape sequences are planted in every name the kernel hands out and a
namespace's owner chooses: namespace file names, interface names, aliases
and altnames, bridge and vxlan names (so they appear as `master`, `dev`,
`viaIf`, veth peers, route devices), and a process name (`sockets`). Every
command then runs on a pseudo-terminal, with tables taller than the screen
so that the pager path is taken too, and the raw bytes are searched for
escape (ESC), bell (BEL) and C1 control bytes. A name shown escaped once
(`\\x1b`) is right; escaped twice (`\\\\x1b`) is a bug too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pexpect
import pytest

from tests.conftest import unique

ESC = "\x1b[31m"  # 5 bytes: interface names hold 15
BR = f"{ESC}br"
VX = f"{ESC}vx"
VA = f"{ESC}va"
VB = f"{ESC}vb"
OSC_ALIAS = "\x1b]0;owned\x07\x9b2J and more"
# what our own status line draws on a terminal (capture), the only escape we write
#: what netns-shell itself writes: erase-line (capture's progress), dim on/off (the note
#: under a table fitted to the terminal)
_OURS = re.compile(r"\r?\x1b\[K|\x1b\[[20]m")


@pytest.fixture(scope="module")
def hostile():
    """Two namespaces with hostile names, joined by a veth, with a bridge and a vxlan."""
    tag = unique("-")
    a, b = f"nsesc{ESC}a{tag}", f"nsesc\x1b]0;b\x07{tag}"
    made = []
    try:
        for name in (a, b):
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
        lines = [
            "link set lo up",
            f"link add {BR} type bridge",
            f"link add {VX} type vxlan id 42 dstport 4789 local 127.0.0.1 nolearning",
            f"link add {VA} type veth peer name {VB} netns {b}",
            f"link set {VX} master {BR}",
            f"link set {VA} master {BR}",
            *(f"link set {dev} up" for dev in (BR, VX, VA)),
            f"addr add 10.77.0.1/24 dev {BR}",
            f"route add 10.78.0.0/16 dev {BR} table 100",
        ]
        for dev in (BR, VX, VA):
            lines.append(f"link set {dev} alias '{OSC_ALIAS}'")
            lines.append(f"link property add dev {dev} altname {dev}\x07alt")
        for i in range(40):  # taller than the screen: the pager path
            lines.append(
                f"neigh add 10.77.0.{i + 10} lladdr 02:00:00:00:01:{i:02x} dev {BR} nud permanent"
            )
            lines.append(f"route add 10.79.{i}.0/24 dev {BR}")
        _batch(["ip", "-n", a], lines)
        fdb = [
            f"fdb add 02:00:00:00:02:{i:02x} dev {VX} dst 127.0.0.{i + 2} via {BR} self permanent"
            for i in range(40)
        ]
        _batch(["bridge", "-n", a], fdb)
        _batch(
            ["ip", "-n", b],
            ["link set lo up", f"link set {VB} up", f"addr add 10.77.0.2/24 dev {VB}"],
        )
        yield a, b
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


def _batch(argv: list[str], lines: list[str]) -> None:
    subprocess.run([*argv, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True)


def _on_a_terminal(args: list[str], *, timeout: float = 30, when=None) -> str:
    """Everything the CLI wrote to a 12-line terminal (stdout and stderr), raw.
    `when` = (text, action): call action() once the CLI has written text."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell", *args],
        env={
            **{k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")},
            "PAGER": "cat",
            "TERM": "xterm",
        },
        encoding="utf-8",
        codec_errors="surrogateescape",
        timeout=timeout,
        dimensions=(12, 160),
    )
    seen = ""
    if when is not None:
        child.expect_exact(when[0])
        seen = child.before + child.after
        when[1]()
    child.expect(pexpect.EOF)
    child.close()
    return seen + child.before


def _assert_clean(output: str, what: str) -> None:
    text = _OURS.sub("", output)
    leaked = sorted(
        {hex(ord(c)) for c in text if (ord(c) < 0x20 and c not in "\r\n") or 0x7F <= ord(c) < 0xA0}
    )
    assert not leaked, (what, leaked, text[:2000])
    assert "\\\\x1b" not in text, (what, "escaped twice", text[:2000])


COMMANDS = [
    "ns",
    "links",
    "links -d",
    "routes",
    "routes table all",
    "neigh -a",
    "fdb",
    "bridges",
    "overlay",
    "topology",
    "find 02:00:00:00:02:01",
    f"find {VA}",
    "find 10.77.0.2",
    "capture -c 1 --duration 1 -i any",
    "help links",
    "nosuchcommand",
    f"use {ESC}nosuch",
    "sockets",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_no_escape_reaches_the_terminal(hostile, command):
    a, _ = hostile
    output = _on_a_terminal([f"/var/run/netns/{a}", "-c", command])
    _assert_clean(output, command)


def test_graphviz_output_escapes_names_once_for_dot(hostile):
    """`topology --dot` is a document: names are escaped once for the terminal, then quoted
    for dot, whose own `\\n` between label lines must survive (it was escaped twice)."""
    a, _ = hostile
    output = _on_a_terminal([f"/var/run/netns/{a}", "-c", "topology --dot"])
    text = _OURS.sub("", output)
    assert not [c for c in text if ord(c) < 0x20 and c not in "\r\n"]
    assert '[label="\\\\x1b[31mbr\\nbridge"]' in text  # dot reads: \x1b[31mbr, newline, bridge
    unquoted = text.replace("\\\\", "\\")  # what dot shows
    assert "\\x1b[31mvx" in unquoted and "\\\\x1b" not in unquoted


def test_escapes_in_watch_events_and_its_label(hostile):
    a, _ = hostile

    def change() -> None:  # once watch says it is watching, so its events are seen
        _batch(
            ["ip", "-n", a],
            [
                f"link add {ESC}new type veth peer name {ESC}new2",
                f"link set {VA} alias '{OSC_ALIAS}!'",
            ],
        )

    command = "watch --duration 5 links"
    output = _on_a_terminal([f"/var/run/netns/{a}", "-c", command], when=("watching", change))
    assert "new" in output
    _assert_clean(output, "watch")


def test_escapes_in_a_process_name(hostile):
    """`sockets` shows the holders' comm, which a process sets itself (prctl PR_SET_NAME)."""
    a, _ = hostile
    program = (
        "import ctypes, socket, time\n"
        "ctypes.CDLL(None).prctl(15, b'\\x1b]0;x\\x07p', 0, 0, 0)\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('10.77.0.1', 5353))\n"
        "print('ready', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen(
        ["ip", "netns", "exec", a, sys.executable, "-c", program], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        output = _on_a_terminal([f"/var/run/netns/{a}", "-c", "sockets -u"])
        assert "5353" in output
        _assert_clean(output, "sockets")
    finally:
        holder.kill()
        holder.wait()
