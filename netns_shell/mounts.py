"""The mount table of this process's mount namespace (/proc/self/mountinfo), parsed once
per call: discovery reads nsfs bind mounts from it, the swarm teardown the mounts under a
lab, and an empty netns file is explained by the mount its directory sits on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    #: the path inside its filesystem that is mounted ("/" for a whole filesystem; a bind
    #: mount's source directory; "net:[INODE]" for a namespace file)
    root: str
    point: str
    fstype: str


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mounts() -> list[Mount]:
    """Every mount, in mountinfo's order (parents before children); [] if unreadable."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                fields = line.split()
                try:
                    sep = fields.index("-", 6)
                except ValueError:
                    continue
                if len(fields) <= sep + 1:
                    continue
                found.append(Mount(_unescape(fields[3]), _unescape(fields[4]), fields[sep + 1]))
    except OSError:
        pass
    return found


def mount_of(path: str, table: list[Mount] | None = None) -> Mount | None:
    """The mount `path` lies on (the last, longest mount point above its real path), in
    `table` (read now when not given)."""
    real = os.path.realpath(path)
    best: Mount | None = None
    best_length = -1
    for mount in mounts() if table is None else table:
        point = mount.point.rstrip("/")
        if (real == point or real.startswith(point + "/")) and len(point) >= best_length:
            best, best_length = mount, len(point)
    return best
