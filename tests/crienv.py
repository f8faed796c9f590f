"""A private containerd with its CRI plugin, for the Kubernetes tests (architecture.md fact 15).

Everything it owns lives under one directory of its own (root, state, socket,
CNI config, IPAM data); its pods get a bridge and a subnet unique to the run.
The sandbox ("pause") image is built here, offline: a docker-archive holding
the static busybox, imported into the `k8s.io` namespace.  Pods are made and
removed through the CRI itself (RunPodSandbox / StopPodSandbox /
RemovePodSandbox), with messages encoded from the public CRI API.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from netns_shell import protowire as pw

BUSYBOX = "/bin/busybox"
CNI_BIN = "/usr/lib/cni"
_SERVICE = "/runtime.v1.RuntimeService/"


def _blob(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_pause_archive(path: str, ref: str) -> None:
    """A docker-archive (what `docker save` writes) of a one-layer image whose
    entrypoint is the static busybox sleeping for good."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w") as tar:
        for name in ("bin", "dev", "proc", "sys", "etc"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
    layer = layer_buf.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/bin/busybox", "sleep", "2147483647"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{_blob(layer)}"]},
        }
    ).encode()
    manifest = json.dumps(
        [{"Config": f"{_blob(config)}.json", "RepoTags": [ref], "Layers": ["layer/layer.tar"]}]
    ).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (
            (f"{_blob(config)}.json", config),
            ("layer/layer.tar", layer),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


@dataclass
class Pod:
    name: str
    namespace: str
    uid: str
    id: str


@dataclass
class Containerd:
    """A running private containerd; `pods` are the sandboxes this helper made."""

    base: str
    bridge: str
    subnet: str
    process: subprocess.Popen | None = None
    pods: list[Pod] = field(default_factory=list)

    @property
    def socket(self) -> str:
        return os.path.join(self.base, "containerd.sock")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    # ------------------------------------------------------------- CRI calls
    def call(self, method: str, request: bytes = b"", timeout: float = 60) -> dict:
        import grpc

        with grpc.insecure_channel(f"unix:{self.socket}") as channel:
            answer = channel.unary_unary(_SERVICE + method)(request, timeout=timeout)
        return pw.decode(answer)

    def run_pod(self, name: str, namespace: str) -> Pod:
        uid = _uuid()
        config = [
            (1, [(1, name), (2, uid), (3, namespace), (4, 0)]),  # metadata
            (2, name),  # hostname
            (3, os.path.join(self.base, "logs", uid)),  # log_directory
            (6, {"app": name}),  # labels
            # linux: kubelet's cgroupfs parent (the pod UID in the path); network = POD
            (8, [(1, f"/kubepods/besteffort/pod{uid}"), (2, [(1, [(1, 0)])])]),
        ]
        answer = self.call("RunPodSandbox", pw.encode([(1, config)]), timeout=120)
        pod = Pod(name, namespace, uid, pw.text(answer, 1))
        self.pods.append(pod)
        return pod

    def status(self, pod: Pod) -> tuple[dict, dict]:
        """(PodSandboxStatus fields, the verbose info JSON) as the runtime answers them."""
        answer = self.call("PodSandboxStatus", pw.encode([(1, pod.id), (2, True)]))
        status = pw.decode(pw.first(answer, 1))
        return status, json.loads(pw.map_field(answer, 2)["info"])

    def pod_ip(self, pod: Pod) -> str:
        status, _ = self.status(pod)
        return pw.text(pw.decode(pw.first(status, 5)), 1)

    def netns_path(self, pod: Pod) -> str:
        _, info = self.status(pod)
        spaces = info["runtimeSpec"]["linux"]["namespaces"]
        return next(ns["path"] for ns in spaces if ns["type"] == "network")

    def sandbox_pid(self, pod: Pod) -> int:
        return int(self.status(pod)[1]["pid"])

    def remove_pod(self, pod: Pod) -> None:
        for method in ("StopPodSandbox", "RemovePodSandbox"):
            with contextlib.suppress(Exception):
                self.call(method, pw.encode([(1, pod.id)]))
        if pod in self.pods:
            self.pods.remove(pod)


def _uuid() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _config(env: Containerd, image: str) -> str:
    cri = '[plugins."io.containerd.grpc.v1.cri"]'
    return f"""version = 2
root = "{env.base}/root"
state = "{env.base}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{env.socket}"
[ttrpc]
  address = "{env.socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{env.base}/opt"
{cri}
  sandbox_image = "{image}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{env.base}/net.d"
    max_conf_num = 1
"""


def _cni_conf(env: Containerd) -> dict:
    return {
        "cniVersion": "0.4.0",
        "name": env.bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": env.bridge,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": env.subnet}]],
                    "dataDir": f"{env.base}/ipam",
                },
            }
        ],
    }


