"""Importing scapy without letting it read or write files under someone's HOME.

On import scapy creates ~/.config and ~/.cache/scapy and keeps pickled
tables there (manuf, services, ethertypes), following symlinks and deleting
files it cannot read.  Run as root with HOME or XDG_CACHE_HOME pointing at a
directory another user controls, that is a way to make root clobber or
delete a file.  netns-shell imports scapy with those directories pointed at
a place that cannot exist, so scapy keeps no cache (building the tables
costs a few milliseconds) and touches nothing on the host.
"""

from __future__ import annotations

import os
import sys

__all__ = ["import_scapy"]

_XDG = ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
_NOWHERE = "/proc/netns-shell-scapy-has-no-cache"  # mkdir fails in /proc


def import_scapy() -> None:
    """Import scapy's main module (which fixes its folders) with no folders at all."""
    if "scapy.main" in sys.modules:
        return
    saved = {name: os.environ.get(name) for name in _XDG}
    os.environ.update(dict.fromkeys(_XDG, _NOWHERE))
    try:
        import scapy.main  # noqa: F401  (its folders are decided on import)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
