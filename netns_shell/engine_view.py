"""What a node's Docker engine believes about an overlay network (architecture.md fact 12).

`GET /networks/{id}?verbose=true` on the node's own engine: `Peers` (the live
gossip members), `Services` -> `Tasks` (EndpointIP, Info["Host IP"] = the VTEP
of the node that hosts the endpoint; attachable containers sit under the
service name ""), and `Containers` (this node's endpoints, with the network's
load-balancer endpoint `lb-<network>`).  Every node answers from its own gossip
database, so two nodes' views may differ.

Overlay MACs are 02:42 followed by the IPv4 address's four bytes.

A node is reached through a Docker endpoint: a unix socket (`unix:///path`),
given as `NAME=ENDPOINT`.  The node's namespace files are found where its
engine says its containers' sandboxes are (dirname of a SandboxKey), else in
/var/run/docker/netns.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .discovery import overlay_file_glob
from .docker import DockerClient, DockerError, mapping, objects, text
from .errors import UsageError

__all__ = [
    "Endpoint",
    "EngineView",
    "NodeEndpoint",
    "OverlayNode",
    "connect_node",
    "load_view",
    "overlay_mac",
    "parse_node",
    "sandbox_dir",
]

DEFAULT_NETNS_DIR = "/var/run/docker/netns"


_ID = re.compile(r"[0-9a-z]{10,64}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def _ip(value: Any) -> str | None:
    """An IP address the engine sent, normalised; None for anything else (answers are hostile)."""
    try:
        return str(ipaddress.ip_address(text(value)))
    except ValueError:
        return None


def _mac(value: Any) -> str | None:
    mac = text(value).lower()
    return mac if _MAC.fullmatch(mac) else None


def overlay_mac(ip: str) -> str | None:
    """The MAC the overlay driver gives an IPv4 endpoint (02:42 + its bytes); None for IPv6."""
    try:
        packed = ipaddress.IPv4Address(ip).packed
    except ValueError:
        return None
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


@dataclass(frozen=True)
class NodeEndpoint:
    """How to reach one node's engine: a name for the reports, and a unix socket on this
    host (asked directly), a `tcp://` / `ssh://` URL or a docker context (through the docker
    CLI only, for the agents: agents.py)."""

    name: str
    socket: str | None = None
    url: str | None = None
    context: str | None = None

    @property
    def endpoint(self) -> str:
        if self.socket:
            return f"unix://{self.socket}"
        return self.url or f"context {self.context}"

    def cli_args(self) -> list[str]:
        """The docker CLI's options that select this engine."""
        if self.context:
            return ["--context", self.context]
        return ["-H", self.endpoint]


