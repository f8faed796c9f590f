"""Namespace ids (RTM_GETNSID): how one namespace refers to another.

A veth's IFLA_LINK_NETNSID is an id local to the namespace the veth is in;
asking that namespace for the id of each candidate namespace (by fd) maps
the id back to a namespace without allocating new ids.
"""

from __future__ import annotations

from ..errors import NetlinkError
from .constants import I32, NETNSA_FD, NETNSA_NSID, NLA_U32, RTGENMSG, RTM_GETNSID, RTM_NEWNSID
from .core import NetlinkSocket, iter_attrs

__all__ = ["netnsid_of"]


def netnsid_of(sock: NetlinkSocket, fd: int) -> int | None:
    """The id `sock`'s namespace has assigned to the namespace of `fd`, or None."""
    body = RTGENMSG.pack(0) + NLA_U32.pack(8, NETNSA_FD, fd)
    try:
        kind, buf, start, end = sock.get(RTM_GETNSID, body, what="nsid")
    except NetlinkError:
        return None
    if kind != RTM_NEWNSID:
        return None
    for attr, vs, _ve in iter_attrs(buf, start + 4, end):
        if attr == NETNSA_NSID:
            value = I32.unpack_from(buf, vs)[0]
            return value if value >= 0 else None
    return None
