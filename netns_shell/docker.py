"""Names from a Docker engine: which container sits in a sandbox, which network is an overlay.

A small HTTP/1.1 client over the engine's unix socket (stdlib only, no docker
CLI): `/var/run/docker.sock`, or `DOCKER_HOST=unix://PATH`.  Every call has a
short timeout; an engine that refuses or hangs is reported once and the shell
goes on without names.

Docker's namespace files (architecture.md fact 7): container sandboxes are
`<SandboxID[:12]>`, overlay networks `<n>-<NetworkID[:10]>`, their load
balancers `lb_<NetworkID[:9]>`, and the ingress network `ingress_sbox`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import NetnsShellError

__all__ = [
    "DockerClient",
    "DockerEnricher",
    "DockerError",
    "DockerNames",
    "container_state",
    "docker_enricher",
    "mapping",
    "objects",
    "path_segment",
    "socket_path",
    "text",
]

_CACHE_SECONDS = 5.0
_SAFE_URL = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@/%?-]*")
#: after a failed or slow round, the engine is left alone this long
BACK_OFF_SECONDS = 60.0
#: one lookup round (networks, containers, each container's details) ends after this long
ROUND_SECONDS = 1.5
#: an answer larger than this is refused (the engine's real answers are a few MB at most)
MAX_ANSWER_BYTES = 32 * 1024 * 1024


class DockerError(NetnsShellError):
    """The engine could not be asked (no socket, refused, timed out, bad answer)."""


class DockerTimeoutError(DockerError):
    """The engine did not answer in time."""


def socket_path() -> str | None:
    """The engine's unix socket: DOCKER_HOST=unix://... or /var/run/docker.sock."""
    host = os.environ.get("DOCKER_HOST", "")
    if host:
        return host[len("unix://") :] if host.startswith("unix://") else None
    return "/var/run/docker.sock"


class DockerClient:
    """GET requests to the Engine API over its unix socket."""

    def __init__(
        self,
        path: str | None = None,
        *,
        timeout: float = 2.0,
        max_bytes: int = MAX_ANSWER_BYTES,
    ):
        self.path = path or socket_path()
        self.timeout = timeout
        self.max_bytes = max_bytes

    def available(self) -> bool:
        return bool(self.path) and os.path.exists(self.path)

    def get(self, url: str, *, deadline: float | None = None) -> Any:
        """The decoded JSON body of GET `url`; raises DockerError.

        The request ends at `deadline` (a time.monotonic() value) if that comes
        before the client's own timeout.
        """
        body = self._request(url, deadline)
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise DockerError(f"{url}: the answer is not JSON") from None

    def ping(self) -> None:
        """Return if the engine answers /_ping; raise DockerError otherwise."""
        self._request("/_ping", None)

    def _request(self, url: str, deadline: float | None) -> bytes:
        """The body of a 200 answer to GET `url`; raises DockerError."""
        if not self.path:
            raise DockerError("DOCKER_HOST is not a unix:// socket")
        if not _SAFE_URL.fullmatch(url):  # no space, CR or LF may split the request line
            raise DockerError(f"refusing to ask the engine for {url!r}")
        own = time.monotonic() + self.timeout
        deadline = own if deadline is None else min(own, deadline)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(_remaining(deadline))
                sock.connect(self.path)
                sock.sendall(
                    f"GET {url} HTTP/1.1\r\nHost: docker\r\nUser-Agent: netns-shell\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                raw = _read_all(sock, deadline, self.max_bytes)
        except TimeoutError:
            raise DockerTimeoutError(f"{self.path}: no answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise DockerError(f"{self.path}: {exc.strerror or exc}") from None
        status, body = _parse_response(raw)
        if status != 200:
            raise DockerError(f"{url}: HTTP {status}")
        return body


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _read_all(sock: socket.socket, deadline: float, max_bytes: int) -> bytes:
    """Everything until the engine closes, within `deadline` and `max_bytes` (plus headers)."""
    answer = bytearray()
    scratch = bytearray(65536)
    while True:
        sock.settimeout(_remaining(deadline))
        size = sock.recv_into(scratch)
        if not size:
            return bytes(answer)
        if len(answer) + size > max_bytes + 65536:
            raise DockerError(f"the engine's answer is larger than {max_bytes >> 20} MiB; refused")
        answer += memoryview(scratch)[:size]


def _parse_response(raw: bytes) -> tuple[int, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise DockerError("truncated HTTP answer from the engine")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise DockerError("malformed HTTP answer from the engine") from None
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])
    }
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body)
    return status, body


