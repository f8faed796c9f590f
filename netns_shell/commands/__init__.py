"""The command registry and the built-in commands."""

from __future__ import annotations

from . import capture, check, events, inspect, meta, namespaces, overlay, probes, toolbox, trace
from .registry import Command, Param, Registry, parse_arguments

__all__ = ["Command", "Param", "Registry", "build_registry", "parse_arguments"]


def build_registry() -> Registry:
    """A registry holding every built-in command."""
    registry = Registry()
    for module in (
        namespaces,
        inspect,
        overlay,
        check,
        trace,
        capture,
        events,
        probes,
        toolbox,
        meta,
    ):
        module.register(registry)
    return registry
