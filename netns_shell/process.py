"""Run a host program inside namespaces, the way nsenter does.

The shell may be multithreaded, and mount/user namespaces cannot be entered
by a multithreaded process (architecture.md fact 2), so the work happens in a forked
child, which is single-threaded: it enters the namespaces and execs the
program.  Joining a PID namespace only affects children, so in that case
the child forks once more and waits for the grandchild, like nsenter.

On a terminal the program gets it as a shell gives it to a job: the
process that execs it makes its own process group and puts it in the
foreground (so Ctrl-C, Ctrl-Z and an interactive shell's job control act on
the program alone), and the shell takes the terminal back when it ends.
The group is made after joining a PID namespace, so a shell started there
sees a process group of its own namespace (dash otherwise fails with
"Cannot set tty process group" on `exit` and leaves the terminal to a
group that no longer exists, which stops netns-shell at its next read).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import sys
import termios
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import NamespaceError, NotFoundError
from .namespace import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUTS,
    NetNamespace,
    setns,
)

__all__ = ["ExtraNamespaces", "run_program"]

# nsenter's order: ipc, uts, net, pid, mnt (mount last: paths are opened before)
_ORDER = (("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("pid", CLONE_NEWPID), ("mnt", CLONE_NEWNS))


@dataclass(frozen=True)
class ExtraNamespaces:
    """Which of a process's other namespaces to join besides the network one."""

    mount: bool = False
    uts: bool = False
    ipc: bool = False
    pid: bool = False

    def wanted(self) -> list[tuple[str, int]]:
        chosen = {"mnt": self.mount, "uts": self.uts, "ipc": self.ipc, "pid": self.pid}
        return [(name, kind) for name, kind in _ORDER if chosen[name]]


def _open_extra(pid: int, extra: ExtraNamespaces) -> list[tuple[int, int]]:
    fds = []
    try:
        for name, kind in extra.wanted():
            try:
                fds.append((os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), kind))
            except (FileNotFoundError, ProcessLookupError):
                raise NamespaceError(f"PID {pid} has exited") from None
            except OSError as exc:
                raise NamespaceError(
                    f"PID {pid}: cannot open its {name} namespace: {exc.strerror}"
                ) from None
    except BaseException:
        for fd, _ in fds:
            os.close(fd)
        raise
    return fds


def run_program(
    ns: NetNamespace,
    argv: Sequence[str],
    extra: ExtraNamespaces = ExtraNamespaces(),
    *,
    stdout: int | None = None,
) -> int:
    """Run `argv` inside `ns` (and `extra` namespaces of ns.pid); return its exit status.

    `stdout`: the file descriptor the program writes to (None: the shell's own),
    e.g. the pipe of `exec ip -br a | grep UP`.

    The shell ignores SIGINT while the program runs, so Ctrl-C reaches the
    program only; a status above 128 means the program died of a signal.
    """
    if not argv:
        raise NotFoundError("exec: no program given")
    if extra.wanted() and ns.pid is None:
        raise NamespaceError(
            "exec -m/-u/-i/-p/-a need a process target (netns-shell -t PID or `use pid:N`)"
        )
    if shutil.which(argv[0]) is None and "/" not in argv[0] and not extra.mount:
        raise NotFoundError(f"exec: {argv[0]}: command not found")
    extra_fds = _open_extra(ns.pid, extra) if ns.pid is not None and extra.wanted() else []
    try:
        ns.check_process()  # the fds just opened are that process's, not a PID's new owner's
    except BaseException:
        for fd, _ in extra_fds:
            os.close(fd)
        raise
    sys.stdout.flush()
    sys.stderr.flush()
    # in a pipeline (`exec ... | less`) the terminal stays with the shell's group, where the
    # program at the other end of the pipe runs
    terminal = None if _is_pipe(stdout) else _foreground_terminal()
    modes = _terminal_modes(terminal)
    old_handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child, reported through its status
            _child(ns.fd, extra_fds, list(argv), stdout, terminal)
        try:
            return _wait(child, terminal)
        except KeyboardInterrupt:  # SIGTERM/SIGHUP to the shell: the program goes too
            os.kill(child, signal.SIGTERM)
            _wait(child)
            raise
        finally:
            _reclaim_terminal(terminal, modes)
    finally:
        signal.signal(signal.SIGINT, old_handler)
        for fd, _ in extra_fds:
            os.close(fd)


def _is_pipe(fd: int | None) -> bool:
    try:
        return fd is not None and stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _foreground_terminal() -> int | None:
    """stdin's descriptor when it is a terminal whose foreground group is ours, else None."""
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _terminal_modes(terminal: int | None) -> list | None:
    if terminal is None:
        return None
    try:
        return termios.tcgetattr(terminal)
    except termios.error:
        return None


def _give_terminal(terminal: int, group: int) -> None:
    """Make `group` the terminal's foreground; SIGTTOU is ignored meanwhile, as shells do
    (a background group that sets the foreground would otherwise be stopped by it)."""
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(terminal, group)
    finally:
        signal.signal(signal.SIGTTOU, old)


def _take_terminal(terminal: int | None) -> None:
    """In the process about to exec: a process group of its own, in the foreground."""
    if terminal is None:
        return
    os.setpgid(0, 0)
    _give_terminal(terminal, os.getpgrp())


def _reclaim_terminal(terminal: int | None, modes: list | None) -> None:
    """The shell's group in the foreground again, with the terminal modes it had."""
    if terminal is None:
        return
    try:
        _give_terminal(terminal, os.getpgrp())
        if modes is not None:
            termios.tcsetattr(terminal, termios.TCSADRAIN, modes)
    except (OSError, termios.error):
        pass  # the terminal went away (hangup): nothing to give back


def _child(
    net_fd: int,
    extra_fds: list[tuple[int, int]],
    argv: list[str],
    stdout: int | None,
    terminal: int | None,
) -> None:
    """In the forked child: enter the namespaces, take the terminal, exec; never returns."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if stdout is not None and stdout != 1:
            os.dup2(stdout, 1)
        joins_pid = False
        for fd, kind in extra_fds:
            if kind == CLONE_NEWNS:
                setns(net_fd, CLONE_NEWNET)  # before mount: its fd is open already
            setns(fd, kind)
            joins_pid = joins_pid or kind == CLONE_NEWPID
        setns(net_fd, CLONE_NEWNET)
        if joins_pid:
            grandchild = os.fork()
            if grandchild:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os._exit(_wait(grandchild, terminal))
        _take_terminal(terminal)
        os.execvp(argv[0], argv)
    except OSError as exc:
        reason = "command not found" if exc.errno == errno.ENOENT else exc.strerror
        os.write(2, f"netns-shell: exec: {argv[0]}: {reason}\n".encode(errors="replace"))
        os._exit(127 if exc.errno == errno.ENOENT else 126)
    except BaseException:
        os._exit(126)


def _wait(pid: int, terminal: int | None = None) -> int:
    """The exit status of `pid` (128+N when killed by signal N).

    netns-shell has no job control: a program stopped on the terminal
    (Ctrl-Z) is given the terminal back and continued, not left behind.
    """
    while True:
        try:
            _, status = os.waitpid(pid, os.WUNTRACED if terminal is not None else 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 1
        if os.WIFSTOPPED(status):
            _resume(pid, terminal)
            continue
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


def _resume(pid: int, terminal: int | None) -> None:
    try:
        group = os.getpgid(pid)
        if terminal is not None:
            _give_terminal(terminal, group)
        os.killpg(group, signal.SIGCONT)
    except OSError:
        pass
