"""Bridges and their ports, like `brctl show`: one record per bridge, built from one link dump."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .links import list_links

if TYPE_CHECKING:
    from ..namespace import NetNamespace

__all__ = ["list_bridges"]

Record = dict[str, Any]


def _kind(link: Record) -> str | None:
    return link.get("linkinfo", {}).get("info_kind")


def list_bridges(namespace: NetNamespace | None) -> Iterator[Record]:
    """Bridges of a namespace with their ports (one record per bridge).

    Keys: ifname, bridge_id, stp_state, vlan_filtering, address, operstate
    (iproute2's), and ports: [{ifname, kind, state, operstate}].
    """
    all_links = list(list_links(namespace, addresses=False))
    for link in all_links:
        if _kind(link) != "bridge":
            continue
        data = link["linkinfo"].get("info_data", {})
        ports = [
            {
                "ifname": p["ifname"],
                "kind": _kind(p),
                "state": p["linkinfo"].get("info_slave_data", {}).get("state"),
                "operstate": p.get("operstate"),
            }
            for p in all_links
            if p.get("master") == link["ifname"] and "linkinfo" in p
        ]
        yield {
            "ifname": link["ifname"],
            "bridge_id": data.get("bridge_id"),
            "stp_state": data.get("stp_state"),
            "vlan_filtering": data.get("vlan_filtering"),
            "address": link.get("address"),
            "operstate": link.get("operstate"),
            "ports": ports,
        }
