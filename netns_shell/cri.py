"""Pod names from a Kubernetes container runtime, through the CRI (containerd, CRI-O).

On a node, pod namespaces are `/var/run/netns/cni-<random>` (containerd) or
`/var/run/netns/<uuid>` (CRI-O): the name says nothing about the pod.  The
runtime knows: `ListPodSandbox` gives every sandbox with its metadata (pod
name, Kubernetes namespace, UID), and `PodSandboxStatus(verbose=true)` gives
the pod IPs and, in the verbose info's runtime spec, the path of the sandbox's
network namespace (`linux.namespaces[type=network].path`).

gRPC over the runtime's unix socket (`grpcio`, imported only when a socket is
there); the messages are encoded by hand from the public CRI API (runtime.v1,
falling back to v1alpha2 for older runtimes), only the two calls used.  Every
call has a deadline and the whole lookup a budget: a runtime that hangs costs
a few seconds once, then is left alone for a minute.

Without an answering runtime, a pod namespace's holders still tell its pod
UID: kubelet puts every pod in a cgroup named after it (`.../pod<UID>/...` or
`kubepods-...-pod<UID with _>.slice`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import protowire as pw
from .errors import NetnsShellError

__all__ = [
    "DEFAULT_ENDPOINTS",
    "CriClient",
    "CriEnricher",
    "CriError",
    "PodSandbox",
    "candidate_endpoints",
    "cri_enricher",
    "pod_uid_of",
]

DEFAULT_ENDPOINTS = ("/run/containerd/containerd.sock", "/var/run/crio/crio.sock")
_SERVICES = ("runtime.v1.RuntimeService", "runtime.v1alpha2.RuntimeService")
NO_SOCKET = "no CRI socket found (give --cri ENDPOINT)"
_CACHE_SECONDS = 5.0
_RETRY_SECONDS = 60.0
_POD_UID = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})"
)
#: kinds of namespace a runtime may have made (CRI-O's files have no cni- prefix)
_POD_KINDS = ("cni pod", "named")


class CriError(NetnsShellError):
    """The runtime could not be asked (no socket, refused, timed out, not a CRI, bad answer)."""


def _socket_of(endpoint: str) -> str:
    if endpoint.startswith("unix://"):
        return endpoint[len("unix://") :]
    if "://" in endpoint:
        raise CriError(f"{endpoint}: only unix:// endpoints are supported")
    return endpoint


def candidate_endpoints(explicit: str | None = None) -> list[str]:
    """Socket paths to try: `explicit` (--cri), else CONTAINER_RUNTIME_ENDPOINT, else the
    default containerd and CRI-O sockets that exist."""
    chosen = explicit or os.environ.get("CONTAINER_RUNTIME_ENDPOINT")
    if chosen:
        return [_socket_of(chosen)]
    return [path for path in DEFAULT_ENDPOINTS if os.path.exists(path)]


@dataclass
class PodSandbox:
    """One pod sandbox as the runtime describes it."""

    id: str
    name: str
    namespace: str
    uid: str
    ready: bool
    ips: list[str] = field(default_factory=list)
    netns_path: str | None = None
    pid: int | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def pod(self) -> str:
        return f"{self.namespace}/{self.name}"

    def namespace_key(self) -> tuple[int, int] | None:
        """(dev, inode) of the sandbox's network namespace, if this host can see it."""
        paths = [self.netns_path] if self.netns_path else []
        if self.pid:
            paths.append(f"/proc/{self.pid}/ns/net")
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            return (st.st_dev, st.st_ino)
        return None

    def labels_for_entry(self) -> dict[str, Any]:
        aliases = [self.pod, self.name, self.uid, self.id, self.id[:13]]
        return {
            "pod": self.pod,
            "pod_name": self.name,
            "pod_namespace": self.namespace,
            "pod_uid": self.uid,
            "pod_sandbox_id": self.id,
            "pod_ips": list(self.ips),
            "aliases": list(dict.fromkeys(a for a in aliases if a)),
        }


