"""Records: plain dicts with iproute2's keys, plus a cheap way to share a tail.

Rows of a big table (500k routes, 100k FDB entries) mostly repeat themselves:
same gateway, device, protocol, flags.  A query may build such a row as a
`SharedRecord`: its own keys first (destination, MAC...), then a copy of the
keys of a `Shared` part common to many rows.  It is an ordinary dict for every
consumer (JSON, the Python API); the renderer may use `shared` to format the
common cells once per `Shared` instead of once per row.  Treat records as
read-only: nested values (lists) can be shared between records.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Shared", "SharedRecord"]


class Shared:
    """The part several records have in common, and which keys each record adds."""

    __slots__ = ("own_keys", "values")

    def __init__(self, values: dict[str, Any], own_keys: frozenset[str]):
        self.values = values
        self.own_keys = own_keys


class SharedRecord(dict):
    """A dict whose keys outside `shared.own_keys` equal `shared.values`.

    Build it as `r = SharedRecord(own); r.update(shared.values); r.shared = shared`
    (no Python-level __init__: this runs once per row of million-row tables).  Own
    keys may sit between shared ones, but records of one Shared that hold the same
    keys hold them in the same order: the JSON writer encodes the shared part once.
    """

    __slots__ = ("shared",)
