#!/usr/bin/env python3
"""Benchmark: netns-shell against iproute2 on big tables, in the same run.

Builds a namespace holding N routes, N FDB entries and N neighbours (with
`ip -batch` / `bridge -batch`), then times, for each table, iproute2 and
netns-shell writing to a pipe (median of several runs), and netns-shell's
peak RSS.  Also times `netns-shell -c links` start-up on a small namespace
and `netns-shell --list` with many namespaces.  Everything it creates is
removed at the end (also after Ctrl-C).

    sudo .venv/bin/python bench/dumps.py                 # the issue's sizes
    sudo .venv/bin/python bench/dumps.py --routes 50000 --fdb 10000 --neigh 10000 --runs 3
    sudo .venv/bin/python bench/dumps.py --profile       # where netns-shell's time goes
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time

PREFIX = f"nsbench{os.getpid()}{secrets.token_hex(2)}"
SHELL = [sys.executable, "-m", "netns_shell"]


def batch(argv: list[str], lines) -> None:
    subprocess.run(argv, input="\n".join(lines) + "\n", text=True, check=True)


def build_big(name: str, routes: int, fdb: int, neigh: int) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    batch(
        ["ip", "-n", name, "-batch", "-"],
        [
            "link set lo up",
            "link add br0 type bridge",
            "link set br0 up",
            "addr add 10.255.0.1/16 dev br0",
            "link add vxlan0 type vxlan id 42 dstport 4789 local 10.255.0.1 nolearning",
            "link set vxlan0 master br0 up",
        ],
    )
    batch(
        ["ip", "-n", name, "-batch", "-"],
        (
            f"route add 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32 via 10.255.0.2 dev br0 "
            "proto static"
            for i in range(routes)
        ),
    )
    # one VTEP per 16 MACs: remote nodes host several containers each
    batch(
        ["bridge", "-n", name, "-batch", "-"],
        (
            f"fdb add 02:00:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
            f"{i & 255:02x} dev vxlan0 dst 192.0.{i >> 12 & 255}.{i >> 4 & 255} self permanent"
            for i in range(fdb)
        ),
    )
    batch(
        ["ip", "-n", name, "-batch", "-"],
        (
            f"neigh add 10.{200 + (i >> 16)}.{i >> 8 & 255}.{i & 255} lladdr "
            f"02:01:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x} dev br0 nud permanent"
            for i in range(neigh)
        ),
    )


def _peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (its own peak: not inherited across fork, unlike ru_maxrss)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed_pipe(argv: list[str]) -> tuple[float, int]:
    """Run argv | cat > /dev/null; (wall seconds, peak RSS of argv in KiB).

    The peak is sampled from /proc while the process runs: the last sample
    before it exits (VmHWM only grows).
    """
    start = time.perf_counter()
    producer = subprocess.Popen(argv, stdout=subprocess.PIPE)
    consumer = subprocess.Popen(["cat"], stdin=producer.stdout, stdout=subprocess.DEVNULL)
    assert producer.stdout is not None
    producer.stdout.close()
    peak = 0
    while producer.poll() is None:
        peak = max(peak, _peak_rss_kib(producer.pid))
        time.sleep(0.005)
    consumer.wait()
    elapsed = time.perf_counter() - start
    if producer.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return elapsed, peak


def median_run(argv: list[str], runs: int) -> tuple[float, int]:
    results = [timed_pipe(argv) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def bench_tables(name: str, runs: int, sizes: dict[str, int]) -> list[tuple]:
    path = f"/var/run/netns/{name}"
    cases = [
        (
            "routes -4",
            sizes["routes"],
            ["ip", "-n", name, "-4", "route", "show"],
            [*SHELL, "--net", path, "-c", "routes -4"],
        ),
        (
            "routes -4 --json",
            sizes["routes"],
            ["ip", "-n", name, "-j", "-4", "route", "show"],
            [*SHELL, "--net", path, "--json", "-c", "routes -4"],
        ),
        (
            "fdb",
            sizes["fdb"],
            ["bridge", "-n", name, "fdb", "show"],
            [*SHELL, "--net", path, "-c", "fdb"],
        ),
        (
            "fdb --json",
            sizes["fdb"],
            ["bridge", "-n", name, "-j", "fdb", "show"],
            [*SHELL, "--net", path, "--json", "-c", "fdb"],
        ),
        (
            "neigh",
            sizes["neigh"],
            ["ip", "-n", name, "neigh", "show"],
            [*SHELL, "--net", path, "-c", "neigh"],
        ),
        (
            "neigh --json",
            sizes["neigh"],
            ["ip", "-n", name, "-j", "neigh", "show"],
            [*SHELL, "--net", path, "--json", "-c", "neigh"],
        ),
    ]
    rows = []
    for label, count, iproute2, ours in cases:
        ip_time, _ = median_run(iproute2, runs)  # interleave: same conditions for both
        our_time, our_rss = median_run(ours, runs)
        rows.append((label, count, ip_time, our_time, our_time / ip_time, our_rss / 1024))
        print(
            f"  {label:18} {count:>8}  iproute2 {ip_time:6.2f} s  netns-shell "
            f"{our_time:6.2f} s  ratio {our_time / ip_time:4.2f}  RSS {our_rss / 1024:5.1f} MB",
            flush=True,
        )
    return rows


def bench_startup(runs: int) -> float:
    name = f"{PREFIX}s"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([*SHELL, name, "-c", "links"], stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - start)
        modules = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "netns_shell", name, "-c", "links"],
            capture_output=True,
            text=True,
        ).stderr
        heavy = [
            m
            for m in ("scapy", "prompt_toolkit", "pyroute2", "tabulate")
            if f" {m}\n" in modules or f" {m}." in modules
        ]
        print(
            f"  -c links start-up: median {statistics.median(times):.3f} s over {runs} runs; "
            f"heavy modules imported: {', '.join(heavy) or 'none'}"
        )
        return statistics.median(times)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def bench_many(count: int, runs: int) -> float:
    names = [f"{PREFIX}m{i}" for i in range(count)]
    batch(["ip", "-batch", "-"], (f"netns add {n}" for n in names))
    try:
        # a veth pair between neighbours: every namespace gets one or two veths
        batch(
            ["ip", "-batch", "-"],
            (
                f"link add v{i} netns {names[i]} type veth peer name p{i} netns {names[i + 1]}"
                for i in range(0, count - 1, 2)
            ),
        )
        # one address to look for, in the middle of the namespaces
        middle = count // 2 - (count // 2) % 2
        target = names[middle]
        subprocess.run(
            ["ip", "-n", target, "addr", "add", "10.123.45.67/24", "dev", f"v{middle}"], check=True
        )
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([*SHELL, "--list"], stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - start)
        find_times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = subprocess.run(
                [*SHELL, "--json", "-c", "find 10.123.45.67"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            find_times.append(time.perf_counter() - start)
        if target not in out:
            raise SystemExit(f"find did not report {target}")
        start = time.perf_counter()
        subprocess.run(["ip", "netns", "list"], stdout=subprocess.DEVNULL, check=True)
        ip_time = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(["lsns", "-t", "net"], stdout=subprocess.DEVNULL, check=True)
        lsns_time = time.perf_counter() - start
        print(
            f"  --list with {count} namespaces: median {statistics.median(times):.3f} s over "
            f"{runs} runs (ip netns list {ip_time:.3f} s, lsns -t net {lsns_time:.3f} s, "
            "no detail)"
        )
        print(
            f"  find IP over {count} namespaces: median {statistics.median(find_times):.3f} s "
            f"over {runs} runs"
        )
        return statistics.median(times)
    finally:
        batch(["ip", "-batch", "-"], (f"netns del {n}" for n in names))


def profile(name: str) -> None:
    import cProfile
    import pstats

    from netns_shell.commands.inspect import ROUTE_COLUMNS
    from netns_shell.namespace import NetNamespace
    from netns_shell.netlink.routes import list_routes
    from netns_shell.render import write_plain

    with NetNamespace.open_path(f"/var/run/netns/{name}") as ns, open(os.devnull, "w") as out:
        profiler = cProfile.Profile()
        profiler.enable()
        write_plain(list_routes(ns, family=2), ROUTE_COLUMNS, out)
        profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


def compile_bytecode() -> None:
    """Byte-compile the package, as `pip install` does: from a source checkout with
    PYTHONDONTWRITEBYTECODE set, every start would otherwise compile it again (~40 ms)."""
    import compileall

    import netns_shell

    compileall.compile_dir(os.path.dirname(netns_shell.__file__), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--routes", type=int, default=500_000)
    parser.add_argument("--fdb", type=int, default=100_000)
    parser.add_argument("--neigh", type=int, default=100_000)
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also profile the routes dump")
    options = parser.parse_args()
    for tool in ("ip", "bridge", "lsns"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")
    compile_bytecode()
    # start-up and many namespaces first: tearing down the big namespace keeps the kernel
    # busy (and rtnl locked) for a while after `ip netns del` returns
    print("start-up and many namespaces:")
    bench_startup(max(options.runs, 10))
    bench_many(options.namespaces, options.runs)
    name = f"{PREFIX}b"
    print(
        f"building {name}: {options.routes} routes, {options.fdb} fdb entries, "
        f"{options.neigh} neighbours ...",
        flush=True,
    )
    try:
        build_big(name, options.routes, options.fdb, options.neigh)
        print("big tables (median wall time, output to a pipe):")
        bench_tables(name, options.runs, vars(options))
        if options.profile:
            profile(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


if __name__ == "__main__":
    main()
