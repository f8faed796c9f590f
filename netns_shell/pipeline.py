"""A command's output through host programs (`fdb | grep 02:42`) or into a file (`> FILE`).

The command runs as it always does, through the session's error boundary;
only its console's standard output changes: it is the pipe to the first
program, or the file.  So what goes through is exactly what the command
would print (plain text or JSON as chosen, sanitized by the renderer),
never paged.

The programs run on the host: they are spawned from a thread in the
namespace the shell started in (`session.home`; see NetNamespace.run), with
their argv taken from the line's words (no shell ever sees them).  Their
standard error and, unless redirected, standard output are the shell's.
A file is opened with `files.open_output` (never through a symlink, created
0600, no devices).

Exit status: the rightmost non-zero of the command and the programs (bash's
`pipefail`); a command or program whose reader went away early (`| head -1`)
counts as a success.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from . import shutdown
from .commands.line import CommandLine
from .errors import NetnsShellError, UsageError

if TYPE_CHECKING:
    from .namespace import NetNamespace
    from .session import Session

__all__ = ["run_piped"]

_STOP_TIMEOUT = 2.0
_SIGPIPE_STATUS = 128 + signal.SIGPIPE


def run_piped(session: Session, line: CommandLine) -> int:
    """Run `line` (a command with a pipe or a redirection); returns the line's exit status."""
    console = session.console
    if session.read_only:
        console.error("pipes and redirections ('|', '>') are disabled in --read-only mode")
        return UsageError.exit_status
    out_fd: int | None = None
    programs: list[subprocess.Popen] = []
    stream: IO[str] | None = None
    seen = shutdown.interrupts()
    try:
        if line.redirect is not None:
            out_fd = _open_redirect(line.redirect.path, append=line.redirect.append)
        if line.programs:
            console.stdout.flush()
            final = out_fd if out_fd is not None else _fd_of(console.stdout)
            programs = _spawn(session.home, line.programs, final)
            assert programs[0].stdin is not None
            stream = io.TextIOWrapper(programs[0].stdin, encoding="utf-8", errors="replace")
        else:
            assert out_fd is not None
            stream = open(out_fd, "w", encoding="utf-8", errors="replace", closefd=False)
        with session.writing_to(stream):
            status = session.run_command(list(line.words))
        _close(stream)
        stream = None
        if shutdown.interrupts() != seen:  # Ctrl-C ended the command: it ends the programs too
            _signal_running(programs, signal.SIGINT)
        statuses = _wait(programs)
        # a stage killed by SIGPIPE had its reader leave early (`| sort | head -1`): no error
        statuses[:-1] = [0 if s == _SIGPIPE_STATUS else s for s in statuses[:-1]]
        return next((s for s in reversed([status, *statuses]) if s), 0)
    except _SpawnError as exc:
        console.error(str(exc))
        return exc.status
    except NetnsShellError as exc:
        console.error(str(exc))
        return exc.exit_status
    except KeyboardInterrupt:
        console.stderr.write("^C\n")
        return 130
    except Exception as exc:  # the last line of defence, as in Session.run_command
        where = session.debug_log.record(f"pipe or redirection of {list(line.words)!r}", exc)
        console.error(f"internal error in '{line.words[0]}': {type(exc).__name__}: {exc} ({where})")
        return 1
    finally:
        if stream is not None:
            _close(stream)
        _stop(programs)
        if out_fd is not None:
            os.close(out_fd)


def _open_redirect(path: str, *, append: bool) -> int:
    from .files import open_output

    what = ">>" if append else ">"
    if "\0" in path or not path:
        raise UsageError(f"{what}: not a file name: {path!r}")
    return open_output(path, what=what, append=append)


def _fd_of(stream: IO[str]) -> int | None:
    """The file descriptor behind `stream`, or None (the programs then inherit the shell's)."""
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None


class _SpawnError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _spawn(
    home: NetNamespace, programs: Sequence[Sequence[str]], stdout: int | None
) -> list[subprocess.Popen]:
    """Start the programs, each reading the one before, in the namespace `home`.

    The first one's stdin is a pipe left open for the command's output; the
    last one writes to `stdout` (None: the shell's own).
    """

    def start() -> list[subprocess.Popen]:
        started: list[subprocess.Popen] = []
        try:
            for i, argv in enumerate(programs):
                last = i == len(programs) - 1
                try:
                    proc = subprocess.Popen(
                        list(argv),
                        stdin=subprocess.PIPE if i == 0 else started[-1].stdout,
                        stdout=stdout if last else subprocess.PIPE,
                    )
                except ValueError:  # a NUL byte in a word
                    raise _SpawnError(f"{argv[0]!r}: not a program name or argument", 126) from None
                except OSError as exc:
                    reason = "command not found" if exc.errno == errno.ENOENT else exc.strerror
                    status = 127 if exc.errno == errno.ENOENT else 126
                    raise _SpawnError(f"{argv[0]}: {reason}", status) from None
                if i:
                    started[-1].stdout.close()  # only the next program reads it now
                started.append(proc)
        except BaseException:
            _stop(started)
            raise
        return started

    return home.run(start)


def _close(stream: IO[str]) -> None:
    """Close the command's end of the pipe; a reader that left early is no error."""
    with contextlib.suppress(OSError, ValueError):
        stream.close()


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _signal_running(programs: list[subprocess.Popen], signum: int) -> None:
    for proc in programs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signum)


def _wait(programs: list[subprocess.Popen]) -> list[int]:
    """The programs' exit statuses; Ctrl-C meanwhile is passed on to them (SIGTERM when
    the shell itself was asked to end)."""
    statuses: list[int] = []
    interrupted = False
    for proc in programs:
        while True:
            try:
                statuses.append(_status(proc.wait()))
                break
            except KeyboardInterrupt:
                interrupted = True
                _signal_running(programs, signal.SIGTERM if shutdown.requested() else signal.SIGINT)
    if interrupted and not any(statuses):
        statuses.append(130)
    return statuses


def _stop(programs: list[subprocess.Popen]) -> None:
    """End programs still running (the line failed or was cut short) and reap them."""
    for proc in programs:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        if proc.poll() is not None:
            continue
        with contextlib.suppress(OSError):
            proc.terminate()
        try:
            proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