def _wait_until_ready(env: Containerd, log: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if env.process.poll() is not None:
            break
        if os.path.exists(env.socket):
            try:
                env.call("Version", timeout=5)
                return
            except Exception as exc:
                last = str(exc)
        time.sleep(0.2)
    with open(log, errors="replace") as fh:
        tail = fh.read()[-1500:]
    raise RuntimeError(f"containerd did not answer the CRI: {last}\n{tail}")


def _components_or_skip() -> None:
    for program in ("containerd", "ctr", "runc", "containerd-shim-runc-v2"):
        if shutil.which(program) is None:
            pytest.skip(f"no {program} (apt-get install containerd runc)")
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.path.exists(os.path.join(CNI_BIN, plugin)):
            pytest.skip(f"no CNI {plugin} plugin (apt-get install containernetworking-plugins)")
    if not os.path.exists(BUSYBOX):
        pytest.skip("no static busybox for the sandbox image (apt-get install busybox-static)")
    try:
        import grpc  # noqa: F401
    except ImportError:
        pytest.skip("no grpcio (pip install grpcio)")


@contextlib.contextmanager
def private_containerd() -> Iterator[Containerd]:
    """A containerd with the CRI plugin, all its state under a directory of its own.

    Skips (saying why) when a component is missing or containerd cannot start;
    stops every pod it made, the daemon and its shims, and removes its mounts,
    netns files, bridge and directory afterwards, even on failure.
    """
    _components_or_skip()
    token = secrets.token_hex(3)
    base = f"/tmp/nscri-{os.getpid()}-{token}"
    env = Containerd(
        base=base, bridge=f"cni{token}", subnet=f"100.64.{secrets.randbelow(250) + 2}.0/24"
    )
    os.makedirs(f"{base}/net.d", mode=0o700)
    image = f"netns-shell.test/pause:{token}"
    log = f"{base}/containerd.log"
    try:
        with open(f"{base}/config.toml", "w") as fh:
            fh.write(_config(env, image))
        with open(f"{base}/net.d/10-{env.bridge}.conflist", "w") as fh:
            json.dump(_cni_conf(env), fh)
        with open(log, "w") as out:
            env.process = subprocess.Popen(
                ["containerd", "--config", f"{base}/config.toml"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_ready(env, log)
        except RuntimeError as exc:
            pytest.skip(f"containerd with CRI could not start: {exc}")
        archive = f"{base}/pause.tar"
        build_pause_archive(archive, image)
        subprocess.run(
            ["ctr", "--address", env.socket, "-n", "k8s.io", "images", "import", archive],
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield env
    finally:
        _tear_down(env)


def _all_pods(env: Containerd) -> list[Pod]:
    """Every sandbox the private runtime has (all of them ours), also half-made ones."""
    pods = list(env.pods)
    with contextlib.suppress(Exception):
        for item in env.call("ListPodSandbox", timeout=10).get(1, ()):
            sandbox_id = pw.text(pw.decode(item), 1)
            if all(p.id != sandbox_id for p in pods):
                pods.append(Pod("", "", "", sandbox_id))
    return pods


def _tear_down(env: Containerd) -> None:
    netns_files = []
    for pod in _all_pods(env) if env.process is not None else []:
        with contextlib.suppress(Exception):
            netns_files.append(env.netns_path(pod))
        env.remove_pod(pod)
    if env.process is not None:
        env.process.terminate()
        try:
            env.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            env.process.kill()
            env.process.wait(timeout=10)
    for pid in _our_shims(env):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in sorted(_mounts_under(env.base), reverse=True) + netns_files:
        subprocess.run(["umount", "-l", point], capture_output=True)
    for path in netns_files:
        with contextlib.suppress(OSError):
            os.unlink(path)
    subprocess.run(["ip", "link", "del", env.bridge], capture_output=True)
    shutil.rmtree(env.base, ignore_errors=True)


def _our_shims(env: Containerd) -> list[int]:
    """PIDs of the shims this containerd started (their command line names its socket)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmdline = fh.read().split(b"\0")
        except OSError:
            continue
        if (
            cmdline
            and cmdline[0].endswith(b"containerd-shim-runc-v2")
            and (env.socket.encode() in cmdline)
        ):
            pids.append(int(entry.name))
    return pids


def _mounts_under(path: str) -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4]
            if point == path or point.startswith(path + "/"):
                points.append(point)
    return points
