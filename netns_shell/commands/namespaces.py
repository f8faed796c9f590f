"""Finding and moving between namespaces: ns, use, host, exec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..discovery import friendly_names
from ..render import Column, Result
from .registry import Param, Registry

if TYPE_CHECKING:
    from ..discovery import NamespaceEntry
    from .context import Context

__all__ = ["NS_COLUMNS", "register"]

Record = dict[str, Any]


def _holders(r: Record) -> str:
    procs = r.get("processes") or []
    if not procs:
        return ""
    first = procs[0]
    text = f"{first['pid']}({first['comm']})" if first.get("comm") else str(first["pid"])
    more = len(r.get("pids", procs)) - 1
    return f"{text} +{more}" if more > 0 else text


def _names(r: Record) -> str:
    parts = friendly_names(r)
    if r.get("error"):
        parts.append(r["error"])
    return " ".join(parts)


NS_COLUMNS = (
    Column("", lambda r: "*" if r.get("current") else "", reads=("current",)),
    Column.of("NAME", "name"),
    Column.of("KIND", "kind"),
    Column.of("INODE", "inode", safe=True, priority=2),
    Column.of("LINKS", "links", safe=True, priority=2),
    Column.of("NSID", "netnsid", safe=True, priority=3),
    Column("PROCESSES", _holders, priority=2),
    Column("PATH", lambda r: r["paths"][0] if r.get("paths") else None, priority=4),
    Column("NAMES", _names, priority=1),
)


def ns_records(session: Context, entries: list[NamespaceEntry]) -> list[Record]:
    current = session.namespace
    records = []
    for entry in entries:
        record = entry.record()
        record["current"] = (entry.dev, entry.inode) == current.key
        records.append(record)
    return records


def ns(session: Context, args: dict[str, Any]) -> Result:
    entries = session.catalogue.namespaces(details=True)
    result = Result.table(ns_records(session, entries), NS_COLUMNS)
    unnamed = (e.labels.get("pod_names_unavailable") for e in entries)
    why = next((reason for reason in unnamed if reason), None)
    if why:  # in JSON, each such record carries pod_names_unavailable itself
        result.message = f"pods shown by UID only, their names are not available: {why}"
    return result


def use(session: Context, args: dict[str, Any]) -> Result:
    target = session.catalogue.resolve(args["target"])
    session.switch_to(target)
    return Result.note(f"now in {session.label()}")


def host(session: Context, args: dict[str, Any]) -> Result:
    session.go_home()
    return Result.note(f"back in {session.label()}")


def exec_(session: Context, args: dict[str, Any]) -> Result:
    from ..process import ExtraNamespaces, run_program

    everything = bool(args["all"])
    extra = ExtraNamespaces(
        mount=everything or bool(args["mount"]),
        uts=everything or bool(args["uts"]),
        ipc=everything or bool(args["ipc"]),
        pid=everything or bool(args["pid"]),
    )
    out = session.console.stdout
    out.flush()
    try:  # under `| PROGRAM` or `> FILE` the console's stdout is that pipe or file
        fd: int | None = out.fileno()
    except (AttributeError, ValueError, OSError):
        fd = None
    status = run_program(session.namespace, args["command"], extra, stdout=fd)
    return Result(status=status)


def register(registry: Registry) -> None:
    registry.command(
        "ns",
        "every network namespace on the host: names, kind, links, processes",
        aliases=("namespaces",),
        details="Scans /var/run/docker/netns, /var/run/netns (and /run aliases, and the "
        "directories in NETNS_SHELL_PATH), nsfs bind mounts anywhere, and /proc/*/ns/net "
        "for namespaces held only by processes. One row per namespace; '*' marks the "
        "current one. A namespace file that is an empty regular file is listed as broken: "
        "in a container, a bind mount that did not propagate (mount the directory with "
        "':rslave'); on the host, a leftover of a namespace that went away.",
        examples=("ns", "ns --json"),
    )(ns)
    registry.command(
        "use",
        "enter a namespace: by name, prefix, path, pid:N, inode, container, network or pod",
        Param(
            "target",
            metavar="TARGET",
            complete="namespace",
            required=True,
            help="name as `ns` lists it, a unique prefix or last part (c1), a path, pid:N, "
            "an inode, or a Docker container (name or ID), a Docker network, a Kubernetes pod "
            "(`pod` or `namespace/pod`)",
        ),
        aliases=("cd", "enter"),
        details="A name several directories hold (several engines on one host) is "
        "listed by `ns` as TAG:NAME, TAG being what tells the directories apart "
        "(n1:1-cj79k8ryxj); `use` takes that form or the full path. A target that fits "
        "several namespaces is refused with every candidate named. "
        "Container, network and pod names work wherever a namespace name does: "
        "`use web` enters the container web's namespace (and keeps its process, so "
        "`exec -m/-a` join its other namespaces), `use ovtest` the overlay network's, "
        "`use shop/web` the pod's. The engine or runtime must be reachable (Docker socket, "
        "--cri).",
        examples=("use 1-9tp0f348do", "use 1-9tp", "use /var/run/netns/blue", "use pid:4242"),
        moves=True,
    )(use)
    registry.command(
        "host",
        "back to netns-shell's own namespace (the host's)",
        details="The namespace netns-shell itself runs in: the host's, unless it runs in a "
        "container with a network of its own; whatever --net, -t or use entered before.",
        examples=("host",),
        moves=True,
    )(host)
    registry.command(
        "exec",
        "run a host program inside the namespace (like nsenter --net)",
        Param("mount", ("-m", "--mount"), help="also join the target process's mount namespace"),
        Param("uts", ("-u", "--uts"), help="also join its UTS namespace"),
        Param("ipc", ("-i", "--ipc"), help="also join its IPC namespace"),
        Param("pid", ("-p", "--pid"), help="also join its PID namespace"),
        Param("all", ("-a", "--all"), help="join all of the above"),
        Param(
            "command",
            metavar="CMD",
            rest=True,
            required=True,
            complete="program",
            help="the program and its arguments",
        ),
        details="The program runs in a forked child that enters the namespace, so the shell "
        "itself never moves. -m/-u/-i/-p/-a need a process target (-t PID or "
        "`use pid:N`): `netns-shell -t 1 -c 'exec -a sh'` is the nsenter1 recipe.",
        examples=("exec ip -br addr", "exec ping -c1 10.0.9.3", "exec -a sh"),
        changes_state=True,
    )(exec_)
