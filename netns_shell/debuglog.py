"""The debug log: unexpected failures with their tracebacks, in the private state directory.

The error boundary shows one line and records the traceback here, so a bug
report can carry it.  The file lives in the state directory (0700, files
0600, no symlink followed: see `files.PrivateDir`); with --read-only nothing
is written and the traceback is kept in memory for the session only.
"""

from __future__ import annotations

import os
import time
import traceback

from .files import PrivateDir, UnsafePathError

__all__ = ["DebugLog"]

_NAME = "debug.log"


class DebugLog:
    """Where tracebacks of unexpected failures go."""

    def __init__(self, *, write: bool = True, directory: str | None = None):
        self.write = write
        self.directory = directory
        #: the last entries, when the log is not written (read-only) or cannot be
        self.kept: list[str] = []

    def record(self, title: str, exc: BaseException | None = None) -> str:
        """Log `title` and the exception's traceback; returns where it went (for the one line)."""
        text = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {title}\n"
        if exc is not None:
            text += "".join(traceback.format_exception(exc))
        if not self.write:
            self._keep(text)
            return "the debug log is not written in --read-only mode"
        try:
            directory = PrivateDir.open(self.directory)
        except (OSError, UnsafePathError) as err:
            self._keep(text)
            return f"debug log not writable: {err}"
        try:
            directory.append(_NAME, text.encode("utf-8", "backslashreplace"))
        except (OSError, UnsafePathError) as err:
            self._keep(text)
            return f"debug log not writable: {err}"
        finally:
            directory.close()
        return f"details in {os.path.join(directory.path, _NAME)}"

    def _keep(self, text: str) -> None:
        self.kept = [*self.kept[-9:], text]
