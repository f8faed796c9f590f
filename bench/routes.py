#!/usr/bin/env python3
"""Benchmark: `routes -4` on a big table written to /dev/null, next to `ip route show`.

Builds a namespace holding N IPv4 routes (`ip -batch`), then, in the same run
and interleaved so both see the same machine load, times

    netns-shell --net /var/run/netns/NS -c 'routes -4' > /dev/null
    ip -n NS -4 route show > /dev/null

several times each and reports the medians, their ratio (the issue's target:
<= 3x) and netns-shell's peak RSS (ru_maxrss from wait4, the process's own
peak: the target is <= 64 MB).  CPU time (user + system, from the same
wait4) is reported too: on a shared machine it moves less with the load than
wall time does.  The namespace is removed at the end, also
after Ctrl-C, unless --keep names an existing one to reuse.

Run as root from the repository (not part of the test suite):

    PYTHONPATH=$PWD .venv/bin/python bench/routes.py                 # 500k routes, 5 runs
    PYTHONPATH=$PWD .venv/bin/python bench/routes.py --routes 100000 --runs 3
    PYTHONPATH=$PWD .venv/bin/python bench/routes.py --profile       # where the time goes
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time

SHELL = [sys.executable, "-m", "netns_shell"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dumps import compile_bytecode, profile  # noqa: E402  (the sibling benchmark's helpers)


def build(name: str, routes: int) -> None:
    """A namespace with a bridge and `routes` /32 routes through one gateway (like bench/dumps)."""
    subprocess.run(["ip", "netns", "add", name], check=True)
    lines = [
        "link set lo up",
        "link add br0 type bridge",
        "link set br0 up",
        "addr add 10.255.0.1/16 dev br0",
    ]
    lines += (
        f"route add 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32 via 10.255.0.2 dev br0 "
        "proto static"
        for i in range(routes)
    )
    subprocess.run(
        ["ip", "-n", name, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True
    )


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Run argv with stdout on /dev/null: (wall s, CPU s (user + system), peak RSS KiB)."""
    with open(os.devnull, "w") as null:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=null)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def compare(name: str, runs: int) -> dict[str, float]:
    """Medians of wall and CPU time of both, and netns-shell's largest peak RSS (KiB)."""
    ours_argv = [*SHELL, "--net", f"/var/run/netns/{name}", "-c", "routes -4"]
    ip_argv = ["ip", "-n", name, "-4", "route", "show"]
    timed(ours_argv)  # warm the page cache once
    ip_runs, our_runs = [], []
    for _ in range(runs):  # interleaved: both see the same load
        ip_runs.append(timed(ip_argv))
        our_runs.append(timed(ours_argv))
    return {
        "ip_wall": statistics.median(r[0] for r in ip_runs),
        "ip_cpu": statistics.median(r[1] for r in ip_runs),
        "our_wall": statistics.median(r[0] for r in our_runs),
        "our_cpu": statistics.median(r[1] for r in our_runs),
        "rss": max(r[2] for r in our_runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--routes", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--keep", metavar="NS", help="reuse this namespace (not built, not removed)"
    )
    parser.add_argument("--profile", action="store_true", help="also profile the routes dump")
    options = parser.parse_args()
    name = options.keep or f"nsroutes{os.getpid()}{secrets.token_hex(2)}"
    try:
        if not options.keep:
            print(f"building {name}: {options.routes} routes ...", flush=True)
            build(name, options.routes)
        compile_bytecode()
        got = compare(name, options.runs)
        print(
            f"routes -4 > /dev/null, median of {options.runs} interleaved runs "
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):\n"
            f"  wall: ip route show {got['ip_wall']:.3f} s, netns-shell {got['our_wall']:.3f} s, "
            f"ratio {got['our_wall'] / got['ip_wall']:.2f} (target <= 3)\n"
            f"  CPU (user + system): ip {got['ip_cpu']:.3f} s, netns-shell "
            f"{got['our_cpu']:.3f} s, ratio {got['our_cpu'] / got['ip_cpu']:.2f}\n"
            f"  netns-shell peak RSS {got['rss'] / 1024:.1f} MB (target <= 64)"
        )
        if options.profile:
            profile(name)
    finally:
        if not options.keep:
            subprocess.run(["ip", "netns", "del", name], check=False)


if __name__ == "__main__":
    main()
