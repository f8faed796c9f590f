"""netns-shell: a troubleshooting shell for Linux network namespaces.

The library surface for scripts lives in `netns_shell.api` (also reachable
as attributes of this package, imported on first use so the command line
starts fast): open_namespace, links, routes, neighbours, fdb, namespaces,
find, capture_to_file, and Namespace (python-nsenter compatible).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = (
    "Namespace",
    "capture_to_file",
    "fdb",
    "find",
    "links",
    "namespaces",
    "neighbours",
    "open_namespace",
    "routes",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'netns_shell' has no attribute {name!r}")
