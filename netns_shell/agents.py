"""One-shot netns-shell agents on the nodes of a cluster, whose answers come back as JSON.

A node's kernel tables can be read only on that node.  Two ways to run
`netns-shell -c 'check --collect'` there (collect.py says what it prints):

* `container`: one container per node, through each node's Docker endpoint
  (`--nodes NAME=unix:///...|tcp://...|ssh://...|NAME=CONTEXT`): `docker run --rm`
  with host PIDs and network, the capabilities setns and netlink need, the engine's
  namespace directory mounted with rslave propagation and the engine's socket;
* `service`: one global swarm service (`--mode global --restart-condition none`) on
  the manager; each task's output comes back through the service logs API, per task.

Both are bounded by one deadline: a node that does not answer in time is reported as
unreachable and the others still count.  What was started is removed afterwards,
also on Ctrl-C or an error: the containers (`docker rm -f`) and the service
(`docker service rm`).  The docker CLI is run with argument vectors (no shell) in
sessions of their own, so Ctrl-C reaches this process, which cleans up.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .collect import NodeMaterial, material_from_records, parse_lines
from .docker import DockerClient
from .engine_view import DEFAULT_NETNS_DIR, NodeEndpoint, sandbox_dir
from .errors import NetnsShellError
from .workers import run_each, start, wait_all

__all__ = ["AgentOptions", "agent_command", "run_containers", "run_service"]

CAPABILITIES = ("SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN", "NET_RAW")
NETNS_TARGET = "/var/run/docker/netns"
SOCKET_TARGET = "/var/run/docker.sock"
DEFAULT_IMAGE = "netns-shell"
LABEL = "netns-shell.check"
_DONE = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}
_CLEANUP_SECONDS = 5.0
#: set once Ctrl-C reached the caller: no new docker call starts (a worker thread never
#: sees KeyboardInterrupt and would go on asking)
_stopping = threading.Event()
#: how long a container's removal may take (an engine that froze after it answered the
#: ping answers never; a started container removes itself, --rm, when it ends)
_REMOVE_SECONDS = 5.0


class AgentError(NetnsShellError):
    """The agents could not be started at all (no manager, a refused service)."""

    exit_status = 2


@dataclass
class AgentOptions:
    image: str = DEFAULT_IMAGE
    #: on the node: the engine's namespace directory and socket; None: found or standard.
    #: For a service they may hold swarm templates ({{.Node.Hostname}}).
    netns_dir: str | None = None
    socket: str | None = None
    timeout: float = 20.0
    target: str | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(4))


def agent_command(target: str | None) -> list[str]:
    """The agent's argument vector after the image's entrypoint (netns-shell)."""
    line = "check --collect" + (f" {shlex.quote(target)}" if target else "")
    return ["-c", line]


def _cli(spec: NodeEndpoint) -> list[str]:
    return ["docker", *spec.cli_args()]


def _privileges() -> list[str]:
    argv = ["--pid=host", "--network=host"]
    for cap in CAPABILITIES:
        argv += ["--cap-add", cap]
    return argv


# ------------------------------------------------------------------ container per node
def run_containers(specs: list[NodeEndpoint], options: AgentOptions) -> list[NodeMaterial]:
    """One container per node, in parallel, within options.timeout; a NodeMaterial each.

    Ctrl-C is raised at once (workers.py): the runs are stopped, a create under way is let
    finish (at most _CLEANUP_SECONDS) and every container that may exist is removed.
    """
    deadline = time.monotonic() + options.timeout
    runs = [_ContainerRun(spec, options, index) for index, spec in enumerate(specs, 1)]
    futures = [start(run.run, deadline, name=f"agent-{run.spec.name}") for run in runs]
    try:
        wait_all(futures)
        return [f.result() for f in futures]
    finally:
        _clean_up(runs, futures)


def _clean_up(runs: list[_ContainerRun], futures: list) -> None:
    """After the runs (or Ctrl-C, an error): remove what may be left on the engines.

    A second Ctrl-C does not cut this short: it would leave containers behind."""
    interrupted = False
    creating = [f for run, f in zip(runs, futures, strict=True) if run.stop() == "create"]
    while True:
        try:
            wait_all(creating, timeout=_CLEANUP_SECONDS)
            run_each(lambda run: run.remove(), [r for r in runs if r.may_exist], name="rm")
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt


class _ContainerRun:
    """One node's container: asked whether the engine answers, created (a request never
    cut short, so that what the engine made is known), started attached, removed."""

    def __init__(self, spec: NodeEndpoint, options: AgentOptions, index: int):
        self.spec, self.options = spec, options
        self.name = f"netns-shell-check-{options.token}-{index}"
        #: the node's name in reports: the one given, else its engine's (from the ping)
        self.node = spec.name or spec.endpoint
        self.proc: subprocess.Popen | None = None
        self.phase = "wait"  # wait, ping, create, start, done
        #: the container may be on the engine: from the create on, until it ran to its end
        #: (--rm) or the create failed
        self.may_exist = False
        self.stopped = False
        self._lock = threading.Lock()

    def create_argv(self) -> list[str]:
        netns = self.options.netns_dir or _engine_netns_dir(self.spec) or DEFAULT_NETNS_DIR
        socket = self.options.socket or self.spec.socket or SOCKET_TARGET
        return [
            "create", "--pull", "never", "--rm", "--name", self.name,
            "--label", f"{LABEL}={self.options.token}", *_privileges(),
            "-v", f"{netns}:{NETNS_TARGET}:rslave", "-v", f"{socket}:{SOCKET_TARGET}",
            self.options.image, *agent_command(self.options.target),
        ]  # fmt: skip

    def run(self, deadline: float) -> NodeMaterial:
        def failed(error: str) -> NodeMaterial:
            return NodeMaterial(self.node, "container", self.spec.endpoint, error=error)

        late = f"no answer within {self.options.timeout:g} s"
        # a frozen engine would take the create and make the container when it thaws, with
        # nobody left to remove it: ask first whether it answers at all
        steps = (
            ("ping", lambda: ["info", "--format", "{{json .Name}}"]),
            ("create", self.create_argv),
            ("start", lambda: ["start", "--attach", self.name]),
        )
        for phase, argv in steps:
            if not self._begin(phase):
                return failed("interrupted")
            code, out, err = self._call(argv(), deadline)
            if self.stopped:
                return failed("interrupted")
            if code is None:
                return failed(f"{late} ({phase}{' ' + self.name if phase != 'ping' else ''})")
            if phase != "start" and code != 0:
                self.may_exist = False
                return failed(self._why(phase, _last_line(err) or str(code)))
            if phase == "ping" and not self.spec.name:  # this shell's engine: name its node
                with contextlib.suppress(ValueError):
                    self.node = str(json.loads(out) or "") or self.node
        self.phase, self.may_exist = "done", False
        records = parse_lines(out.splitlines())
        if not records:
            return failed(f"the agent failed: {_last_line(err) or code}")
        return material_from_records(
            records, name=self.spec.name or None, mode="container", endpoint=self.spec.endpoint
        )

    def _why(self, phase: str, error: str) -> str:
        """A failed ping or create in words: an image missing on the node says so (the
        create never pulls: `--pull never`, a registry is not asked behind the user's back)."""
        if phase == "create" and "No such image" in error:
            image = self.options.image
            return (
                f"image {image} is not on node {self.node}: load it with "
                f"`docker save {image} | docker {' '.join(self.spec.cli_args())} load` "
                "(or name one that is there with --image)"
            )
        return f"docker {phase}: {error}"

    def _begin(self, phase: str) -> bool:
        """Enter `phase`; False once stopped (nothing more is asked of the engine)."""
        with self._lock:
            if self.stopped:
                return False
            self.phase = phase
            self.may_exist = self.may_exist or phase == "create"
            return True

    def _call(self, argv: list[str], deadline: float) -> tuple[int | None, str, str]:
        """(exit status or None after the deadline, stdout, stderr) of one docker CLI call."""
        try:
            with self._lock:  # stop() kills what it finds here
                if self.stopped:
                    return -1, "", "interrupted"
                self.proc = subprocess.Popen(
                    [*_cli(self.spec), *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
        except OSError as exc:
            return 127, "", str(exc)
        try:
            out, err = self.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return None, "", ""
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def stop(self) -> str:
        """Ctrl-C or an error: nothing more is asked; the ping or the attached start is
        ended, a create is let finish (so that what the engine made is known).  Returns the
        phase it was in."""
        with self._lock:
            self.stopped = True
            proc = self.proc
            if self.phase in ("ping", "start") and proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            return self.phase

    def remove(self) -> None:
        """`docker rm -f` the container (absent already: nothing to do)."""
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(
                [*_cli(self.spec), "rm", "-f", self.name],
                capture_output=True,
                timeout=_REMOVE_SECONDS,
                start_new_session=True,
            )


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _engine_netns_dir(spec: NodeEndpoint) -> str | None:
    """The node's namespace directory (a path on the node) when its engine is a socket here."""
    return sandbox_dir(DockerClient(spec.socket, timeout=3)) if spec.socket else None


# ------------------------------------------------------------------ a global service
def run_service(manager: NodeEndpoint, options: AgentOptions) -> list[NodeMaterial]:
    """One global service on the swarm of `manager`; a NodeMaterial per node of the swarm."""
    deadline = time.monotonic() + options.timeout
    cli = _cli(manager)
    name = f"netns-shell-check-{options.token}"
    nodes = _swarm_nodes(cli)
    _stopping.clear()
    try:
        _docker(cli, *_service_create(name, options), timeout=options.timeout, let_finish=True)
        return _service_answers(cli, name, nodes, options, deadline, manager)
    except KeyboardInterrupt:
        _stop_stray_clients()
        raise
    finally:  # also after a create that failed or timed out: it may have made the service
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(
                [*cli, "service", "rm", name],
                capture_output=True,
                timeout=_CLEANUP_SECONDS,
                start_new_session=True,
            )


def _service_create(name: str, options: AgentOptions) -> list[str]:
    netns = options.netns_dir or DEFAULT_NETNS_DIR
    socket = options.socket or SOCKET_TARGET
    argv = [
        "service", "create", "--detach", "--quiet", "--name", name,
        "--mode", "global", "--restart-condition", "none", "--no-resolve-image",
        "--label", f"{LABEL}={options.token}", "--network", "host",
        "--mount", f"type=bind,source={netns},target={NETNS_TARGET},bind-propagation=rslave",
        "--mount", f"type=bind,source={socket},target={SOCKET_TARGET}",
    ]  # fmt: skip
    for cap in CAPABILITIES:
        argv += ["--cap-add", cap]
    return [*argv, options.image, *agent_command(options.target)]


def _swarm_nodes(cli: list[str]) -> dict[str, tuple[str, str]]:
    """node ID -> (hostname, status) of every node that takes global tasks."""
    out = _docker(cli, "node", "ls", "--format", "{{json .}}", timeout=_CLEANUP_SECONDS)
    nodes = {}
    for line in out.splitlines():
        with contextlib.suppress(ValueError, AttributeError, KeyError):
            node = json.loads(line)
            if str(node.get("Availability", "")).lower() == "active":
                nodes[str(node["ID"])] = (str(node["Hostname"]), str(node["Status"]).lower())
    if not nodes:
        raise AgentError("check --via service: the manager lists no active node")
    return nodes


def _service_answers(
    cli: list[str],
    name: str,
    nodes: dict[str, tuple[str, str]],
    options: AgentOptions,
    deadline: float,
    manager: NodeEndpoint,
) -> list[NodeMaterial]:
    done: dict[str, str] = {}  # node ID -> task ID of a task that ended
    states: dict[str, str] = {}
    reasons: dict[str, str] = {}  # node ID -> the engine's word on its task
    wanted = {nid for nid, (_host, status) in nodes.items() if status == "ready"}
    while wanted - set(done) and time.monotonic() < deadline:
        for task in _tasks(cli, name):
            states[task["node"]] = task["state"]
            reasons[task["node"]] = task["why"]
            if task["state"] in _DONE:
                done.setdefault(task["node"], task["id"])
        if wanted - set(done):
            time.sleep(0.2)
    complete = {task for nid, task in done.items() if states.get(nid) == "complete"}

    def logs_of(task: str) -> list[dict]:
        # a task that completed has answered, but its logs reach the manager from its node a
        # moment later (seconds on a busy node): empty logs are asked again until the deadline
        while not (records := _task_logs(cli, task, deadline)) and task in complete:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.3)
        return records

    answered = run_each(logs_of, done.values(), name="logs")
    logs = dict(zip(done, answered, strict=True))
    answers = []
    for nid, (host, status) in sorted(nodes.items(), key=lambda n: n[1][0]):
        endpoint = " ".join(manager.cli_args())
        if logs.get(nid):
            answers.append(material_from_records(
                logs[nid], name=None, mode="service", endpoint=endpoint))  # fmt: skip
            continue
        if status != "ready":
            why = f"the manager lists the node as {status}"
        elif nid in done:
            reason = f": {reasons[nid]}" if reasons.get(nid) else ""
            why = f"its task ended ({states.get(nid)}{reason}) without an answer"
        else:
            task = states.get(nid, "not scheduled")
            why = f"no answer within {options.timeout:g} s (task {task})"
        answers.append(NodeMaterial(host, "service", endpoint, error=why))
    return answers


def _tasks(cli: list[str], name: str) -> list[dict[str, str]]:
    try:
        ids = _docker(cli, "service", "ps", "-q", "--no-trunc", name, timeout=_CLEANUP_SECONDS)
        if not ids:
            return []
        out = _docker(cli, "inspect", *ids.split(), timeout=_CLEANUP_SECONDS)
        return [
            {
                "id": str(t["ID"]),
                "node": str(t.get("NodeID") or ""),
                "state": str((t.get("Status") or {}).get("State") or ""),
                # why a task was rejected or failed ("No such image: ..."), or its last step
                "why": str(
                    (t.get("Status") or {}).get("Err")
                    or (t.get("Status") or {}).get("Message")
                    or ""
                ),
            }
            for t in json.loads(out)
        ]
    except (AgentError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        return []


def _task_logs(cli: list[str], task: str, deadline: float) -> list[dict]:
    try:
        out = _docker(
            cli, "service", "logs", "--raw", "--no-trunc", task,
            timeout=max(1.0, deadline - time.monotonic()),
        )  # fmt: skip
    except (AgentError, subprocess.TimeoutExpired):
        return []
    return parse_lines(out.splitlines())


def _stop_stray_clients() -> None:
    """After Ctrl-C: no docker call starts any more, and those of this process still running
    are killed: one a worker thread had started (Ctrl-C reaches only the main thread), or
    one Ctrl-C cut off while Popen was starting it (it never got a handle to kill)."""
    _stopping.set()
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 1 :].split()
        if comm == "docker" and len(fields) > 1 and fields[1] == str(me):
            pid = int(entry.name)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, 0)


def _docker(cli: list[str], *args: str, timeout: float, let_finish: bool = False) -> str:
    """One docker CLI call; its stdout.  Ctrl-C ends it, or with `let_finish` (a create)
    lets the request finish (within _CLEANUP_SECONDS) so that what the engine made is known
    and can be removed."""
    if _stopping.is_set():
        raise AgentError("interrupted")
    proc = subprocess.Popen(
        [*cli, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except KeyboardInterrupt:
        if let_finish:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_CLEANUP_SECONDS)
        proc.kill()
        proc.wait()
        raise
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise AgentError(f"docker {args[0]} {args[1]}: {_last_line(err) or 'failed'}")
    return out.strip()
