"""`capture` against real namespaces, with tshark, capinfos and tcpdump as the oracles.

Every test captures in a namespace of its own pair (`a` captures on `va`,
`b` sends from `vb`), so tests run in parallel; namespaces, mounts and
processes are removed even when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest

from netns_shell.capture.records import Finished
from netns_shell.capture.stream import _RateLimit
from netns_shell.capture.writer import trim_partial_record
from tests.conftest import ROOT, netns_shell, unique

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None or shutil.which("tcpdump") is None,
    reason="needs tshark and tcpdump (.ci/setup installs them)",
)

SENDER = """
import socket, sys, time
dst, plan = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i, item in enumerate(plan):
    port, payload = item.split(":", 1)
    s.sendto(payload.encode(), (dst, int(port)))
    if i % 200 == 199:
        time.sleep(0.005)  # stay under the receive backlog of the veth
"""
COUNT_LINES = re.compile(r"^(\d+) packets (captured|received by filter|dropped by kernel)$", re.M)


@dataclass
class Pair:
    """Namespace `a` (capturing, va 10.99.0.1) and `b` (sending, vb 10.99.0.2)."""

    a: str
    b: str

    @property
    def path(self) -> str:
        return f"/var/run/netns/{self.a}"

    def send(self, plan: list[str]) -> None:
        """Send UDP datagrams from b to a; `plan` items are 'PORT:PAYLOAD'."""
        subprocess.run(
            ["ip", "netns", "exec", self.b, sys.executable, "-c", SENDER, "10.99.0.1", *plan],
            check=True,
            timeout=60,
        )

    def send_many(self, port: int, count: int, size: int = 20) -> None:
        self.send([f"{port}:{'x' * size}"] * count)


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair(unique("nstc-a"), unique("nstc-b"))
    try:
        for name in (made.a, made.b):
            subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(
            ["ip", "-n", made.a, "link", "add", "va", "type", "veth", "peer", "name", "vb"],
            check=True,
        )
        subprocess.run(["ip", "-n", made.a, "link", "set", "vb", "netns", made.b], check=True)
        for ns, dev, address in ((made.a, "va", "10.99.0.1"), (made.b, "vb", "10.99.0.2")):
            batch = f"addr add {address}/24 dev {dev}\nlink set {dev} up\nlink set lo up\n"
            subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
        yield made
    finally:
        for name in (made.a, made.b):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@contextmanager
def capturing(pair: Pair, command: str, **popen: object) -> Iterator[subprocess.Popen]:
    """Run `netns-shell --net A -c COMMAND`; yields once it says 'capturing on'."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", "--net", pair.path, "-c", command],
        stderr=subprocess.PIPE,
        cwd=ROOT,
        **popen,
    )
    try:
        first = _readline(proc, timeout=30)
        assert first.startswith(b"capturing on"), first
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _readline(proc: subprocess.Popen, timeout: float) -> bytes:
    assert proc.stderr is not None
    if not select.select([proc.stderr], [], [], timeout)[0]:
        raise AssertionError("netns-shell did not start capturing")
    return proc.stderr.readline()


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    """Wait for the capture to end: (status, the rest of stderr)."""
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.decode(errors="replace")


def tshark_fields(path: Path, *fields: str, display_filter: str = "") -> list[list[str]]:
    argv = ["tshark", "-r", str(path), "-T", "fields"]
    argv += [arg for field in fields for arg in ("-e", field)]
    argv += ["-Y", display_filter] if display_filter else []
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines()]


def assert_one_line_error(run_stderr: str, *needles: str) -> None:
    lines = [line for line in run_stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("netns-shell: ")]
    assert len(errors) == 1, run_stderr
    assert "Traceback" not in run_stderr
    for needle in needles:
        assert needle in errors[0], run_stderr


