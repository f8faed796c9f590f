"""`check --cluster` on the 3-node swarm lab: wall time per mode, a frozen node, lab up/down.

    sudo PYTHONPATH=. python bench/check_cluster.py [--runs N]

Builds the lab (netns_shell/swarm.py), imports the agent image into each node
(netns_shell/swarm_image.py), then times `netns-shell -c 'check --cluster ...'` (the
console script, end to end) through each way of reaching the nodes: direct, a container
per node, a global service; then once per mode with node n3 frozen (--timeout 5).  Prints
what it measured, the output with n3 frozen, and what of the lab was on the host before
and after tear-down (processes, namespaces, mounts, cgroups, files, shim sockets).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from netns_shell.swarm import Swarm, leftovers
from netns_shell.swarm_image import agent_rootfs, import_changes


def _line(swarm: Swarm, via: str, image: str, *extra: str) -> list[str]:
    nodes = ",".join(f"{n.name}={n.endpoint}" for n in swarm.nodes)
    words = ["check", "--cluster", "--via", via, "--image", image]
    if via == "service":
        words += [
            "--nodes", f"{swarm.manager.name}={swarm.manager.endpoint}",
            "--netns-dir", f"{swarm.directory}/{{{{.Node.Hostname}}}}/exec/netns",
            "--engine-socket", f"{swarm.directory}/{{{{.Node.Hostname}}}}/docker.sock",
        ]  # fmt: skip
    else:
        words += ["--nodes", nodes]
    return [sys.executable, "-m", "netns_shell", "-c", " ".join([*words, *extra])]


def _timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return time.monotonic() - started, proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    swarm = Swarm(prefix="nsbench")
    swarm.up()
    try:
        print(f"lab up: {swarm.timings['up']:.1f} s ({swarm.base})")
        print("during:", {k: len(v) for k, v in leftovers(swarm.base).items()})
        tar, tag = agent_rootfs()
        print(f"agent image {tag} imported into 3 nodes in "
              f"{swarm.load_image(tar, tag, import_changes()):.1f} s")  # fmt: skip
        for via in ("direct", "container", "service"):
            times = []
            for _ in range(args.runs):
                took, proc = _timed(_line(swarm, via, tag))
                assert proc.returncode == 0, proc.stdout + proc.stderr
                times.append(took)
            print(f"check --cluster --via {via}: median {statistics.median(times):.2f} s, "
                  f"min {min(times):.2f}, max {max(times):.2f} ({args.runs} runs, wall time "
                  "of the console script)")  # fmt: skip
    finally:
        swarm.down()
    print(f"\nlab down: {swarm.timings['down']:.1f} s")
    print("after:", leftovers(swarm.base))
    # a freeze of 5 s leaves the others' kernels without n3's entries for good (measured:
    # not back 60 s after the thaw), so each frozen run gets a swarm of its own
    for via in ("direct", "container", "service"):
        with Swarm(prefix="nsbench") as frozen:
            frozen.load_image(tar, tag, import_changes())
            thaw = frozen.freeze(frozen.nodes[2])
            try:
                took, proc = _timed(_line(frozen, via, tag, "--timeout", "5"))
            finally:
                thaw()
            print(f"\n--via {via}, n3 frozen, --timeout 5: {took:.2f} s, exit {proc.returncode}")
            print(proc.stdout.rstrip())
        print("after:", {k: len(v) for k, v in leftovers(frozen.base).items()})


if __name__ == "__main__":
    main()
