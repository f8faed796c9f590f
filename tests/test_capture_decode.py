"""The one-line decode of `capture` against tcpdump's, on real traffic.

Two namespaces joined by a veth pair (and a VXLAN tunnel over it) exchange
ICMP echo, ARP, UDP, DNS (a hand-built query and answer over real sockets),
TCP (connect, data, close) and IPv6 (echo, neighbour discovery).  tcpdump
captures it to a pcap file, and so does `capture -i any -w` (Linux cooked
v2); then `capture -r FILE` must state the same protocol facts as
`tcpdump -n -S -r FILE` for every packet, line by line.
"""

from __future__ import annotations

import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from netns_shell.capture.dissect import INNER, describe
from tests.conftest import ROOT, netns_shell, unique

pytestmark = pytest.mark.skipif(
    shutil.which("tcpdump") is None or shutil.which("ping") is None,
    reason="needs tcpdump and ping (.ci/setup installs them)",
)

DNS_ID = 0x1234
#: answers one DNS query with one A record (1.2.3.4), from a real UDP socket
DNS_SERVER = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
s.settimeout(20)
query, peer = s.recvfrom(512)
head = struct.pack("!HHHHHH", struct.unpack_from("!H", query)[0], 0x8180, 1, 1, 0, 0)
answer = b"\\xc0\\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([1, 2, 3, 4])
s.sendto(head + query[12:] + answer, peer)
"""
DNS_CLIENT = """
import socket, struct, sys
def name(text):
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".")) + b"\\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(struct.pack("!HHHHHH", int(sys.argv[2]), 0x0100, 1, 0, 0, 0)
         + name("example.org") + struct.pack("!HH", 1, 1), (sys.argv[1], 53))
s.recvfrom(512)
"""
TCP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7777))
s.listen(1)
print("ready", flush=True)
s.settimeout(20)
c, _ = s.accept()
c.recv(100)
c.sendall(b"world")
c.close()
"""
TCP_CLIENT = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], 7777), timeout=10)
c.sendall(b"hello")
c.recv(100)
time.sleep(0.1)
c.close()
time.sleep(0.2)
"""
UDP_SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"x" * 20, (sys.argv[1], 5555))
"""


