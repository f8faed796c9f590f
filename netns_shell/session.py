"""A shell session: where it is, what it can run, and the one error boundary.

The session owns the namespace handles (the one the shell started in and
the current one), the command registry and the console.  `execute` runs a
line of `;`-separated commands: split, look up, check the arguments against
the spec, call the handler, render the result.  Expected failures are typed
exceptions and become one line; anything else is logged with its traceback
to the debug log and reported in one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import shutdown
from .catalogue import Catalogue
from .commands.line import CommandLine, parse_line, split_commands
from .commands.registry import Registry, parse_arguments
from .debuglog import DebugLog
from .errors import ExitShell, NetnsShellError, UsageError
from .namespace import NetNamespace
from .render import Console, Renderer, silence_stdout

if TYPE_CHECKING:
    from .discovery import NamespaceEntry

__all__ = ["Session", "split_commands"]


@dataclass
class Session:
    """Everything one running shell knows; handlers receive it."""

    registry: Registry
    console: Console = field(default_factory=Console)
    read_only: bool = False
    home: NetNamespace = field(default_factory=NetNamespace.current)
    current: NetNamespace | None = None
    #: called with the session after the current namespace changes
    on_switch: list[Callable[[Session], None]] = field(default_factory=list)
    #: the namespaces on the host, named and resolved (built from `enrichers` and `docker`
    #: when not given)
    catalogue: Catalogue | None = None
    #: enrichers add labels (container, network names) to discovered namespaces
    enrichers: list[Callable[[list[NamespaceEntry]], None]] = field(default_factory=list)
    #: the Docker engine's names, when an engine is asked (see docker.DockerEnricher)
    docker: Any = None
    _orphans: set[tuple[int, int]] = field(default_factory=set)
    #: where unexpected failures are recorded (not written in --read-only mode)
    debug_log: DebugLog | None = None

    def __post_init__(self) -> None:
        if self.current is None:
            self.current = self.home
        if self.debug_log is None:
            self.debug_log = DebugLog(write=not self.read_only)
        if self.catalogue is None:
            self.catalogue = Catalogue(
                self.enrichers, docker=self.docker, on_error=self.debug_log.record
            )
        self.renderer = Renderer(self.console)
        #: the last line stopped early (see _stops_the_line); -c runs nothing after it
        self.line_stopped = False
        self.last_status = 0

    # --------------------------------------------------------- namespaces
    @property
    def namespace(self) -> NetNamespace:
        """The namespace commands act on."""
        assert self.current is not None
        return self.current

    def label(self, ns: NetNamespace | None = None) -> str:
        """How to name a namespace (default: the current one) to the user (see Catalogue.label);
        looked up on first use only, so -c scripts do not pay for it."""
        return self.catalogue.label(ns or self.namespace)

    # Lookups that moved to the catalogue; kept so handlers written against them still work.
    def namespaces(self, *, details: bool = False, fresh: bool = False) -> list[NamespaceEntry]:
        return self.catalogue.namespaces(details=details, fresh=fresh)

    def discover(self, *, details: bool = False) -> list[NamespaceEntry]:
        return self.catalogue.discover(details=details)

    def entry_for(self, ns: NetNamespace) -> NamespaceEntry | None:
        return self.catalogue.entry_for(ns)

    def resolve(self, target: str) -> NetNamespace:
        return self.catalogue.resolve(target)

    def docker_endpoints(self, ns: NetNamespace) -> dict[str, dict[str, Any]]:
        return self.catalogue.docker_endpoints(ns)

    def switch_to(self, ns: NetNamespace) -> None:
        """Make `ns` the current namespace (the old handle is closed)."""
        previous = self.current
        self.current = ns
        if previous is not None and previous is not self.home and previous is not ns:
            previous.close()
        for callback in self.on_switch:
            callback(self)

    def _check_still_named(self) -> None:
        """Say once if the current namespace's file or process went away.

        The open handle keeps the namespace alive, so commands go on working
        in it; the user should know that nothing else names it any more.
        """
        ns = self.current
        if ns is None or ns is self.home or ns.key in self._orphans:
            return
        try:
            st = os.stat(ns.path)
            still = (st.st_dev, st.st_ino) == ns.key
        except OSError:
            still = False
        if not still:
            self._orphans.add(ns.key)
            what = (
                f"PID {ns.pid} has exited"
                if ns.pid is not None
                else f"the namespace file {ns.path} is gone (unmounted, or its container stopped)"
            )
            self.console.warn(f"{what}; still inside through the open handle ('host' goes back)")

    def go_home(self) -> None:
        self.switch_to(self.home)

    # ---------------------------------------------------------- execution
    def execute(self, line: str) -> int:
        """Run a line of commands; the status is that of the last failing one (or 0)."""
        try:
            commands = parse_line(line)
        except UsageError as exc:
            self.console.error(str(exc))
            return exc.exit_status
        self.line_stopped = False
        with _counting_interrupts():
            return self._run_line(commands)

    def _run_line(self, commands: list[CommandLine]) -> int:
        status = 0
        for i, command_line in enumerate(commands):
            words = list(command_line.words)
            seen = shutdown.interrupts()
            if command_line.plain:
                result_status = self.run_command(words)
            else:
                from .pipeline import run_piped

                result_status = run_piped(self, command_line)
            interrupted = shutdown.interrupts() != seen  # also a watch that Ctrl-C ended
            if result_status:
                status = result_status
            signum = shutdown.requested()
            if signum:
                # a command that stopped cleanly on the signal keeps its status
                raise ExitShell(128 + signum if result_status == 130 else result_status)
            if interrupted or (result_status and self._stops_the_line(words)):
                self.line_stopped = True
                rest = len(commands) - i - 1
                if rest:
                    self.console.warn(f"the rest of the line was not run ({rest} commands)")
                break
        self.last_status = status
        return status

    def _stops_the_line(self, words: list[str]) -> bool:
        """After a failure, whether the commands that follow must not run.

        They must not after a failed `use`/`host` or a command that was not even
        recognised (a mistyped `use`?): they would run in another namespace than
        the one the line meant, e.g. `exec` on the host.  (Ctrl-C stops a line too.)
        """
        command = self.registry.get(words[0])
        return command is None or command.moves

    def run_command(self, words: list[str]) -> int:
        """Run one command through the error boundary; returns its exit status."""
        try:
            command = self.registry.lookup(words[0], words[1:])
            self._check_still_named()
            if self.read_only and command.changes_state:
                raise UsageError(f"{command.name}: disabled in --read-only mode")
            arguments, as_json = _json_switch(command, words[1:])
            args = parse_arguments(command, arguments)
            if self.read_only:
                for given, effect in command.state_changes(args):
                    raise UsageError(
                        f"{command.name} {given}: disabled in --read-only mode (it {effect})"
                    )
            try:
                with _json_output(self.console, as_json):
                    result = command.handler(self, args)
                    self.renderer.render(result)
            except NetnsShellError as exc:
                _name_the_command(exc, command.name)
                raise
            return result.status
        except ExitShell:
            raise
        except NetnsShellError as exc:
            if exc.exit_status:
                self.console.error(str(exc))
            else:  # a warning: the command did its work
                self.console.warn(str(exc))
            return exc.exit_status
        except KeyboardInterrupt:
            self.console.stderr.write("^C\n")
            return 130
        except BrokenPipeError:
            if _is_standard_output(self.console.stdout):  # else a `|` reader left: nothing to do
                silence_stdout()
            return 0
        except OSError as exc:
            self.console.error(f"{words[0]}: {exc.strerror or exc}")
            self.debug_log.record(f"OSError in {words!r}", exc)
            return 1
        except Exception as exc:  # the last line of defence: never a traceback on screen
            where = self.debug_log.record(repr(" ".join(words)), exc)
            self.console.error(
                f"internal error in '{words[0]}': {type(exc).__name__}: {exc} ({where})"
            )
            return 1

    @contextlib.contextmanager
    def writing_to(self, stream: Any) -> Iterator[None]:
        """Commands write their output to `stream` (a pipe or a file: never paged) meanwhile."""
        console, renderer = self.console, self.renderer
        self.console = dataclasses.replace(console, stdout=stream, pager=False)
        self.renderer = Renderer(self.console)
        try:
            yield
        finally:
            self.console, self.renderer = console, renderer

    def close(self) -> None:
        if self.current is not None and self.current is not self.home:
            self.current.close()
        self.home.close()


def _json_switch(command, arguments: list[str]) -> tuple[list[str], bool]:
    """`CMD ... --json` in the REPL: this command's output as JSON, like the CLI's --json.

    Not taken from the words of a program that `exec` runs (they are its own), nor from a
    command that declares a --json of its own.
    """
    if "--json" not in arguments or "--json" in command.option_words():
        return arguments, False
    if any(p.rest and p.complete in ("program", "command") for p in command.params):
        return arguments, False
    return [word for word in arguments if word != "--json"], True


@contextlib.contextmanager
def _json_output(console, as_json: bool) -> Iterator[None]:
    if not as_json or console.json:
        yield
        return
    console.json = True
    try:
        yield
    finally:
        console.json = False


@contextlib.contextmanager
def _counting_interrupts() -> Iterator[None]:
    """While a line runs, Ctrl-C is counted (shutdown.interrupts) before it interrupts.

    Commands such as watch and capture catch Ctrl-C to end themselves cleanly;
    the count tells the line that the user wanted everything to stop.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        shutdown.interrupt()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _name_the_command(exc: NetnsShellError, name: str) -> None:
    """Prefix an error's one line with the command it came from (once)."""
    message = str(exc)
    if not message.startswith(f"{name}:"):
        exc.args = (f"{name}: {message}",)


def _is_standard_output(stream: Any) -> bool:
    try:
        return stream.fileno() == 1
    except (AttributeError, ValueError, OSError):
        return False
