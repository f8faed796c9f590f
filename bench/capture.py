#!/usr/bin/env python3
"""Benchmark: does `netns-shell capture -w` keep what tcpdump keeps, on the same link?

Builds two namespaces joined by a veth, floods UDP from one side (trafgen, or
iperf3 -u -b 0 -l 64) and captures on the other side, first with tcpdump -w,
then with `netns-shell capture -w`, for the same duration and with the same
filter and kernel buffer (64 MiB).  Each file is counted with capinfos and
compared with what the sender says it sent.  A last run offers ~20k packets/s
to the live view (no -w) and checks that shown + not shown + dropped by the
kernel account for every packet.

Run as root from the repository (not part of the test suite; a few seconds per run):

    python3 bench/capture.py                      # trafgen, 3 s per run
    python3 bench/capture.py --generator iperf3 --seconds 5 --rounds 2

Everything it creates (namespaces, files, processes) is removed on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBNET = "10.213.0"
PAYLOAD = 64
#: the flood's frames are 106 bytes; iperf3's 4-byte UDP hello and its reply are not counted
FILTER = "udp and greater 100"
COUNTS = re.compile(r"(\d+) packets (captured|received by filter|dropped by kernel)")


@dataclass
class Pair:
    """Two namespaces joined by a veth: `a` captures (va, .1), `b` sends (vb, .2)."""

    token: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(3)}")
    built: list[str] = field(default_factory=list)

    @property
    def a(self) -> str:
        return f"capbench-{self.token}-a"

    @property
    def b(self) -> str:
        return f"capbench-{self.token}-b"

    def build(self) -> Pair:
        for name in (self.a, self.b):
            run("ip", "netns", "add", name)
            self.built.append(name)
        run("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        run("ip", "-n", self.a, "link", "set", "vb", "netns", self.b)
        for ns, dev, host in ((self.a, "va", 1), (self.b, "vb", 2)):
            run("ip", "-n", ns, "addr", "add", f"{SUBNET}.{host}/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        return self

    def mac(self, ns: str, dev: str) -> str:
        out = subprocess.check_output(["ip", "-n", ns, "-j", "link", "show", dev])
        return json.loads(out)[0]["address"]

    def destroy(self) -> None:
        for name in reversed(self.built):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.built.clear()


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


# ------------------------------------------------------------- traffic
class Sender:
    """A UDP flood from namespace b to a: trafgen (default) or iperf3."""

    def __init__(self, kind: str, pair: Pair, workdir: Path, workers: int = 1):
        self.kind, self.pair, self.workdir, self.workers = kind, pair, workdir, workers
        self.server: subprocess.Popen | None = None

    def send(self, seconds: float, rate: int | None = None) -> int:
        """Flood for `seconds` (at most `rate` packets/s); returns the packets sent."""
        if self.kind == "iperf3":
            return self._iperf3(seconds, rate)
        return self._trafgen(seconds, rate)

    def _trafgen(self, seconds: float, rate: int | None) -> int:
        config = self.workdir / "udp.trafgen"
        macs = self.pair.mac(self.pair.a, "va"), self.pair.mac(self.pair.b, "vb")
        config.write_text(
            "{\n"
            f"  eth(da={macs[0]}, sa={macs[1]}),\n"
            f"  ipv4(saddr={SUBNET}.2, daddr={SUBNET}.1, ttl=64),\n"
            "  udp(sport=40000, dport=5555),\n"
            f"  fill(0x41, {PAYLOAD})\n"
            "}\n"
        )
        argv = ["ip", "netns", "exec", self.pair.b, "trafgen", "-o", "vb", "-i", str(config)]
        argv += ["-P", str(self.workers), "-C", "-Q"] + (["-b", f"{rate}pps"] if rate else [])
        # trafgen forks its workers: signal the whole group, as `timeout` does
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            time.sleep(seconds)
            os.killpg(proc.pid, signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        found = re.search(r"(\d+) packets outgoing", out)
        if not found:
            raise RuntimeError(f"trafgen said: {out.strip()[-300:]}")
        return int(found.group(1))

    def _iperf3(self, seconds: float, rate: int | None) -> int:
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.pair.a, "iperf3", "-s", "-1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)
            bitrate = str(rate * PAYLOAD * 8) if rate else "0"
            out = subprocess.check_output(
                [
                    *("ip", "netns", "exec", self.pair.b, "iperf3", "-c", f"{SUBNET}.1", "-u"),
                    *("-b", bitrate, "-l", str(PAYLOAD), "-t", str(seconds), "--json"),
                ],
                timeout=seconds + 30,
            )
            return int(json.loads(out)["end"]["sum"]["packets"])
        finally:
            server.kill()
            server.wait()


# ------------------------------------------------------------ capturing
def start_capture(argv: list[str], ready: str, **popen: object) -> subprocess.Popen:
    """Start a capture and wait until it says it listens (its stderr line `ready`)."""
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, **popen)
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    seen = ""
    while time.monotonic() < deadline:
        if select.select([proc.stderr], [], [], 0.5)[0]:
            line = proc.stderr.readline()
            seen += line
            if ready in line:
                return proc
            if not line:
                break
    proc.kill()
    raise RuntimeError(f"{argv[0]} did not start: {seen.strip()}")


def stop_capture(proc: subprocess.Popen) -> dict[str, int]:
    """SIGINT, then the three counts it prints."""
    time.sleep(0.3)  # let the last packets reach the ring
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    err = proc.stderr.read()  # not communicate(): the live run reads stdout itself
    proc.wait(timeout=30)
    return {what: int(n) for n, what in COUNTS.findall(err)}


def file_packets(path: Path) -> int:
    out = subprocess.check_output(["capinfos", "-c", "-M", str(path)], text=True)
    found = re.search(r"Number of packets:\s+(\d+)", out)
    return int(found.group(1)) if found else 0


def capture_argv(tool: str, pair: Pair, path: Path | None) -> tuple[list[str], str]:
    if tool == "tcpdump":
        argv = ["ip", "netns", "exec", pair.a, "tcpdump", "-i", "va", "-B", "65536"]
        return [*argv, "-s", "262144", "-w", str(path), FILTER], "listening on"
    write = f"-w {path} " if path else ""
    command = f"capture -i va {write}{FILTER}"
    argv = [sys.executable, "-m", "netns_shell", "--net", f"/var/run/netns/{pair.a}"]
    return [*argv, "-c", command], "capturing on"


def file_run(tool: str, pair: Pair, sender: Sender, seconds: float, workdir: Path) -> dict:
    path = workdir / f"{tool}.pcap"
    argv, ready = capture_argv(tool, pair, path)
    proc = start_capture(argv, ready, cwd=ROOT)
    try:
        sent = sender.send(seconds)
    finally:
        counts = stop_capture(proc)
    captured = file_packets(path)
    path.unlink()
    return {
        "tool": tool,
        "sent": sent,
        "captured": captured,
        "share": captured / sent if sent else 0.0,
        "dropped": counts.get("dropped by kernel", -1),
        "pps": sent / seconds,
    }


def live_run(pair: Pair, sender: Sender, seconds: float, rate: int) -> dict:
    """The live view (stdout a pipe): count shown lines and 'not shown' notices."""
    argv, ready = capture_argv("netns-shell", pair, None)
    proc = start_capture(argv, ready, cwd=ROOT, stdout=subprocess.PIPE)
    tally = {"shown": 0, "not_shown": 0}

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("... "):
                tally["not_shown"] += int(line.split()[1])
            elif line.strip():
                tally["shown"] += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        sent = sender.send(seconds, rate)
    finally:
        counts = stop_capture(proc)
        reader.join()
    return {"sent": sent, **tally, **counts}


# --------------------------------------------------------------- report
def report(rows: list[dict], live: dict | None, args: argparse.Namespace) -> None:
    print(
        f"\n{args.generator} ({args.senders} sender), {args.seconds:g} s per run, "
        f"UDP payload {PAYLOAD} B, filter '{FILTER}', "
        f"veth between two namespaces, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    header = ("tool", "sent", "captured", "share", "kernel drops", "offered pps")
    print("{:<12} {:>10} {:>10} {:>8} {:>13} {:>12}".format(*header))
    for r in rows:
        print(
            f"{r['tool']:<12} {r['sent']:>10} {r['captured']:>10} {r['share']:>8.2%} "
            f"{r['dropped']:>13} {r['pps']:>12.0f}"
        )
    for n in range(args.rounds):
        pair = rows[2 * n : 2 * n + 2]
        ratio = pair[1]["share"] / pair[0]["share"] if pair[0]["share"] else 0.0
        print(f"round {n + 1}: netns-shell / tcpdump = {ratio:.2%} (goal >= 99%)")
    if live:
        accounted = live["shown"] + live["not_shown"]
        captured = live.get("captured", -1)
        dropped = live.get("dropped by kernel", -1)
        print(
            f"live view at {args.live_rate} pps offered: sent {live['sent']}, received by filter "
            f"{live.get('received by filter', -1)}, shown {live['shown']} + not shown "
            f"{live['not_shown']} = {accounted} (captured {captured}), dropped by kernel {dropped}"
        )
        ok = accounted == captured and captured + dropped >= live["sent"]
        print(f"every packet accounted for (shown + not shown + dropped >= sent): {ok}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="flood duration per run")
    parser.add_argument("--rounds", type=int, default=1, help="tcpdump/netns-shell pairs")
    parser.add_argument("--generator", choices=("trafgen", "iperf3"), default="trafgen")
    parser.add_argument(
        "--senders", type=int, default=1, help="trafgen processes (each takes a CPU)"
    )
    parser.add_argument("--live-rate", type=int, default=20000, help="pps for the live run")
    parser.add_argument("--no-live", action="store_true", help="skip the live-view run")
    args = parser.parse_args()
    need = ["ip", "tcpdump", "capinfos", args.generator]
    missing = [tool for tool in need if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        sys.exit(f"needs root and {', '.join(need)} (missing: {', '.join(missing) or '-'})")
    workdir = Path(tempfile.mkdtemp(prefix="capbench-"))
    pair = Pair()
    try:
        pair.build()
        sender = Sender(args.generator, pair, workdir, args.senders)
        rows = []
        for _ in range(args.rounds):
            for tool in ("tcpdump", "netns-shell"):
                rows.append(file_run(tool, pair, sender, args.seconds, workdir))
        live = None if args.no_live else live_run(pair, sender, args.seconds, args.live_rate)
        report(rows, live, args)
    finally:
        pair.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