@contextmanager
def tmpfs(options: str) -> Iterator[Path]:
    """A small tmpfs mount in a fresh directory, unmounted afterwards."""
    where = Path(tempfile.mkdtemp(prefix="nstc-mnt-"))
    mounted = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
        mounted = True
        yield where
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=False)
        shutil.rmtree(where, ignore_errors=True)


# ------------------------------------------------------------------ -w FILE
def test_writes_exactly_the_matching_packets(pair, tmp_path):
    out = tmp_path / "f.pcap"
    plan = [f"5555:match-{i:05d}" for i in range(2000)]
    for k in range(300):  # non-matching datagrams, interleaved
        plan.insert(k * 7, f"6666:other-{k:04d}")
    with capturing(pair, f"capture -c 2000 -w {out} 'udp port 5555'") as proc:
        pair.send(plan)
        status, err = finish(proc)
    assert status == 0, err
    assert re.search(r"^2000 packets captured$", err, re.M), err
    rows = tshark_fields(out, "udp.dstport", "data.data")
    assert len(rows) == 2000
    assert {port for port, _ in rows} == {"5555"}
    payloads = {bytes.fromhex(data).decode() for _, data in rows}
    assert payloads == {f"match-{i:05d}" for i in range(2000)}
    header = out.read_bytes()[:24]
    assert struct.unpack("<I", header[20:24])[0] == 1  # link type EN10MB


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_mid_capture_leaves_a_readable_file(pair, tmp_path, signum):
    out = tmp_path / "s.pcap"
    with capturing(pair, f"capture -w {out} udp") as proc:
        pair.send_many(5555, 500)
        time.sleep(0.2)
        proc.send_signal(signum)
        status, err = finish(proc)
    assert status == 0, err
    counts = {what: int(n) for n, what in COUNT_LINES.findall(err)}
    assert set(counts) == {"captured", "received by filter", "dropped by kernel"}, err
    rows = tshark_fields(out, "udp.dstport")
    assert len(rows) == counts["captured"] == 500  # the last block is written too
    assert counts["dropped by kernel"] == 0


def test_writes_to_a_pipe(pair):
    with capturing(pair, "capture -c 20 -w - udp", stdout=subprocess.PIPE) as proc:
        reader = subprocess.Popen(
            ["tshark", "-r", "-", "-T", "fields", "-e", "udp.dstport"],
            stdin=proc.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            proc.stdout.close()  # tshark holds the read end now
            pair.send_many(5555, 20)
            status, err = finish(proc)
            ports, _ = reader.communicate(timeout=60)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
    assert status == 0, err
    assert reader.returncode == 0
    assert ports.split() == ["5555"] * 20


def test_standard_output_on_a_terminal_is_refused(pair):
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell", "--net", pair.path, "-c", "capture -c 1 -w -"],
        encoding="utf-8",
        timeout=30,
    )
    try:
        child.expect(pexpect.EOF)
        child.close()
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert child.exitstatus == 2
    assert "refusing to write pcap data to a terminal" in child.before
    assert "Traceback" not in child.before