def parse_node(text: str) -> NodeEndpoint:
    """`NAME=unix:///path/docker.sock` (or `NAME=/path`), `NAME=tcp://...`, `NAME=ssh://...`
    or `NAME=CONTEXT` (a docker context) -> NodeEndpoint; UsageError otherwise."""
    name, sep, endpoint = text.partition("=")
    if not sep or not name or not endpoint:
        raise UsageError(
            f"--nodes {text!r}: expected NAME=unix:///path/to/docker.sock, NAME=ssh://HOST, "
            "NAME=tcp://HOST:PORT or NAME=CONTEXT"
        )
    if endpoint.startswith("unix://"):
        return NodeEndpoint(name, socket=endpoint[len("unix://") :])
    if endpoint.startswith("/"):
        return NodeEndpoint(name, socket=endpoint)
    if endpoint.startswith(("tcp://", "ssh://")):
        return NodeEndpoint(name, url=endpoint)
    if "://" in endpoint or endpoint.startswith("-"):
        raise UsageError(f"--nodes {name}: unsupported endpoint {endpoint!r}")
    return NodeEndpoint(name, context=endpoint)


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the network as an engine knows it."""

    ip: str
    mac: str | None
    vtep: str | None  # the hosting node's address; None for this node's own endpoints
    name: str
    service: str
    local: bool = False


@dataclass
class EngineView:
    """One node's engine's view of one overlay network."""

    node: str
    node_addr: str  # the address this node advertises (its VTEP)
    network_id: str
    network: str
    peers: dict[str, str] = field(default_factory=dict)  # VTEP -> peer name
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # IP -> endpoint
    load_balancer: Endpoint | None = None  # this node's lb-<network> endpoint
    has_vips: bool = False
    #: service name -> its LocalLBIndex: the fwmark of its IPVS service in lb_<netid>
    lb_indexes: dict[str, int] = field(default_factory=dict)

    def remote(self) -> dict[str, Endpoint]:
        """IP -> endpoint hosted on another node (the ones this node's kernel must know)."""
        return {ip: e for ip, e in self.endpoints.items() if not e.local}


@dataclass
class OverlayNode:
    """A node reached through its engine: its name, address and namespace directory."""

    name: str
    client: DockerClient
    addr: str = ""
    hostname: str = ""
    netns_dir: str = DEFAULT_NETNS_DIR
    error: str | None = None
    #: the engine's sandboxes lie in a directory this host does not see (another machine)
    netns_elsewhere: bool = False

    def overlay_networks(self) -> list[dict[str, Any]]:
        """The overlay networks of this engine that have a namespace on this node."""
        found = []
        for net in objects(self.client.get("/networks"), "/networks"):
            net_id = text(net.get("Id"))
            overlay = text(net.get("Driver")) == "overlay" and not net.get("Ingress")
            if not overlay or not _ID.fullmatch(net_id):
                continue
            path = self.namespace_path(net_id)
            if path is not None:
                found.append({"id": net_id, "name": text(net.get("Name")), "path": path})
        return found

    def namespace_path(self, network_id: str) -> str | None:
        """The overlay namespace file `<n>-<id[:10]>` of a network on this node, if any."""
        pattern = os.path.join(glob.escape(self.netns_dir), overlay_file_glob(network_id))
        paths = sorted(glob.glob(pattern))
        return paths[0] if paths else None


def connect_node(node: NodeEndpoint | None, *, timeout: float = 3.0) -> OverlayNode:
    """Ask a node's engine who it is; `error` is set (and nothing raised) when it does not answer.

    `node` None: the engine of this shell (DOCKER_HOST or /var/run/docker.sock).
    """
    client = DockerClient(node.socket if node else None, timeout=timeout)
    result = OverlayNode(node.name if node else "", client)
    try:
        info = client.get("/info")
    except DockerError as exc:
        result.error = str(exc)
        result.name = result.name or "local"
        return result
    info = mapping(info)
    swarm = mapping(info.get("Swarm"))
    result.hostname = text(info.get("Name"))
    result.name = result.name or result.hostname or "local"
    result.addr = _ip(swarm.get("NodeAddr")) or ""
    sandboxes = sandbox_dir(client)
    if sandboxes and os.path.isdir(sandboxes):
        result.netns_dir = sandboxes
    result.netns_elsewhere = bool(sandboxes) and not os.path.isdir(sandboxes or "")
    return result


def sandbox_dir(client: DockerClient) -> str | None:
    """Where this engine puts namespace files, on its own machine: the directory of a
    running container's SandboxKey (None: no container tells)."""
    try:
        for summary in objects(client.get("/containers/json"), "/containers/json"):
            container_id = text(summary.get("Id"))
            if not _ID.fullmatch(container_id):
                continue
            info = mapping(client.get(f"/containers/{container_id}/json"))
            key = text(mapping(info.get("NetworkSettings")).get("SandboxKey"))
            if key.startswith("/"):
                return os.path.dirname(key)
    except DockerError:
        return None
    return None


def load_view(node: OverlayNode, network_id: str) -> EngineView:
    """The engine's verbose view of a network on `node`; raises DockerError."""
    if not _ID.fullmatch(network_id):
        raise DockerError(f"not a network id: {network_id!r}")
    data = mapping(node.client.get(f"/networks/{network_id}?verbose=true"))
    view = EngineView(
        node=node.name,
        node_addr=node.addr,
        network_id=text(data.get("Id")) or network_id,
        network=text(data.get("Name")),
    )
    for peer in data.get("Peers") or ():
        peer = mapping(peer)
        ip = _ip(peer.get("IP"))
        if ip:
            view.peers[ip] = text(peer.get("Name"))
    for service_name, service in mapping(data.get("Services")).items():
        if not isinstance(service, dict):
            continue
        if service.get("VIP") not in (None, "", "<nil>"):
            view.has_vips = True
            index = service.get("LocalLBIndex")
            if type(index) is int and index > 0:
                view.lb_indexes[str(service_name)] = index
        for task in service.get("Tasks") or ():
            task = mapping(task)
            ip = _ip(task.get("EndpointIP"))
            if not ip:
                continue
            vtep = _ip(mapping(task.get("Info")).get("Host IP"))
            view.endpoints[ip] = Endpoint(
                ip=ip,
                mac=overlay_mac(ip),
                vtep=vtep,
                name=text(task.get("Name")),
                service=str(service_name),
                local=vtep == node.addr,
            )
    for key, container in mapping(data.get("Containers")).items():
        container = mapping(container)
        ip = _ip(text(container.get("IPv4Address")).split("/")[0])
        if not ip:
            continue
        endpoint = Endpoint(
            ip=ip,
            mac=_mac(container.get("MacAddress")) or overlay_mac(ip),
            vtep=node.addr or None,
            name=text(container.get("Name")) or str(key),
            service="",
            local=True,
        )
        if str(key).startswith("lb-"):
            view.load_balancer = endpoint
        view.endpoints[ip] = endpoint
    return view
