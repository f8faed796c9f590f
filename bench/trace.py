"""How long `trace` takes across two nodes of a real swarm: static (<= 1 s) and --probe (<= 3 s).

Builds a 3-node swarm (netns_shell.swarm, no service), then times the whole
`netns-shell -c 'trace --from c1 c2'` in-process, a fresh session each run
(engines asked, namespaces discovered, the walk over 8 hops on 2 nodes, and
for --probe the captures opened in every namespace of the path, the probes
and the wait), best and median of N runs; then once as a new process.

    python bench/trace.py [RUNS]
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import sys
import time

from netns_shell.cli import main as main_cli
from netns_shell.swarm import Swarm


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with Swarm(prefix="nsbench", nodes_wanted=3, service=False) as swarm:
        os.environ["NETNS_SHELL_NODES"] = ",".join(f"{n.name}={n.endpoint}" for n in swarm.nodes)
        os.environ["NETNS_SHELL_PATH"] = ":".join(n.netns_dir for n in swarm.nodes)
        line = f"trace --from {swarm.containers['n1']} {swarm.containers['n2']}"
        for label, extra in (("static", ""), ("probe", " --probe")):
            times = []
            for _ in range(runs):
                started = time.monotonic()
                with contextlib.redirect_stdout(io.StringIO()):
                    status = main_cli(["-c", line + extra])
                times.append(time.monotonic() - started)
                assert status == 0, f"{label}: exit {status}"
            print(
                f"{label}: best {min(times):.3f} s, median {statistics.median(times):.3f} s "
                f"over {runs} runs (2 nodes, 8 hops)",
                file=sys.stderr,
            )
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "netns_shell", "-c", line + extra], capture_output=True
            )
            assert done.returncode == 0, done.stderr
            print(
                f"{label}: {time.monotonic() - started:.3f} s as a new process "
                "(python -m netns_shell -c, interpreter start-up included)",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