def test_a_full_disk_is_one_line_and_the_file_stays_readable(pair):
    with tmpfs("size=64k") as mount:
        out = mount / "f.pcap"
        with capturing(pair, f"capture --duration 20 -w {out} udp") as proc:
            pair.send_many(5555, 1500, size=200)  # ~370 kB, the disk holds 64 kB
            status, err = finish(proc)
        assert status == 1, err
        assert_one_line_error(err, "No space left on device", str(out))
        kept = int(re.search(r"\((\d+) packets\)", err).group(1))
        assert kept > 100
        assert len(tshark_fields(out, "udp.dstport")) == kept
        check = subprocess.run(["capinfos", str(out)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr  # not cut in the middle of a packet


def test_an_interface_deleted_mid_capture_ends_it(pair, tmp_path):
    out = tmp_path / "gone.pcap"
    with capturing(pair, f"capture -w {out} udp") as proc:
        pair.send_many(5555, 100)
        # the 100 packets are in the file (flushed every second) before the interface goes:
        # this test is about how the capture ends, not about packets still in the ring
        _wait_for_size(out, 24 + 100 * (16 + 62))
        subprocess.run(["ip", "-n", pair.a, "link", "del", "va"], check=True)
        status, err = finish(proc, timeout=20)
    assert status == 1, err
    assert_one_line_error(err, "va", "interface disappeared")
    assert re.search(r"^100 packets captured$", err, re.M), err
    assert len(tshark_fields(out, "udp.dstport")) == 100


def _wait_for_size(path: Path, size: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() or path.stat().st_size < size:
        assert time.monotonic() < deadline, f"{path} did not reach {size} bytes"
        time.sleep(0.1)


# ---------------------------------------------------------- one-line errors
def test_a_bad_filter_is_libpcaps_message_and_nothing_starts(pair, tmp_path):
    out = tmp_path / "never.pcap"
    run = netns_shell("--net", pair.path, "-c", f"capture -w {out} udp prot 53")
    assert run.status == 2
    assert_one_line_error(run.stderr, "bad filter 'udp prot 53'", "syntax error")
    assert "capturing on" not in run.stderr
    assert not out.exists()


def test_a_missing_interface_is_one_line(pair):
    run = netns_shell("--net", pair.path, "-c", "capture -i eth9 -c 1")
    assert run.status == 1
    assert_one_line_error(run.stderr, "no interface named 'eth9'", "va")


def test_an_unwritable_path_is_one_line(pair):
    run = netns_shell("--net", pair.path, "-c", "capture -c 1 -w /proc/nope/x.pcap")
    assert run.status == 1
    assert_one_line_error(run.stderr, "cannot write /proc/nope/x.pcap", "No such file")
    with tmpfs("ro,size=64k") as readonly:
        run = netns_shell("--net", pair.path, "-c", f"capture -c 1 -w {readonly}/x.pcap")
    assert run.status == 1
    assert_one_line_error(run.stderr, "Read-only file system")


# ------------------------------------------------------------- decoding
def test_reads_a_file_tcpdump_wrote(pair, tmp_path):
    path = tmp_path / "tcpdump.pcap"
    tcpdump = subprocess.Popen(
        ["ip", "netns", "exec", pair.a, "tcpdump", "-i", "va", "-c", "5", "-w", str(path), "udp"],
        stderr=subprocess.PIPE,
    )
    try:
        assert b"listening on" in _readline(tcpdump, timeout=30)
        pair.send_many(5555, 5)
        tcpdump.wait(timeout=30)
    finally:
        if tcpdump.poll() is None:
            tcpdump.kill()
            tcpdump.wait()
    run = netns_shell("-c", f"capture -r {path}")
    assert run.status == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 5
    udp = re.compile(r" IP 10\.99\.0\.2\.\d+ > 10\.99\.0\.1\.5555: UDP, length 20 \(frame 62 bytes")
    assert all(udp.search(line) for line in lines), lines
    assert run.stderr.startswith(f"reading from file {path}, link-type EN10MB (Ethernet)")
    # the same filters as a live capture, and into another file
    assert netns_shell("-c", f"capture -r {path} udp port 6666").stdout == ""
    copy = tmp_path / "copy.pcap"
    run = netns_shell("-c", f"capture -r {path} -c 3 -w {copy} udp port 5555")
    assert run.status == 0, run.stderr
    assert len(tshark_fields(copy, "udp.dstport")) == 3
    assert run.stderr.splitlines()[-1] == "3 packets written", run.stderr  # the count is exact


def test_live_view_shows_and_counts_every_packet(pair):
    with capturing(pair, "capture -c 3000 udp", stdout=subprocess.PIPE) as proc:
        pair.send_many(5555, 3000)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.decode().splitlines()
    shown = [line for line in lines if not line.startswith("... ")]
    assert shown and all(" va IP 10.99.0.2." in line and "UDP, length 20" in line for line in shown)
    not_shown = sum(int(line.split()[1]) for line in lines if line.startswith("... "))
    assert not_shown > 0  # more than a pipe's rate limit came at once
    assert len(shown) + not_shown == 3000
    assert re.search(rb"^3000 packets captured$", err, re.M)


def test_live_view_json_on_every_interface(pair):
    command = "capture -i any -c 3 udp port 5555"
    proc = subprocess.Popen(
        [sys.executable, "-m", "netns_shell", "--json", "--net", pair.path, "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert _readline(proc, timeout=30).startswith(b"capturing on any in ")
        pair.send_many(5555, 3)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = json.loads(out)
    assert [r["ifname"] for r in records] == ["va"] * 3
    assert all(r["direction"] == "In" and r["length"] == 48 for r in records)  # 20+8+20
    udp = re.compile(r"IP 10\.99\.0\.2\.\d+ > 10\.99\.0\.1\.5555: UDP, length 20")
    assert all(udp.fullmatch(r["summary"]) for r in records), records


# ---------------------------------------------------------- default and REPL
def test_the_first_line_says_which_interface(lab):
    one = netns_shell("--net", lab.path("c1"), "-c", "capture -c 1 --duration 0.3")
    assert one.status == 0, one.stderr
    assert one.stderr.startswith("capturing on eth0 (its only interface besides lo) in ")
    assert "link-type EN10MB (Ethernet), snapshot length 262144 bytes" in one.stderr
    many = netns_shell("--net", lab.entry_path, "-c", "capture -c 1 --duration 0.3")
    assert many.status == 0, many.stderr
    assert re.match(r"capturing on any \(\d+ interfaces\) in .*link-type LINUX_SLL2", many.stderr)


def test_ctrl_c_in_the_repl_ends_the_capture_and_returns_to_the_prompt(pair, tmp_path):
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netns_shell", "--net", pair.path],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 200),
    )
    try:
        child.expect(r"\]\S*> ?")
        child.sendline("capture udp")
        child.expect_exact("capturing on va")
        pair.send_many(5555, 3)
        child.expect_exact("> 10.99.0.1.5555: UDP, length 20 (frame 62 bytes)")
        child.sendintr()
        child.expect_exact("packets captured")
        child.expect_exact("0 packets dropped by kernel")
        child.expect(r"\]\S*> ?")  # back at the prompt
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)


# ------------------------------------------------------------------ pure
def test_trim_cuts_after_the_last_whole_record(tmp_path):
    path = tmp_path / "cut.pcap"
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    record = struct.pack("<IIII", 1, 2, 4, 4) + b"abcd"
    path.write_bytes(header + record * 3 + record[:10])
    with open(path, "r+b") as fh:
        assert trim_partial_record(fh.fileno()) == 3
    assert path.stat().st_size == 24 + 3 * len(record)
    (tmp_path / "empty.pcap").write_bytes(b"")
    with open(tmp_path / "empty.pcap", "r+b") as fh:
        assert trim_partial_record(fh.fileno()) is None


def test_rate_limit_allows_a_burst_then_the_rate():
    limit = _RateLimit(50)
    taken = sum(limit.take() for _ in range(1000))
    assert 50 <= taken <= 52
    slow = _RateLimit(1000, share=0.25)
    shown = 0
    for _ in range(1000):
        if slow.take():
            slow.spend(0.05)  # a decoder that needs 50 ms per frame
            shown += 1
    assert shown <= 6  # 0.25 s of decoding, not 1000 lines


def test_finished_lines_are_tcpdumps():
    from netns_shell.capture.pcap import Stats

    assert Finished(7, Stats(9, 2, 0), "interrupted").lines() == [
        "7 packets captured",
        "9 packets received by filter",
        "2 packets dropped by kernel",
    ]
