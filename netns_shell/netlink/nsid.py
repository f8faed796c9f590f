"""Namespace ids (RTM_GETNSID): how one namespace refers to another.

A veth's IFLA_LINK_NETNSID is an id local to the namespace the veth is in;
asking that namespace for the id of each candidate namespace (by fd) maps
the id back to a namespace without allocating new ids.
"""

from __future__ import annotations

import struct

from ..errors import NetlinkError
from .core import NetlinkSocket, iter_attrs

__all__ = ["netnsid_of"]

RTM_NEWNSID, RTM_GETNSID = 88, 90
NETNSA_NSID, NETNSA_FD = 1, 3
_I32 = struct.Struct("=i")


def netnsid_of(sock: NetlinkSocket, fd: int) -> int | None:
    """The id `sock`'s namespace has assigned to the namespace of `fd`, or None."""
    body = struct.pack("=Bxxx", 0) + struct.pack("=HHI", 8, NETNSA_FD, fd)
    try:
        kind, buf, start, end = sock.get(RTM_GETNSID, body, what="nsid")
    except NetlinkError:
        return None
    if kind != RTM_NEWNSID:
        return None
    for attr, vs, _ve in iter_attrs(buf, start + 4, end):
        if attr == NETNSA_NSID:
            value = _I32.unpack_from(buf, vs)[0]
            return value if value >= 0 else None
    return None
