"""Helpers shared by the tests that need a Docker engine (set up with the docker CLI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

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
