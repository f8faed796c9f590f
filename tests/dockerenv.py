"""Helpers shared by the tests that need a Docker engine (set up with the docker CLI)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from netns_shell.docker import DockerClient, DockerError


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    """Run the docker CLI; its stdout, stripped (RuntimeError on failure when `check`)."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def engine_or_skip(why: str) -> None:
    """Skip the test, saying why, when no docker CLI or no engine is there."""
    if shutil.which("docker") is None:
        pytest.skip(f"no docker CLI {why} (apt-get install docker.io)")
    try:
        DockerClient(timeout=5).ping()
    except DockerError as exc:
        pytest.skip(f"no Docker engine answers: {exc}")


def wait_for_path(path: str, what: str, timeout: float = 60) -> None:
    """Wait until a namespace file the engine makes appears."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} {path} did not appear")
        time.sleep(0.2)


SHARED_STATE_DIR = "/run/netns-shell-tests"


def _alive(token: str) -> bool:
    try:
        os.kill(int(token.split("-", 1)[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        pass
    return True


@contextmanager
def shared_setting(
    name: str, in_place: Callable[[], bool], make: Callable[[], None], undo: Callable[[], None]
) -> Iterator[None]:
    """Hold a host-wide setting (the node in a swarm, a shared mount) for as long as the block
    runs, shared by every test process on the host: xdist workers and concurrent runs alike.

    The first user makes it when it is missing; the last user undoes it, and only when one of
    ours made it (a swarm the host was already in is left alone). Users are counted in a state
    file under a lock held only while it is read and written; users whose process died are
    dropped, so a crashed run's setting is undone by the next run's last user.
    """
    os.makedirs(SHARED_STATE_DIR, exist_ok=True)
    state_path = os.path.join(SHARED_STATE_DIR, f"{name}.json")
    token = f"{os.getpid()}-{uuid.uuid4().hex}"

    @contextmanager
    def locked_state() -> Iterator[dict]:
        with open(state_path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with open(state_path) as f:
                    state = json.load(f)
            except (OSError, ValueError):
                state = {}
            state = {"made": bool(state.get("made")), "users": list(state.get("users", []))}
            state["users"] = [u for u in state["users"] if _alive(u)]
            yield state
            with open(state_path, "w") as f:
                json.dump(state, f)

    with locked_state() as state:
        if not in_place():
            make()
            state["made"] = True
        state["users"].append(token)
    try:
        yield
    finally:
        with locked_state() as state:
            state["users"] = [u for u in state["users"] if u != token]
            if not state["users"] and state["made"]:
                undo()
                state["made"] = False


@contextmanager
def swarm_node() -> Iterator[None]:
    """This node in a swarm (`docker swarm init` when it is in none) while the block runs."""
    with shared_setting(
        "swarm",
        in_place=lambda: docker("info", "--format", "{{.Swarm.LocalNodeState}}") == "active",
        make=lambda: docker("swarm", "init", "--advertise-addr", "127.0.0.1"),
        undo=_leave_swarm,
    ):
        yield


#: where the host's engine keeps its namespace files
ENGINE_NETNS = "/var/run/docker/netns"


def _leave_swarm() -> None:
    """`docker swarm leave --force`, and the files it leaves behind: the engine unmounts the
    namespaces of its overlay networks (`1-<id>`, `lb_<id>`, sandboxes) but may leave their
    files, empty; it removes them itself only when it next joins a swarm."""
    docker("swarm", "leave", "--force", check=False)
    deadline = time.monotonic() + 10
    while any(age < SETTLED for _path, age in _empty_engine_files()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for path, age in _empty_engine_files():
        if age >= SETTLED:  # a file the engine is about to mount a namespace on is younger
            with contextlib.suppress(OSError):
                os.unlink(path)


#: how long an empty namespace file stays unchanged before it counts as left behind
SETTLED = 5.0


def _empty_engine_files() -> list[tuple[str, float]]:
    """(path, seconds since it last changed) of the empty regular files in the engine's
    directory that nothing is mounted on."""
    found = []
    try:
        names = os.listdir(ENGINE_NETNS)
        directory = os.stat(ENGINE_NETNS)
    except OSError:
        return []
    for name in names:
        path = os.path.join(ENGINE_NETNS, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == 0 and st.st_dev == directory.st_dev:
            found.append((path, time.time() - max(st.st_mtime, st.st_ctime)))
    return found
