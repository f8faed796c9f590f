"""The command line: netns-shell [TARGET] [--net=FILE | -t PID] [-c CMDS] [--json] ...

Exit status: 0 success, 1 a runtime failure, 2 a usage error, 130 interrupted.
Only what the chosen mode needs is imported (no prompt_toolkit for -c).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from . import __version__, shutdown
from .errors import ExitShell, NetnsShellError, UsageError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see netns-shell --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="netns-shell",
        description="A troubleshooting shell for Linux network namespaces: find them, enter one, "
        "and inspect links, routes, neighbours, the bridge FDB and the wire.",
        epilog="Examples: netns-shell --list; netns-shell --net=/var/run/docker/netns/1-9tp0f348do "
        "-c 'fdb br br0; neigh'; netns-shell 1-9tp --json -c links; netns-shell --demo. "
        "Exit status: 0 success; 1 a command failed; 2 a usage error; 130 interrupted (Ctrl-C); "
        "128+N ended by signal N (143: SIGTERM). NO_COLOR turns off the prompt's styling. "
        "Bash completion: source <(netns-shell --completion bash).",
    )
    parser.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="a namespace name as `ns` lists it, a unique prefix, a path or pid:N",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-n", "--net", metavar="FILE", help="enter the network namespace FILE")
    where.add_argument(
        "-t",
        "--target",
        dest="pid",
        metavar="PID",
        type=_pid,
        help="enter the network namespace of process PID",
    )
    parser.add_argument(
        "-c",
        "--command",
        dest="commands",
        metavar="CMDS",
        action="append",
        help="run CMDS (separated by ';') and exit; may be repeated",
    )
    parser.add_argument(
        "--json", action="store_true", help="print each command's records as one JSON array"
    )
    parser.add_argument("--list", action="store_true", help="list every namespace (same as -c ns)")
    parser.add_argument(
        "--demo",
        nargs="?",
        const="lab",
        choices=("lab", "swarm"),
        help="build a throwaway overlay-shaped lab (or, with 'swarm', a real 3-node Docker "
        "swarm when dockerd is installed), open the shell in it, remove it on exit",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="disable commands that change state or run programs (exec)",
    )
    parser.add_argument("--no-pager", action="store_true", help="never page long output")
    parser.add_argument(
        "--cri",
        metavar="ENDPOINT",
        help="ask this Kubernetes runtime (CRI) socket for pod names (unix:///PATH or PATH; "
        "default CONTAINER_RUNTIME_ENDPOINT, else containerd's or CRI-O's socket)",
    )
    parser.add_argument(
        "--plugin-dir",
        action="append",
        metavar="DIR",
        default=[],
        help="also load plugins (*.py) from DIR; may be repeated (and NETNS_SHELL_PLUGIN_PATH)",
    )
    parser.add_argument("--no-plugins", action="store_true", help="load no plugins at all")
    parser.add_argument(
        "--completion", choices=("bash",), help="print a completion script for SHELL and exit"
    )
    parser.add_argument(
        "--complete",
        choices=("targets", "commands", "options", "pids", "shells"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--version", action="version", version=f"netns-shell {__version__}")
    return parser


_BASH_COMPLETION = """\
# bash completion for netns-shell: source <(netns-shell --completion bash)
# Candidate words are data: read NUL-separated, matched with [[ ]] and quoted with
# printf %q; never given to `compgen -W`, which expands $(...) inside the words.
_netns_shell_words() {  # $1: what netns-shell --complete lists; $2: the word typed so far
    local typed="$2" word quoted
    case "$typed" in  # the typed word without its opening quote or backslashes
        \\'*) typed="${typed#\\'}" ;;
        \\"*) typed="${typed#\\"}" ;;
        *) typed="${typed//\\\\/}" ;;
    esac
    COMPREPLY=()
    while IFS= read -r -d '' word; do
        if [[ "$word" == "$typed"* ]]; then
            printf -v quoted '%q' "$word"
            COMPREPLY+=("$quoted")
        fi
    done < <(netns-shell --complete "$1" 2>/dev/null)
}
_netns_shell() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    case "$prev" in
        -n|--net) compopt -o filenames; COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --plugin-dir) compopt -o filenames; COMPREPLY=($(compgen -d -- "$cur")); return ;;
        -t|--target) _netns_shell_words pids "$cur"; return ;;
        --completion) _netns_shell_words shells "$cur"; return ;;
        -c|--command) _netns_shell_words commands "$cur"; return ;;
    esac
    if [[ "$cur" == -* ]]; then
        _netns_shell_words options "$cur"
    else
        _netns_shell_words targets "$cur"
    fi
}
complete -F _netns_shell netns-shell
"""


def completion_script() -> str:
    """The bash completion script (its words come from `netns-shell --complete KIND`)."""
    return _BASH_COMPLETION


def _option_words(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        flag
        for action in parser._actions
        for flag in action.option_strings
        if action.help != argparse.SUPPRESS
    )


def _complete(what: str, parser: argparse.ArgumentParser) -> int:
    """Words for the completion script, each ended by a NUL byte (names may hold anything)."""
    if what == "commands":
        from .commands import build_registry

        words = build_registry().names()
    elif what == "options":
        words = _option_words(parser)
    elif what == "shells":
        words = ["bash"]
    elif what == "pids":
        words = sorted((e.name for e in os.scandir("/proc") if e.name.isdigit()), key=int)
    else:
        from .discovery import discover

        entries = discover(details=False)
        _LazyDocker(lambda message: None)(entries)
        _LazyCri(lambda message: None)(entries)
        found = {e.name for e in entries if e.usable}
        found |= {alias for e in entries for alias in e.labels.get("aliases", ())}
        words = sorted(found)
    out = sys.stdout.buffer
    for word in words:
        if "\0" not in word:
            out.write(os.fsencode(word) + b"\0")
    out.flush()
    return 0


def _plugin_loader(warn, directories: list[str]):
    """The registry's loader: plugins are imported only when first needed."""

    def load(registry) -> None:
        from .extensions import PluginLoader

        PluginLoader.from_environment(warn, directories)(registry)

    return load