@dataclass
class Pair:
    """`a` (va 10.98.0.1, fd98::1; vx0 10.97.0.1) and `b` (vb .2, fd98::2; vx0 10.97.0.2)."""

    a: str
    b: str

    def run(self, ns: str, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=60
        )

    def serve(self, ns: str, script: str, *argv: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", script, *argv],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    def traffic(self) -> None:
        """Every kind of packet the decode is checked on, from a's side."""
        for ns in (self.a, self.b):  # so that ARP is on the wire (and inside the tunnel)
            subprocess.run(["ip", "-n", ns, "neigh", "flush", "all"], check=True)
        assert self.run(self.a, "ping", "-c", "2", "-i", "0.2", "10.98.0.2").returncode == 0
        self.run(self.a, sys.executable, "-c", UDP_SENDER, "10.98.0.2")  # b: port unreachable
        server = self.serve(self.b, DNS_SERVER, "10.98.0.2")
        client = self.run(self.a, sys.executable, "-c", DNS_CLIENT, "10.98.0.2", str(DNS_ID))
        assert client.returncode == 0, client.stderr
        server.wait(timeout=20)
        server = self.serve(self.b, TCP_SERVER, "10.98.0.2")
        client = self.run(self.a, sys.executable, "-c", TCP_CLIENT, "10.98.0.2")
        assert client.returncode == 0, client.stderr
        server.wait(timeout=20)
        assert self.run(self.a, "ping", "-6", "-c", "2", "-i", "0.2", "fd98::2").returncode == 0
        assert self.run(self.a, "ping", "-c", "2", "-i", "0.2", "10.97.0.2").returncode == 0


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair(unique("nsdc-a"), unique("nsdc-b"))
    try:
        for name in (made.a, made.b):
            subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(
            ["ip", "-n", made.a, "link", "add", "va", "type", "veth", "peer", "name", "vb"],
            check=True,
        )
        subprocess.run(["ip", "-n", made.a, "link", "set", "vb", "netns", made.b], check=True)
        for ns, dev, me, peer in ((made.a, "va", 1, 2), (made.b, "vb", 2, 1)):
            batch = (
                f"addr add 10.98.0.{me}/24 dev {dev}\n"
                f"addr add fd98::{me}/64 dev {dev} nodad\n"
                f"link set {dev} up\nlink set lo up\n"
                f"link add vx0 type vxlan id 4097 local 10.98.0.{me} remote 10.98.0.{peer} "
                f"dstport 4789 dev {dev}\n"
                f"addr add 10.97.0.{me}/24 dev vx0\nlink set vx0 up\n"
            )
            subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
        yield made
    finally:
        for name in (made.a, made.b):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def _tcpdump_lines(path: Path) -> list[str]:
    run = subprocess.run(
        ["tcpdump", "-n", "-S", "-r", str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


@contextmanager
def _tcpdump(ns: str, path: Path) -> Iterator[None]:
    """tcpdump writing every packet of va to `path` while the block runs. Immediate mode:
    without it the last packets wait in a ring block (1 s timeout) that SIGTERM discards."""
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "tcpdump",
            "--immediate-mode",
            "-U",
            "-i",
            "va",
            "-w",
            str(path),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None and b"listening on" in proc.stderr.readline()
        yield
        time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def _capture_any(ns: str, path: Path) -> Iterator[None]:
    """`capture -i any -w FILE` (Linux cooked v2) while the block runs."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netns_shell",
            "--net",
            f"/var/run/netns/{ns}",
            "-c",
            f"capture -i any -w {path}",
        ],
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert proc.stderr is not None and proc.stderr.readline().startswith(b"capturing on any")
        yield
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def _ours(path: Path) -> list[str]:
    run = netns_shell("-c", f"capture -r {path}")
    assert run.status == 0, run.stderr
    return run.stdout.splitlines()


def _joined(lines: list[str]) -> list[str]:
    """tcpdump's lines, a VXLAN packet's inner frame joined to its outer line."""
    out: list[str] = []
    for line in lines:
        if TIME.match(line):
            out.append(line)
        else:
            out[-1] += INNER + line
    return out


TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} ")
FRAME = re.compile(r" \(frame (\d+) bytes\)$")
#: what every capture of pair.traffic() must hold, in tcpdump's words
EXPECTED = (
    # either side may ask first, and a unicast probe of a stale entry names the MAC it
    # expects ("who-has IP (MAC) tell"): the decode is what is checked, not who asks
    r"ARP, Request who-has 10\.98\.0\.[12] (\([0-9a-f:]{17}\) )?tell 10\.98\.0\.[12], length 28$",
    r"ARP, Reply 10\.98\.0\.[12] is-at [0-9a-f:]{17}, length 28$",
    r"IP 10\.98\.0\.1 > 10\.98\.0\.2: ICMP echo request, id \d+, seq 2, length 64$",
    r"IP 10\.98\.0\.2 > 10\.98\.0\.1: ICMP echo reply, id \d+, seq 2, length 64$",
    r"IP 10\.98\.0\.1\.\d+ > 10\.98\.0\.2\.5555: UDP, length 20$",
    r"ICMP 10\.98\.0\.2 udp port 5555 unreachable, length 56$",
    rf"\.53: {DNS_ID}\+ A\? example\.org\. \(29\)$",
    rf"IP 10\.98\.0\.2\.53 > 10\.98\.0\.1\.\d+: {DNS_ID} 1/0/0 A 1\.2\.3\.4 \(45\)$",
    r"\.7777: Flags \[S\], seq \d+, win \d+, options \[mss 1460,sackOK,TS val \d+ ecr 0,",
    r"7777 > 10\.98\.0\.1\.\d+: Flags \[S\.\], seq \d+, ack \d+, win \d+, options",
    r"Flags \[P\.\], seq \d+:\d+, ack \d+, win \d+, options \[nop,nop,TS val \d+ ecr \d+\], "
    r"length 5$",
    r"Flags \[F\.\], seq \d+, ack \d+, ",
    r"IP6 fd98::1 > ff02::1:ff00:2: ICMP6, neighbor solicitation, who has fd98::2, length 32$",
    r"IP6 fd98::2 > fd98::1: ICMP6, neighbor advertisement, tgt is fd98::2, length 32$",
    r"IP6 fd98::1 > fd98::2: ICMP6, echo request, id \d+, seq 2, length 64$",
    r"IP6 fd98::2 > fd98::1: ICMP6, echo reply, id \d+, seq 1, length 64$",
    r"\.4789: VXLAN, flags \[I\] \(0x08\), vni 4097 \| ARP, Request who-has 10\.97\.0\.2 "
    r"(\([0-9a-f:]{17}\) )?tell",
    r"\.4789: VXLAN, flags \[I\] \(0x08\), vni 4097 \| IP 10\.97\.0\.2 > 10\.97\.0\.1: ICMP echo "
    r"reply, id \d+, seq 2, length 64$",
)


def _assert_same_facts(ours: list[str], theirs: list[str], cooked: bool) -> None:
    """Line by line: the same time stamp, (direction,) and words after it."""
    assert len(ours) == len(theirs), (ours, theirs)
    for mine, tcpdump in zip(ours, theirs, strict=True):
        assert FRAME.search(mine), mine
        mine = FRAME.sub("", mine)
        stamp, _, rest = mine.partition(" ")
        their_stamp, _, their_rest = tcpdump.partition(" ")
        assert stamp == their_stamp
        if cooked:  # tcpdump names the host's interfaces (it warns so): compare the direction
            _, direction, rest = rest.split(" ", 2)
            _, their_direction, their_rest = their_rest.split(None, 2)
            assert direction == their_direction, (mine, tcpdump)
        assert rest == their_rest, (mine, tcpdump)
    for pattern in EXPECTED:
        assert any(re.search(pattern, line) for line in theirs), pattern


def test_the_decode_says_what_tcpdump_says(pair, tmp_path):
    ether, cooked = tmp_path / "va.pcap", tmp_path / "any.pcap"
    with _tcpdump(pair.a, ether), _capture_any(pair.a, cooked):
        pair.traffic()
    _assert_same_facts(_ours(ether), _joined(_tcpdump_lines(ether)), cooked=False)
    _assert_same_facts(_ours(cooked), _joined(_tcpdump_lines(cooked)), cooked=True)
    # the JSON record's length is the frame's, as tcpdump -e counts it on Ethernet
    run = netns_shell("--json", "-c", f"capture -r {ether}")
    lengths = [int(m) for m in re.findall(r", length (\d+): ", "\n".join(_linklevel(ether)))]
    assert [r["length"] for r in run.json] == lengths
    assert [r["summary"] for r in run.json] == [FRAME.sub("", x)[16:] for x in _ours(ether)]


def _linklevel(path: Path) -> list[str]:
    run = subprocess.run(
        ["tcpdump", "-e", "-n", "-r", str(path)], capture_output=True, text=True, timeout=60
    )
    return [line for line in run.stdout.splitlines() if TIME.match(line)]


def test_packet_strings_come_out_printable():
    """A DNS name with escapes and dots in a label is written in presentation format."""
    name = b"\x0b\x1b[2Jevil.x\x07" + b"\x03org\x00"
    query = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 1, 1)
    udp = struct.pack("!HHHH", 40000, 53, 8 + len(query), 0) + query
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    line = describe(ip + udp, 0x0800)
    assert line == "IP 10.0.0.1.40000 > 10.0.0.2.53: 7+ A? \\027[2Jevil\\046x\\007.org. (33)"
    assert line.isprintable()


def test_a_frame_cut_short_still_gets_a_line():
    """A truncated header is no line from struct (None: scapy summarizes it)."""
    assert describe(bytes.fromhex("4500003c00000000"), 0x0800) is None
