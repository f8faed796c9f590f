"""Containers as targets, as a new user meets them: a stopped one says so, and a running
one keeps its process so `exec -m/-u/-a` join its other namespaces (real Docker engine)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import netns_shell, unique
from tests.dockerenv import engine_or_skip
from tests.test_docker import IMAGE, _ensure_image


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def containers() -> Iterator[tuple[str, str]]:
    """(a running container, a created-but-never-started one), removed afterwards."""
    engine_or_skip("to start test containers")
    _ensure_image()
    running, created = unique("nst-run"), unique("nst-new")
    try:
        _docker("run", "-d", "--name", running, "--hostname", running[:20], IMAGE, "sleep", "300")
        _docker("create", "--name", created, IMAGE, "sleep", "300")
        yield running, created
    finally:
        subprocess.run(["docker", "rm", "-f", running, created], capture_output=True)


def test_a_created_container_is_said_to_be_not_running(containers):
    _, created = containers
    run = netns_shell(created, "-c", "links")
    assert run.status != 0
    assert f"container {created} is not running (created)" in run.stderr, run.stderr
    assert "no namespace named" not in run.stderr


@pytest.mark.parametrize("how", ["target", "use"])
def test_exec_joins_a_containers_other_namespaces(containers, how):
    running, _ = containers
    pid = int(_docker("inspect", "-f", "{{.State.Pid}}", running))
    with open(f"/proc/{pid}/root/etc/hostname", encoding="utf-8") as fh:
        expected = fh.read().strip()  # the oracle: the container's own file, through /proc
    line = "exec -m -u hostname; exec -a cat /etc/hostname"
    run = (
        netns_shell(running, "-c", line)
        if how == "target"
        else netns_shell("-c", f"use {running}; {line}")
    )
    assert run.status == 0, run.stderr
    assert run.stdout.split()[-2:] == [running[:20], expected]