def _dechunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise DockerError("malformed chunked answer from the engine") from None
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


@dataclass
class DockerNames:
    """What the engine says about sandboxes and networks, keyed the way namespaces are named."""

    #: sandbox file name (12 hex) -> container facts
    sandboxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: network id -> network facts
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)

    #: why the names are incomplete (the round ran out of time), or None
    incomplete: str | None = None

    @classmethod
    def load(cls, client: DockerClient, *, seconds: float = ROUND_SECONDS) -> DockerNames:
        """Ask the engine, within one deadline for the whole round.

        Raises DockerError when the engine cannot be asked at all; when it
        stops answering part-way, the names found so far come back with
        `incomplete` saying why.  Answers are hostile data: anything of the
        wrong shape is skipped, never trusted to be a dict, a list or a str.
        """
        deadline = time.monotonic() + seconds
        names = cls()
        for net in objects(client.get("/networks", deadline=deadline), "/networks"):
            net_id = text(net.get("Id"))
            if net_id:
                names.networks[net_id] = {
                    "name": text(net.get("Name")),
                    "driver": text(net.get("Driver")),
                    "scope": text(net.get("Scope")),
                }
        summaries = objects(client.get("/containers/json", deadline=deadline), "/containers/json")
        for done, summary in enumerate(summaries):
            container_id = text(summary.get("Id"))
            if not re.fullmatch(r"[0-9a-f]{12,64}", container_id):
                continue
            try:
                info = client.get(f"/containers/{container_id}/json", deadline=deadline)
            except DockerTimeoutError:
                names.incomplete = (
                    f"no answer within {seconds:g} s after {done} of {len(summaries)} containers"
                )
                break
            except DockerError:
                continue  # gone meanwhile
            if isinstance(info, dict):
                names._add_container(container_id, info)
        return names

    def _add_container(self, container_id: str, info: dict[str, Any]) -> None:
        settings = mapping(info.get("NetworkSettings"))
        key = os.path.basename(text(settings.get("SandboxKey")))
        if not key:
            return
        labels = mapping(mapping(info.get("Config")).get("Labels"))
        pid = mapping(info.get("State")).get("Pid")
        self.sandboxes[key] = {
            "container": text(info.get("Name")).lstrip("/"),
            "container_id": container_id,
            "service": text(labels.get("com.docker.swarm.service.name")) or None,
            "pid": pid if type(pid) is int and pid > 0 else None,
            "endpoints": [
                {
                    "network": name,
                    "network_id": text(ep.get("NetworkID")),
                    "ip": text(ep.get("IPAddress")),
                    "mac": text(ep.get("MacAddress")),
                }
                for name, ep in mapping(settings.get("Networks")).items()
                if isinstance(name, str) and isinstance(ep, dict)
            ],
        }

    def network_for(self, namespace_name: str) -> dict[str, Any] | None:
        """The network an overlay/lb/ingress namespace belongs to (by id prefix)."""
        if namespace_name == "ingress_sbox":
            prefix = None
            match = [i for i, n in self.networks.items() if n["name"] == "ingress"]
        else:
            from .discovery import network_id_prefix

            prefix = network_id_prefix(namespace_name)
            if prefix is None:
                return None
            match = [i for i in self.networks if i.startswith(prefix)]
        if len(match) != 1:
            return None
        return {"id": match[0], **self.networks[match[0]]}

    def endpoints_on(self, network_id: str) -> dict[str, dict[str, Any]]:
        """MAC -> {"container", "ip"} of this host's containers attached to a network."""
        found: dict[str, dict[str, Any]] = {}
        for sandbox in self.sandboxes.values():
            for endpoint in sandbox["endpoints"]:
                if endpoint.get("network_id") == network_id and endpoint.get("mac"):
                    found[endpoint["mac"]] = {
                        "container": sandbox["container"],
                        "ip": endpoint.get("ip") or None,
                    }
        return found

    def labels_for(self, namespace_name: str) -> dict[str, Any]:
        """Labels to attach to a discovered namespace of this name (may be empty)."""
        sandbox = self.sandboxes.get(namespace_name)
        if sandbox is not None:
            aliases = [sandbox["container"], sandbox["container_id"], sandbox["container_id"][:12]]
            labels: dict[str, Any] = {
                "container": sandbox["container"],
                "container_id": sandbox["container_id"],
                "aliases": [a for a in aliases if a],
            }
            if sandbox.get("service"):
                labels["service"] = sandbox["service"]
            if sandbox.get("pid"):
                labels["container_pid"] = sandbox["pid"]  # a holder for `exec -m/-a`
            return labels
        network = self.network_for(namespace_name)
        if network is not None:
            return {
                "network": network["name"],
                "network_id": network["id"],
                "aliases": [network["name"]] if namespace_name[0].isdigit() else [],
            }
        return {}


