"""The interactive shell (prompt_toolkit): prompt, completion, history.

The prompt names the current namespace.  Ctrl-C clears the line or cancels
the running command and never leaves; Ctrl-D or `exit` leaves.  When stdin
is not a terminal, lines are read and run one by one (for scripts).
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import TYPE_CHECKING

from . import __version__, shutdown
from .errors import ExitShell
from .files import PrivateDir, UnsafePathError
from .sanitize import for_terminal

if TYPE_CHECKING:
    from .session import Session

__all__ = ["run_repl"]

_HISTORY = "history"


def run_repl(session: Session) -> int:
    """Run the shell until exit; returns the exit status."""
    if not sys.stdin.isatty():
        return _run_lines(session)
    return _run_interactive(session)


def _run_lines(session: Session) -> int:
    status = 0
    for line in sys.stdin:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            status = session.execute(line) or status
        except ExitShell as exc:
            return exc.status
        if session.line_stopped:
            return status  # a script goes no further after a failed `use` or Ctrl-C
    return status


def _history(session: Session):
    """History in the private state directory (nothing written with --read-only)."""
    from prompt_toolkit.history import InMemoryHistory

    if session.read_only:
        return InMemoryHistory()
    try:
        directory = PrivateDir.open()
    except (OSError, UnsafePathError) as exc:
        session.console.warn(f"history is not saved: {exc}")
        return InMemoryHistory()
    return _private_history(directory)


def _private_history(directory: PrivateDir):
    """prompt_toolkit's FileHistory format, read and appended through `directory`."""
    from prompt_toolkit.history import FileHistory

    class PrivateHistory(FileHistory):
        def load_history_strings(self):
            try:
                data = directory.read(_HISTORY)
            except (OSError, UnsafePathError):
                return []
            strings, lines = [], []
            for line in data.decode("utf-8", "replace").splitlines(keepends=True):
                if line.startswith("+"):
                    lines.append(line[1:])
                elif lines:
                    strings.append("".join(lines)[:-1])
                    lines = []
            if lines:
                strings.append("".join(lines)[:-1])
            return reversed(strings)

        def store_string(self, string: str) -> None:
            text = f"\n# {datetime.datetime.now()}\n" + "".join(
                f"+{line}\n" for line in string.split("\n")
            )
            try:
                directory.append(_HISTORY, text.encode("utf-8", "replace"))
            except (OSError, UnsafePathError):
                pass  # history is a convenience: the shell goes on

    return PrivateHistory(os.path.join(directory.path, _HISTORY))


def _run_interactive(session: Session) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import DynamicCompleter
    from prompt_toolkit.formatted_text import FormattedText
    from prompt_toolkit.output import ColorDepth

    from .completion import StateRefresher, make_completer

    session.registry.load()  # plugins: report a broken one now, and complete them all
    refresher = StateRefresher(session)
    completer = make_completer(session.registry, refresher)
    session.on_switch.append(lambda s: refresher.refresh())
    plain = bool(os.environ.get("NO_COLOR"))  # https://no-color.org
    prompt = PromptSession(
        color_depth=ColorDepth.MONOCHROME if plain else None,
        history=_history(session),
        completer=DynamicCompleter(lambda: completer),
        complete_while_typing=False,
        enable_history_search=True,
    )

    def message() -> FormattedText:
        label = for_terminal(session.label())
        return FormattedText(
            [("", "netns-shell "), ("" if plain else "bold", f"[{label}]"), ("", "> ")]
        )

    refresher.refresh(wait=True)
    print(
        f"netns-shell {__version__}: in {for_terminal(session.label())}. "
        "Type 'help'; Tab completes; Ctrl-D leaves."
    )
    while True:
        try:
            line = prompt.prompt(message)
        except KeyboardInterrupt:
            if shutdown.requested():
                raise  # SIGTERM/SIGHUP at the prompt: leave now (128+N), the lab goes too
            continue  # Ctrl-C at the prompt clears the line
        except EOFError:
            return 0
        if not line.strip():
            continue
        try:
            session.execute(line)
        except ExitShell as exc:
            return exc.status
        refresher.refresh()