class CriClient:
    """The two CRI calls netns-shell makes, over one runtime socket."""

    def __init__(self, path: str, *, timeout: float = 2.0, budget: float = 6.0):
        self.path = path
        self.timeout = timeout
        self.budget = budget
        self._service: str | None = None

    def available(self) -> bool:
        return os.path.exists(self.path)

    def pod_sandboxes(self) -> list[PodSandbox]:
        """Every sandbox with its status (verbose); raises CriError."""
        try:
            import grpc
        except ImportError:
            raise CriError("the grpcio package is not installed (pip install grpcio)") from None
        try:
            return self._pod_sandboxes(grpc)
        except pw.WireError as exc:
            raise CriError(f"{self.path}: a malformed answer: {exc}") from None

    def _pod_sandboxes(self, grpc: Any) -> list[PodSandbox]:
        deadline = time.monotonic() + self.budget
        with grpc.insecure_channel(f"unix:{os.path.abspath(self.path)}") as channel:
            listed = self._call(grpc, channel, "ListPodSandbox", b"", deadline)
            sandboxes = []
            for item in pw.decode(listed).get(1, ()):
                sandbox = _sandbox_from_list(pw.decode(item))
                request = pw.encode([(1, sandbox.id), (2, True)])
                try:
                    answer = self._call(grpc, channel, "PodSandboxStatus", request, deadline)
                except CriError as exc:
                    if "NOT_FOUND" in str(exc):
                        continue  # removed meanwhile
                    raise
                _add_status(sandbox, pw.decode(answer))
                sandboxes.append(sandbox)
        return sandboxes

    def _call(self, grpc: Any, channel: Any, method: str, request: bytes, deadline: float) -> bytes:
        services = [self._service] if self._service else list(_SERVICES)
        for service in services:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CriError(f"{self.path}: no answer within {self.budget:g} s")
            call = channel.unary_unary(f"/{service}/{method}")  # bytes in, bytes out
            try:
                answer = call(request, timeout=min(self.timeout, remaining))
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.UNIMPLEMENTED and service != services[-1]:
                    continue  # an older runtime: v1alpha2
                raise CriError(_describe(self.path, method, grpc, exc)) from None
            self._service = service
            return answer
        raise CriError(f"{self.path}: {method}: no CRI service answers")  # pragma: no cover


def _describe(path: str, method: str, grpc: Any, exc: Any) -> str:
    code = exc.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"{path}: {method}: no answer in time (a hung runtime?)"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"{path}: {method}: the runtime serves no CRI (its cri plugin disabled?)"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"{path}: nothing answers on the socket"
    details = (exc.details() or "").splitlines()[0][:200] if exc.details() else ""
    return f"{path}: {method}: {code.name} {details}".rstrip()


def _metadata(raw: bytes | None) -> tuple[str, str, str]:
    fields = pw.decode(raw or b"")
    return pw.text(fields, 1), pw.text(fields, 3), pw.text(fields, 2)  # name, namespace, uid


def _sandbox_from_list(fields: dict[int, list[Any]]) -> PodSandbox:
    name, namespace, uid = _metadata(pw.first(fields, 2))
    return PodSandbox(
        id=pw.text(fields, 1),
        name=name,
        namespace=namespace,
        uid=uid,
        ready=pw.first(fields, 3, 0) == 0,  # SANDBOX_READY = 0
        labels=pw.map_field(fields, 5),
    )


def _add_status(sandbox: PodSandbox, answer: dict[int, list[Any]]) -> None:
    """Fill IPs, the netns path and the PID from a PodSandboxStatusResponse."""
    status = pw.decode(pw.first(answer, 1, b""))
    network = pw.decode(pw.first(status, 5, b""))
    ips = [pw.text(network, 1)]
    ips += [pw.text(pw.decode(extra), 1) for extra in network.get(2, ())]
    sandbox.ips = list(dict.fromkeys(ip for ip in ips if ip))
    info = pw.map_field(answer, 2)
    sandbox.netns_path, sandbox.pid = _from_verbose_info(info.get("info", ""))


def _from_verbose_info(raw: str) -> tuple[str | None, int | None]:
    """(netns path, sandbox PID) from the verbose info JSON (containerd and CRI-O)."""
    try:
        info = json.loads(raw) if raw else {}
    except ValueError:
        return None, None
    if not isinstance(info, dict):
        return None, None
    spec = info.get("runtimeSpec") or {}
    path = None
    namespaces = ((spec.get("linux") or {}) if isinstance(spec, dict) else {}).get("namespaces")
    for ns in namespaces if isinstance(namespaces, list) else ():
        if isinstance(ns, dict) and ns.get("type") == "network" and ns.get("path"):
            path = str(ns["path"])
    pid = info.get("pid")
    return path, pid if isinstance(pid, int) and pid > 0 else None