def container_state(client: DockerClient, name: str) -> str | None:
    """The state ('created', 'exited', ...) of a container that is not running, or None
    (running, no such container, no engine): why a container name opens no namespace."""
    if not client.available() or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
        return None
    try:
        info = client.get(f"/containers/{name}/json")
    except DockerError:
        return None
    state = mapping(mapping(info).get("State"))
    if state.get("Running") is True:
        return None
    return text(state.get("Status")) or "not running"


def objects(value: Any, url: str) -> list[dict[str, Any]]:
    """The dicts of a JSON list; DockerError when the answer is not a list at all."""
    if not isinstance(value, list):
        raise DockerError(f"{url}: unexpected answer from the engine (not a list)")
    return [item for item in value if isinstance(item, dict)]


def mapping(value: Any) -> dict[str, Any]:
    """`value` if the engine sent an object there, else an empty one (answers are hostile)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    """`value` if the engine sent a string there, else ''."""
    return value if isinstance(value, str) else ""


def path_segment(name: str) -> str:
    """`name` quoted as one segment of a request path (a container name or id)."""
    return urllib.parse.quote(name, safe="")


class DockerEnricher:
    """Adds Docker names to discovered namespaces; quiet and cheap when there is no engine."""

    def __init__(self, client: DockerClient, warn):
        self.client = client
        self.warn = warn
        self._names: DockerNames | None = None
        self._loaded_at = 0.0
        self._failed_at: float | None = None
        self._warned = False

    def names(self) -> DockerNames | None:
        now = time.monotonic()
        if self._names is not None and now - self._loaded_at < _CACHE_SECONDS:
            return self._names
        if self._failed_at is not None and now - self._failed_at < BACK_OFF_SECONDS:
            return self._names
        if not self.client.available():
            return None
        try:
            names = DockerNames.load(self.client)
        except DockerError as exc:
            self._fail(now, f"docker: {exc}; going on without container names")
            return None
        self._names, self._loaded_at = names, now
        if names.incomplete:
            self._fail(now, f"docker: {names.incomplete}; some container names are missing")
        else:
            self._failed_at, self._warned = None, False
        return names

    def _fail(self, now: float, message: str) -> None:
        """Back off for a while; warn once until the engine answers again."""
        self._failed_at = now
        if not self._warned:
            self._warned = True
            self.warn(message)

    def __call__(self, entries: Iterable[Any]) -> None:
        entries = list(entries)
        if not any(e.kind.startswith("docker") for e in entries):
            return
        names = self.names()
        if names is None:
            return
        for entry in entries:
            entry.labels.update(names.labels_for(entry.base))


def docker_enricher(warn, client: DockerClient | None = None) -> DockerEnricher:
    """An enricher for a Catalogue (warn: called once with a line when the engine fails)."""
    return DockerEnricher(client or DockerClient(), warn)
