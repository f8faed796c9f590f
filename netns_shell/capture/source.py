"""Where packets come from: an interface of a namespace, or a savefile.

A live handle is created and activated on a short-lived thread inside the
target namespace (`NetNamespace.run`), so libpcap's AF_PACKET socket and its
ifindex lookup belong to that namespace (architecture.md fact 1); the handle is then
used from the caller's thread.  Interface names come from a netlink dump in
the same namespace, never from scapy's root-namespace interface cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import NotFoundError
from ..netlink.links import list_links
from .pcap import DLT_LINUX_SLL2, Handle, datalink_description, datalink_name

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = [
    "ANY",
    "BUFFER_SIZE",
    "SNAPLEN",
    "TIMEOUT_MS",
    "Interfaces",
    "Source",
    "check_interface",
    "list_interfaces",
    "name_lookup",
    "open_file",
    "open_live",
]

ANY = "any"
SNAPLEN = 262144  # tcpdump's default
BUFFER_SIZE = 64 << 20  # kernel ring: absorbs bursts while the disk or the terminal catches up
#: TPACKET_V3 block timeout: a block with packets is handed over at least this often
TIMEOUT_MS = 100


@dataclass
class Interfaces:
    """The links of one namespace: ifindex -> name, and which are loopback."""

    names: dict[int, str]
    loopback: set[int]

    def default(self) -> str:
        """The single non-loopback interface, else 'any' (like `tcpdump -i any`)."""
        others = [name for index, name in self.names.items() if index not in self.loopback]
        return others[0] if len(others) == 1 else ANY

    def index_of(self, name: str) -> int | None:
        return next((index for index, n in self.names.items() if n == name), None)


def list_interfaces(namespace: NetNamespace) -> Interfaces:
    """One netlink link dump in `namespace` (no addresses)."""
    names: dict[int, str] = {}
    loopback: set[int] = set()
    for link in list_links(namespace, addresses=False):
        names[link["ifindex"]] = link["ifname"]
        if "LOOPBACK" in link.get("flags", ()):
            loopback.add(link["ifindex"])
    return Interfaces(names, loopback)


@dataclass
class Source:
    """An open handle and what to tell the user about it."""

    handle: Handle
    device: str  # interface name, 'any', or the savefile path
    linktype: int
    snaplen: int
    warnings: list[str] = field(default_factory=list)
    #: ifindex -> name in the capture's namespace (for cooked `any` captures)
    names: Callable[[int], str | None] | None = None

    @property
    def linktype_text(self) -> str:
        """'EN10MB (Ethernet)', as tcpdump prints it."""
        return f"{datalink_name(self.linktype)} ({datalink_description(self.linktype)})"

    def failure(self) -> str:
        """Why a read loop failed, e.g. 'eth0: the interface disappeared'."""
        message = self.handle.error() or "the capture failed"
        return f"{self.device}: {message[:1].lower()}{message[1:]}"

    def close(self) -> None:
        self.handle.close()


def open_live(
    namespace: NetNamespace,
    device: str,
    *,
    promisc: bool = True,
    names: Callable[[int], str | None] | None = None,
) -> Source:
    """Activate a capture on `device` ('any': every interface) inside `namespace`.

    On 'any' the link type is LINUX_SLL2 when libpcap offers it, so every
    packet carries the ifindex it was seen on.  Raises CaptureError with
    libpcap's reason (no such device, not up, permission).
    """

    def activate() -> tuple[Handle, list[str]]:
        handle = Handle.create(device)
        try:
            handle.configure(
                snaplen=SNAPLEN,
                buffer_size=BUFFER_SIZE,
                timeout_ms=TIMEOUT_MS,
                promisc=promisc and device != ANY,
            )
            return handle, handle.activate()
        except BaseException:
            handle.close()
            raise

    handle, warnings = namespace.run(activate)
    try:
        if device == ANY and DLT_LINUX_SLL2 in handle.linktypes():
            handle.set_linktype(DLT_LINUX_SLL2)
        handle.set_nonblocking(True)
    except BaseException:
        handle.close()
        raise
    return Source(handle, device, handle.linktype, handle.snaplen, warnings, names)


def open_file(path: str) -> Source:
    """Open a pcap or pcapng savefile for reading."""
    handle = Handle.open_file(path)
    return Source(handle, path, handle.linktype, handle.snaplen)


def check_interface(interfaces: Interfaces, name: str, where: str) -> None:
    """NotFoundError naming the namespace when `name` is not one of its links."""
    if name != ANY and interfaces.index_of(name) is None:
        known = ", ".join(sorted(interfaces.names.values()))
        raise NotFoundError(f"capture: no interface named '{name}' in {where} (links: {known})")


def name_lookup(namespace: NetNamespace, interfaces: Interfaces) -> Callable[[int], str | None]:
    """ifindex -> name for decoded lines; re-dumps the links once per unknown index."""
    names = dict(interfaces.names)
    tried: set[int] = set()

    def lookup(index: int) -> str | None:
        if index not in names and index not in tried:
            tried.add(index)  # an interface created after the capture started
            try:
                names.update(list_interfaces(namespace).names)
            except Exception:  # names are cosmetic; the packet is still shown
                pass
        return names.get(index)

    return lookup