def pod_uid_of(pids: Iterable[int]) -> str | None:
    """The pod UID in the cgroup path of the first of `pids` that has one (kubelet's naming)."""
    for pid in list(pids)[:8]:
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as fh:
                found = _POD_UID.search(fh.read())
        except OSError:
            continue
        if found:
            return found.group(1).replace("_", "-")
    return None


class CriEnricher:
    """Names pod namespaces `namespace/pod` from the runtime, or by pod UID without one."""

    def __init__(self, warn, endpoint: str | None = None, *, timeout: float = 2.0):
        self.warn = warn
        self.explicit = endpoint or os.environ.get("CONTAINER_RUNTIME_ENDPOINT")
        self.timeout = timeout
        self._pods: list[PodSandbox] | None = None
        self._loaded_at = 0.0
        self._failed_at: float | None = None
        self._warned = False
        #: why names are missing (shown once, and in `ns --json` as pod_names_unavailable)
        self.unavailable: str | None = None

    def pods(self, *, warn: bool = True) -> list[PodSandbox] | None:
        now = time.monotonic()
        if self._pods is not None and now - self._loaded_at < _CACHE_SECONDS:
            return self._pods
        if self._failed_at is not None and now - self._failed_at < _RETRY_SECONDS:
            return None
        try:
            paths = candidate_endpoints(self.explicit)
        except CriError as exc:
            return self._failed(str(exc), now, warn)
        if not paths:
            return self._failed(NO_SOCKET, now, warn=False)
        errors = []
        for path in paths:
            client = CriClient(path, timeout=self.timeout)
            if not client.available():
                errors.append(f"{path}: no such socket")
                continue
            try:
                self._pods = client.pod_sandboxes()
            except CriError as exc:
                errors.append(str(exc))
                continue
            self._loaded_at = now
            self._failed_at = None
            self.unavailable = None
            return self._pods
        return self._failed("; ".join(errors), now, warn)

    def _failed(self, why: str, now: float, warn: bool) -> None:
        self._failed_at = now
        self._pods = None
        self.unavailable = why
        if warn and not self._warned:
            self._warned = True
            self.warn(f"cri: {why}; pod names not available, pods shown by UID only")
        return None

    def __call__(self, entries: Iterable[Any]) -> None:
        entries = list(entries)
        candidates = [e for e in entries if e.kind in _POD_KINDS and e.usable]
        if not candidates:
            return
        # A warning when the runtime the user named (--cri, CONTAINER_RUNTIME_ENDPOINT)
        # failed.  A default socket that is missing or serves no CRI (Docker's own
        # containerd) is no failure to repeat on every command: `ns` says that names are
        # not available and why (pod_names_unavailable); other commands stay quiet.
        loud = bool(self.explicit)
        pods = self.pods(warn=loud)
        if pods is not None:
            _name_entries(candidates, pods)
        for entry in candidates:
            if "pod" in entry.labels:
                continue
            uid = pod_uid_of(entry.pids)
            if uid:
                entry.labels.update({"pod_uid": uid, "aliases": [uid]})
                if self.unavailable:
                    entry.labels["pod_names_unavailable"] = self.unavailable


def _name_entries(entries: list[Any], pods: list[PodSandbox]) -> None:
    by_key: dict[tuple[int, int], PodSandbox] = {}
    by_name: dict[str, PodSandbox] = {}
    # ready sandboxes last, so they win over stopped ones that shared a path
    for sandbox in sorted(pods, key=lambda s: s.ready):
        key = sandbox.namespace_key()
        if key is not None:
            by_key[key] = sandbox
        elif sandbox.netns_path:  # not visible from here (another mount namespace): by name
            by_name[os.path.basename(sandbox.netns_path)] = sandbox
    for entry in entries:
        sandbox = by_key.get((entry.dev, entry.inode))
        if sandbox is None:
            names = {os.path.basename(p) for p in entry.paths}
            sandbox = next((by_name[n] for n in names if n in by_name), None)
        if sandbox is not None:
            entry.kind = "cni pod"
            entry.labels.update(sandbox.labels_for_entry())


def cri_enricher(warn, endpoint: str | None = None) -> CriEnricher:
    """An enricher for a Catalogue (warn: called once with a line when no runtime answers)."""
    return CriEnricher(warn, endpoint)
