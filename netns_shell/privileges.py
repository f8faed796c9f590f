"""Which capabilities the process has, and clear errors when one is missing.

Entering a namespace needs CAP_SYS_ADMIN (setns), reading other processes'
namespaces CAP_SYS_PTRACE, packet capture and probes CAP_NET_RAW, changing
network state CAP_NET_ADMIN.
"""

from __future__ import annotations

from .errors import PrivilegeError

__all__ = ["CAPABILITIES", "effective_capabilities", "missing", "require"]

#: capability name -> bit number (linux/capability.h)
CAPABILITIES = {
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_ADMIN": 21,
}

_WHY = {
    "CAP_SYS_ADMIN": "to enter network namespaces (setns)",
    "CAP_SYS_PTRACE": "to open other processes' namespaces",
    "CAP_NET_RAW": "to capture packets and send probes",
    "CAP_NET_ADMIN": "to change network settings",
}


def effective_capabilities() -> int:
    """The CapEff mask of this process (from /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def missing(*names: str) -> list[str]:
    caps = effective_capabilities()
    return [name for name in names if not caps >> CAPABILITIES[name] & 1]


def require(*names: str, action: str | None = None) -> None:
    """Raise PrivilegeError naming the first missing capability and why it is needed."""
    absent = missing(*names)
    if absent:
        name = absent[0]
        reason = action or _WHY[name]
        raise PrivilegeError(
            f"{name} is missing: it is needed {reason} "
            f"(run as root, or in a --privileged container)"
        )


def require_root_for_namespaces() -> None:
    """The check at start-up: every mode enters or inspects namespaces."""
    require("CAP_SYS_ADMIN", "CAP_SYS_PTRACE")
