"""Removing a swarm lab by its name alone (`<prefix>-<pid>-<token>`), and its cgroups.

Every process of a node (dockerd, containerd, shims, containers) lives in the freezer
cgroup `<base>/<node>`; tear-down kills what is there (thawed first), unmounts what lies
under the run's directory, removes the shim sockets of the nodes' containerds, the
cgroups in every hierarchy, the namespaces `<base>-*` and the directory.  `leftovers`
lists what would remain, for the tests and the proof that nothing does.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable

from .lab import NETNS_DIR, remove_orphaned
from .mounts import mounts

__all__ = ["freezer_state", "join_cgroup", "leftovers", "remove_stale_swarms", "remove_swarm"]

#: each run's node directories (data root, exec root, socket, logs)
SWARM_DIR = "/run/netns-shell/swarm"
CGROUP_ROOT = "/sys/fs/cgroup"
SHIM_SOCKETS = "/run/containerd/s"


def remove_swarm(base: str) -> None:
    """Everything of swarm `base`: processes, mounts, shim sockets, cgroups, netns, files."""
    directory = os.path.join(SWARM_DIR, base)
    shim_sockets = _shim_sockets(directory)
    _kill_cgroup(base)
    _unmount_under(directory)
    for path in shim_sockets:
        with contextlib.suppress(OSError):
            os.unlink(path)
    _remove_cgroups(base)
    for name in _netns_of(base):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    if os.path.isdir(directory):
        shutil.rmtree(directory, ignore_errors=True)


def remove_stale_swarms(prefix: str) -> list[str]:
    """Remove the swarms of `prefix` whose owner died (their lock is free); their bases."""

    def remove(base: str) -> list[str]:
        remove_swarm(base)
        return [base]

    return remove_orphaned(prefix, remove)


def leftovers(base: str) -> dict[str, list[str]]:
    """What of swarm `base` is still on the host (all lists empty after a clean tear-down)."""
    directory = os.path.join(SWARM_DIR, base)
    procs = []
    for pid in _pids_in(base):
        procs.append(f"{pid} {_cmdline(pid)}")
    return {
        "processes": procs,
        "netns": _netns_of(base),
        "mounts": _mounts_under(directory),
        "cgroups": [
            os.path.join(c, base) for c in _controllers() if os.path.isdir(cgroup_path(c, base))
        ],
        "files": [directory] if os.path.exists(directory) else [],
        "shim_sockets": [p for p in _shim_sockets(directory) if os.path.exists(p)],
    }


def _controllers() -> list[str]:
    found = []
    for name in sorted(os.listdir(CGROUP_ROOT)):
        path = os.path.join(CGROUP_ROOT, name)
        if os.path.isdir(path) and not os.path.islink(path):
            if os.path.exists(os.path.join(path, "cgroup.procs")):
                found.append(name)
    return found


def cgroup_path(controller: str, relative: str) -> str:
    return os.path.join(CGROUP_ROOT, controller, relative)


def join_cgroup(relative: str) -> Callable[[], None]:
    # only the freezer: the other controllers keep the caller's limits (docker still makes
    # the containers' cgroups under the same parent in every controller)
    path = os.path.join(cgroup_path("freezer", relative), "cgroup.procs")

    def join() -> None:  # in the child, before exec: nothing it starts escapes the cgroup
        with open(path, "w") as f:
            f.write("0")

    return join


def freezer_state(relative: str, state: str) -> None:
    with open(os.path.join(cgroup_path("freezer", relative), "freezer.state"), "w") as f:
        f.write(state)
    if state == "FROZEN":
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(os.path.join(cgroup_path("freezer", relative), "freezer.state")) as f:
                if f.read().strip() == "FROZEN":
                    return
            time.sleep(0.02)


def _pids_in(base: str) -> list[int]:
    pids: set[int] = set()
    for root, _dirs, files in os.walk(cgroup_path("freezer", base)):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError), open(os.path.join(root, "cgroup.procs")) as f:
                pids.update(int(line) for line in f if line.strip())
    return sorted(pids)


def _kill_cgroup(base: str) -> None:
    """SIGKILL every process in the swarm's cgroups (thawed first: a frozen one cannot die)."""
    deadline = time.monotonic() + 10
    while True:
        for root, _dirs, files in os.walk(cgroup_path("freezer", base)):
            if "freezer.state" in files:
                with contextlib.suppress(OSError), open(f"{root}/freezer.state", "w") as f:
                    f.write("THAWED")
        pids = _pids_in(base)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _remove_cgroups(base: str) -> None:
    for controller in _controllers():
        top = cgroup_path(controller, base)
        for root, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            with contextlib.suppress(OSError):
                os.rmdir(root)


def _mounts_under(directory: str) -> list[str]:
    inside = directory + "/"
    return [m.point for m in mounts() if m.point == directory or m.point.startswith(inside)]


def _unmount_under(directory: str) -> None:
    for _ in range(3):
        points = _mounts_under(directory)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _shim_sockets(directory: str) -> list[str]:
    """The shim sockets of the nodes' containerds: /run/containerd/s/sha256(<address>/moby/<id>)."""
    found = []
    for address in glob.glob(os.path.join(directory, "n*/exec/containerd/containerd.sock")):
        ids = glob.glob(
            os.path.join(os.path.dirname(address), "daemon/io.containerd.runtime.v2.task/moby/*")
        )
        for task in ids:
            key = os.path.join(address, "moby", os.path.basename(task))
            found.append(os.path.join(SHIM_SOCKETS, hashlib.sha256(key.encode()).hexdigest()))
    return found


def _netns_of(base: str) -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(f"{base}-") and "-" not in n[len(base) + 1 :])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"
