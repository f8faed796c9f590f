"""What a node's Docker engine believes about an overlay network (DESIGN fact 12).

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
from dataclasses import dataclass, field
from typing import Any

from .docker import DockerClient, DockerError
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
        for net in self.client.get("/networks"):
            if net.get("Driver") != "overlay" or net.get("Ingress"):
                continue
            path = self.namespace_path(net["Id"])
            if path is not None:
                found.append({"id": net["Id"], "name": net.get("Name", ""), "path": path})
        return found

    def namespace_path(self, network_id: str) -> str | None:
        """The overlay namespace file `<n>-<id[:10]>` of a network on this node, if any."""
        paths = sorted(glob.glob(os.path.join(glob.escape(self.netns_dir), f"*-{network_id[:10]}")))
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
    swarm = info.get("Swarm") or {}
    result.hostname = str(info.get("Name") or "")
    result.name = result.name or result.hostname or "local"
    result.addr = str(swarm.get("NodeAddr") or "")
    sandboxes = sandbox_dir(client)
    if sandboxes and os.path.isdir(sandboxes):
        result.netns_dir = sandboxes
    result.netns_elsewhere = bool(sandboxes) and not os.path.isdir(sandboxes or "")
    return result


def sandbox_dir(client: DockerClient) -> str | None:
    """Where this engine puts namespace files, on its own machine: the directory of a
    running container's SandboxKey (None: no container tells)."""
    try:
        for summary in client.get("/containers/json"):
            info = client.get(f"/containers/{summary['Id']}/json")
            key = str((info.get("NetworkSettings") or {}).get("SandboxKey") or "")
            if key.startswith("/"):
                return os.path.dirname(key)
    except (DockerError, KeyError, TypeError, AttributeError):
        return None
    return None


def load_view(node: OverlayNode, network_id: str) -> EngineView:
    """The engine's verbose view of a network on `node`; raises DockerError."""
    data = node.client.get(f"/networks/{network_id}?verbose=true")
    view = EngineView(
        node=node.name,
        node_addr=node.addr,
        network_id=str(data.get("Id") or network_id),
        network=str(data.get("Name") or ""),
    )
    for peer in data.get("Peers") or ():
        if isinstance(peer, dict) and peer.get("IP"):
            view.peers[str(peer["IP"])] = str(peer.get("Name") or "")
    for service_name, service in (data.get("Services") or {}).items():
        if not isinstance(service, dict):
            continue
        if service.get("VIP") not in (None, "", "<nil>"):
            view.has_vips = True
            index = service.get("LocalLBIndex")
            if isinstance(index, int) and index > 0:
                view.lb_indexes[str(service_name)] = index
        for task in service.get("Tasks") or ():
            ip = str(task.get("EndpointIP") or "")
            if not ip:
                continue
            vtep = str((task.get("Info") or {}).get("Host IP") or "") or None
            view.endpoints[ip] = Endpoint(
                ip=ip,
                mac=overlay_mac(ip),
                vtep=vtep,
                name=str(task.get("Name") or ""),
                service=str(service_name),
                local=vtep == node.addr,
            )
    for key, container in (data.get("Containers") or {}).items():
        ip = str(container.get("IPv4Address") or "").split("/")[0]
        if not ip:
            continue
        endpoint = Endpoint(
            ip=ip,
            mac=str(container.get("MacAddress") or "") or overlay_mac(ip),
            vtep=node.addr or None,
            name=str(container.get("Name") or key),
            service="",
            local=True,
        )
        if str(key).startswith("lb-"):
            view.load_balancer = endpoint
        view.endpoints[ip] = endpoint
    return view
