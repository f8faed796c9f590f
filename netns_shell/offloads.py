"""Offload features of an interface (`ethtool -k`), read inside its namespace.

The SIOCETHTOOL ioctl is made on a socket created inside the namespace, so
the interface name is resolved there.  Three requests: the feature names
(ETHTOOL_GSSET_INFO + ETHTOOL_GSTRINGS for ETH_SS_FEATURES), their state
(ETHTOOL_GFEATURES: available / requested / active / never changed bits), and
the driver (ETHTOOL_GDRVINFO), which the VXLAN check needs.

Records carry the kernel's feature name, with `ethtool` set to the name
`ethtool -k` prints for the features it shows under an older name
(generic-receive-offload for rx-gro, ...).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import NotFoundError, PrivilegeError, UsageError

if TYPE_CHECKING:
    from .namespace import NetNamespace

__all__ = ["list_offloads", "vxlan_offload_findings"]

SIOCETHTOOL = 0x8946
ETHTOOL_GDRVINFO = 0x03
ETHTOOL_GSTRINGS = 0x1B
ETHTOOL_GSSET_INFO = 0x37
ETHTOOL_GFEATURES = 0x3A
ETH_SS_FEATURES = 4
ETH_GSTRING_LEN = 32
_IFNAMSIZ = 16

#: kernel feature -> the name `ethtool -k` shows it under (its "off_flag_def" table)
LEGACY_NAMES = {
    "rx-checksum": "rx-checksumming",
    "tx-udp-fragmentation": "udp-fragmentation-offload",
    "tx-generic-segmentation": "generic-segmentation-offload",
    "rx-gro": "generic-receive-offload",
    "rx-lro": "large-receive-offload",
    "rx-vlan-hw-parse": "rx-vlan-offload",
    "tx-vlan-hw-insert": "tx-vlan-offload",
    "rx-ntuple-filter": "ntuple-filters",
    "rx-hashing": "receive-hashing",
}

# The known VXLAN breakage: VMware's vmxnet3 with TX checksum offload on corrupts the
# checksums of VXLAN-encapsulated packets: overlay pings work, TCP between nodes stalls
# (moby/moby#41775, fedora-coreos-tracker#1372, OpenShift's vSphere fix in
# machine-config-operator#2734); the fix is `ethtool -K IFACE tx-checksum-ip-generic off`.
_VXLAN_BAD_DRIVERS = ("vmxnet3",)
_TUNNEL_OFFLOADS = ("tx-udp_tnl-segmentation", "tx-udp_tnl-csum-segmentation")


def _ethtool(sock: socket.socket, ifname: str, request: ctypes.Array) -> None:
    raw = ifname.encode("utf-8", "surrogateescape")
    if len(raw) >= _IFNAMSIZ:
        raise UsageError(f"offloads: interface name too long: {ifname!r}")
    ifreq = bytearray(
        struct.pack(f"{_IFNAMSIZ}sP", raw, ctypes.addressof(request)).ljust(40, b"\0")
    )
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            raise NotFoundError(f"no interface named {ifname!r} in this namespace") from None
        if exc.errno == errno.EPERM:
            raise PrivilegeError("offloads: permission denied (needs CAP_NET_ADMIN)") from None
        raise


def _feature_names(sock: socket.socket, ifname: str) -> list[str]:
    info = ctypes.create_string_buffer(
        struct.pack("=IIQI", ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0)
    )
    _ethtool(sock, ifname, info)
    mask = struct.unpack_from("=Q", info, 8)[0]
    count = struct.unpack_from("=I", info, 16)[0] if mask & (1 << ETH_SS_FEATURES) else 0
    strings = ctypes.create_string_buffer(12 + count * ETH_GSTRING_LEN)
    struct.pack_into("=III", strings, 0, ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count)
    _ethtool(sock, ifname, strings)
    raw = strings.raw
    return [
        raw[12 + i * ETH_GSTRING_LEN : 12 + (i + 1) * ETH_GSTRING_LEN]
        .split(b"\0", 1)[0]
        .decode("ascii", "replace")
        for i in range(count)
    ]


def _driver(sock: socket.socket, ifname: str) -> str:
    info = ctypes.create_string_buffer(196)
    struct.pack_into("=I", info, 0, ETHTOOL_GDRVINFO)
    try:
        _ethtool(sock, ifname, info)
    except OSError:
        return ""
    return info.raw[4:36].split(b"\0", 1)[0].decode("ascii", "replace")


def _read(ifname: str) -> tuple[str, list[str], list[tuple[int, int, int, int]]]:
    """(driver, names, per-32-feature blocks); runs inside the namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        names = _feature_names(sock, ifname)
        blocks = (len(names) + 31) // 32
        request = ctypes.create_string_buffer(8 + blocks * 16)
        struct.pack_into("=II", request, 0, ETHTOOL_GFEATURES, blocks)
        _ethtool(sock, ifname, request)
        states = [struct.unpack_from("=IIII", request, 8 + i * 16) for i in range(blocks)]
        return _driver(sock, ifname), names, states


def list_offloads(ns: NetNamespace, ifname: str) -> Iterator[dict[str, Any]]:
    """One record per feature: {ifname, driver, feature, ethtool, active, requested, fixed}.

    `fixed` as ethtool prints it: the driver cannot change it (not available,
    or never changed).
    """
    driver, names, states = ns.run(_read, ifname)
    for index, name in enumerate(names):
        if not name:
            continue
        available, requested, active, never = states[index // 32]
        bit = 1 << (index % 32)
        yield {
            "ifname": ifname,
            "driver": driver,
            "feature": name,
            "ethtool": LEGACY_NAMES.get(name, name),
            "active": bool(active & bit),
            "requested": bool(requested & bit),
            "fixed": not available & bit or bool(never & bit),
        }


def vxlan_offload_findings(records: list[dict[str, Any]]) -> list[str]:
    """Warnings for the offload settings known to break VXLAN overlays on this driver."""
    if not records:
        return []
    state = {r["feature"]: r["active"] for r in records}
    driver, ifname = records[0]["driver"], records[0]["ifname"]
    if driver not in _VXLAN_BAD_DRIVERS or not state.get("tx-checksum-ip-generic"):
        return []
    tunnel = [f for f in _TUNNEL_OFFLOADS if state.get(f)]
    return [
        f"vxlan-offload: {ifname} ({driver}) has tx-checksum-ip-generic on"
        + (f" and {', '.join(tunnel)}" if tunnel else "")
        + ": VXLAN packets leave with bad checksums on VMware (overlay TCP stalls while ping "
        f"works); fix: ethtool -K {ifname} tx-checksum-ip-generic off"
    ]