class _LazyDocker:
    """The Docker enricher, created (and its module imported) at the first discovery."""

    def __init__(self, warn):
        self._warn = warn
        self._enricher = None

    def _get(self):
        if self._enricher is None:
            from .docker import docker_enricher

            self._enricher = docker_enricher(self._warn)
        return self._enricher

    def names(self):
        return self._get().names()

    def __call__(self, entries) -> None:
        self._get()(entries)


class _LazyCri:
    """The Kubernetes (CRI) enricher, created (and its module imported) at the first discovery."""

    def __init__(self, warn, endpoint: str | None = None):
        self._warn = warn
        self._endpoint = endpoint
        self._enricher = None

    def __call__(self, entries) -> None:
        if self._enricher is None:
            from .cri import cri_enricher

            self._enricher = cri_enricher(self._warn, self._endpoint)
        self._enricher(entries)


def _pid(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"PID must be a number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"PID must be positive, got '{text}'")
    return value


def _closed_standard_streams() -> int | None:
    """Started with a standard stream closed (`<&-`, `>&-`, `2>&-`): Python leaves it None.

    A closed stdin reads as empty and a closed stderr discards; a closed stdout
    is an error, as for other tools (the output would go nowhere).
    """
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    if sys.stdin is None:
        sys.stdin = open(os.devnull)
    if sys.stdout is None:
        sys.stderr.write("netns-shell: standard output is closed\n")
        return 2
    return None


def main(argv: list[str] | None = None) -> int:
    """Run netns-shell; returns the exit status (the console script exits with it)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    closed = _closed_standard_streams()
    if closed is not None:
        return closed
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except ExitShell as exc:
        return exc.status
    except NetnsShellError as exc:
        from .sanitize import for_terminal

        sys.stderr.write(f"netns-shell: {for_terminal(str(exc))}\n")
        return exc.exit_status
    except KeyboardInterrupt:
        signum = shutdown.requested()
        sys.stderr.write(f"netns-shell: {'terminated' if signum else 'interrupted'}\n")
        return 128 + signum if signum else 130
    except BrokenPipeError:
        from .render import silence_stdout

        silence_stdout()
        return 0


def _terminate(signum: int, frame: object) -> None:
    shutdown.request(signum)  # the session ends after the running command
    raise KeyboardInterrupt  # unwinds through every cleanup path (demo lab, captures)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.completion:
        sys.stdout.write(completion_script())
        return 0
    if options.complete:
        return _complete(options.complete, parser)
    if options.demo and (options.target or options.net or options.pid):
        raise UsageError("--demo builds its own namespaces; give no TARGET, --net or -t")
    if options.demo and options.read_only:
        raise UsageError("--demo builds namespaces on the host: it cannot be --read-only")
    from .privileges import require_root_for_namespaces

    require_root_for_namespaces()
    if options.demo == "swarm":
        from .swarm import swarm_demo_session

        with swarm_demo_session() as swarm:
            return _run(options, initial_target=swarm.overlay_ns(swarm.manager))
    if options.demo:
        from .lab import demo_session

        with demo_session() as lab:
            return _run(options, initial_target=lab.entry_path)
    return _run(options)


def _run(options: argparse.Namespace, initial_target: str | None = None) -> int:
    from .commands import build_registry
    from .namespace import NetNamespace
    from .render import Console
    from .session import Session

    console = Console(json=options.json, pager=not options.no_pager, restricted=options.read_only)
    registry = build_registry()
    if not options.no_plugins:
        registry.loader = _plugin_loader(console.warn, options.plugin_dir)
    session = Session(
        registry=registry,
        console=console,
        read_only=options.read_only,
        docker=_LazyDocker(console.warn),
        enrichers=[_LazyCri(console.warn, options.cri)],
    )
    try:
        if options.net:
            session.switch_to(NetNamespace.open_path(options.net))
        elif options.pid:
            session.switch_to(NetNamespace.open_pid(options.pid))
        elif options.target:
            session.switch_to(session.catalogue.resolve(options.target))
        elif initial_target:
            session.switch_to(NetNamespace.open_path(initial_target))
        commands = list(options.commands or [])
        if options.list:
            commands.insert(0, "ns")
        if commands:
            status = 0
            for line in commands:
                status = session.execute(line) or status
                if session.line_stopped:
                    break  # a failed `use` or Ctrl-C: nothing after it runs elsewhere
            return status
        from .repl import run_repl

        return run_repl(session)
    finally:
        session.close()
