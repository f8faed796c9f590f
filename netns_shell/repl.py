"""The interactive shell (prompt_toolkit): prompt, completion, history.

The prompt names the current namespace.  Ctrl-C clears the line or cancels
the running command and never leaves; Ctrl-D or `exit` leaves.  When stdin
is not a terminal, lines are read and run one by one (for scripts).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from . import __version__
from .errors import ExitShell
from .sanitize import for_terminal
from .session import state_dir

if TYPE_CHECKING:
    from .session import Session

__all__ = ["run_repl"]


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
    return status


def _history(path: str):
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
        return FileHistory(path)
    except OSError:
        return InMemoryHistory()


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
        history=_history(os.path.join(state_dir(), "history")),
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
