"""Every example the user is shown runs: `help`'s examples (built-ins and shipped plugins)
in the REPL's grammar against the lab, and the docs' shell examples in a real shell.

The examples name things of a Docker swarm where they were written (`1-9tp`, `1-rng4`, the
overlay's 10.0.1.x); these are replaced by the lab's equivalents (PLACEHOLDERS below).
Examples that need what only a Docker engine has (its embedded DNS, IPVS, a container by
name, several nodes) are listed in ON_SWARM and run on a real 3-node swarm by
tests/test_examples_swarm.py; NEEDS_ENGINE keeps, with the reason, only those that cannot
run on this machine at all (skipped there too, after checking they say why). The rest must
exit 0 here, or, for a live command (capture, watch, ping without -c), still be running
without an error after a few seconds and stop on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netns_shell.commands import build_registry
from netns_shell.extensions import PluginLoader, builtin_plugin_names

ROOT = Path(__file__).resolve().parent.parent
LIVE_SECONDS = 4
#: how long a command that ends on its own may take
ENDS_WITHIN = 120

#: examples that need a Docker engine's objects, and what they need: the lab has none, so
#: tests/test_examples_swarm.py (SWARM_TEST) runs each of them on a real 3-node swarm
ON_SWARM = {
    "use ingress_sbox; ipvs": "Docker's ingress namespace and its IPVS services",
    "dns web": "Docker's embedded DNS (127.0.0.11) answering a container's name",
    "dns tasks.web": "Docker's embedded DNS answering tasks.SERVICE",
    "dns 10.0.9.3": "Docker's embedded DNS answering a reverse lookup of a container",
    "dns example.org @10.0.0.2 -t AAAA": "a DNS server on the overlay at 10.0.0.2",
    "ping -M do -s 1422 -c 1 web": "Docker's embedded DNS for the container name 'web'",
    "tcping web 80": "Docker's embedded DNS and a container listening on 80",
    "traceroute -q 1 -m 5 web": "Docker's embedded DNS for the container name 'web'",
    "conntrack -p udp 127.0.0.11": "Docker's embedded DNS traffic in conntrack",
    "firewall -t nat DOCKER_OUTPUT": "the nat chain Docker adds to a container",
    "check --cluster --nodes n1=unix:///run/n1.sock,n2=unix:///run/n2.sock": "two engines",
    "check my-overlay": "a Docker overlay network by that name",
    "check": "a Docker overlay network on this node's engine",
    "check --json": "a Docker overlay network on this node's engine",
    "check --cluster --via service --image netns-shell:latest": "a swarm that has the image",
    "check --cluster --via container --nodes a=ssh://root@a,b=ssh://root@b": "ssh nodes",
    "trace --from web 10.0.1.7 --proto tcp --port 443": "a Docker container named web",
    "ipvs": "IPVS services, which only Docker's lb_/ingress namespaces have (ip_vs)",
}
SWARM_TEST = "tests/test_examples_swarm.py"

#: examples of ON_SWARM that cannot run on this machine even on the swarm, and why
NEEDS_ENGINE = {
    "ipvs": "an ip_vs kernel module: this kernel has none (no /proc/net/ip_vs, no modules to load)",
    "use ingress_sbox; ipvs": "an ip_vs kernel module: this kernel has none",
    "check --cluster --via container --nodes a=ssh://root@a,b=ssh://root@b": (
        "engines reached over ssh: there are no ssh nodes here (--via container with unix "
        "sockets runs on the swarm in tests/test_check_agents.py)"
    ),
}

#: the exit statuses that mean "ran and gave its verdict" (documented in each command's help)
VERDICTS = {"check": (0, 1), "tcping": (0, 1), "trace": (0, 1)}


def _registry():
    registry = build_registry()
    warnings: list[str] = []
    PluginLoader(warnings.append)(registry)
    assert warnings == [], warnings
    shipped = set(builtin_plugin_names())
    return [
        c for c in registry if c.source == "built-in" or c.source.removeprefix("plugin ") in shipped
    ]


HELP_EXAMPLES = [example for command in _registry() for example in command.examples]


def _placeholders(lab, tmp_path: Path, pid: int) -> dict[str, str]:
    return {
        "1-9tp0f348do": lab.overlay,
        "1-9tp": lab.overlay,
        "my-overlay": lab.overlay,
        "/var/run/netns/blue": lab.path("c1"),
        "pid:4242": f"pid:{pid}",
        "/tmp/overlay.pcap": str(tmp_path / "overlay.pcap"),
        **{member.role: lab.name(member.role) for member in lab.members},  # the demo's c1..
    }


def _substitute(text: str, table: dict[str, str]) -> str:
    pattern = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
    return re.sub(rf"(?<![\w/.-])({pattern})(?![\w.-])", lambda m: table[m.group(1)], text)


def _where(lab, example: str, pid: int) -> list[str]:
    """The target an example is meant for: a container (eth0), a process, or the overlay."""
    if example.startswith("exec -a") or example.startswith("exec -p"):
        return ["-t", str(pid)]
    if re.search(r"\beth0\b", example) or example.startswith(("tcping", "traceroute", "dns")):
        return ["--net", lab.path("c1")]
    return ["--net", lab.entry_path]


def _is_live(line: str) -> bool:
    """Whether a command line goes on until Ctrl-C: a live capture (even with -c: the lab
    may never send that many packets), watch, or ping without -c."""
    return bool(
        re.search(r"\bcapture\b(?![^'\"|]*\s-r\s)", line)  # -r of this command, not tshark's
        or re.search(r"\bwatch\b", line)
        or re.search(r"\bping\b(?![^'\"|]*\s-c\s?\d)", line)
    )


def _run_live(
    argv: list[str], cwd: Path, shell: bool = False, live: bool = True
) -> tuple[int, str, str, bool]:
    """Run until it ends, or (live) LIVE_SECONDS then Ctrl-C; (status, stdout, stderr,
    interrupted). A command that ends on its own is given time to end (a loaded machine is
    slow), not interrupted: a Ctrl-C while it starts up would judge the start, not it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMPT_TOOLKIT_NO_CPR": "1"}
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        shell=shell,
        executable="/bin/bash" if shell else None,
    )
    interrupted = False
    try:
        out, err = proc.communicate(timeout=LIVE_SECONDS if live else ENDS_WITHIN)
    except subprocess.TimeoutExpired:
        if not live:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"{argv}: still running after {ENDS_WITHIN} s") from None
        interrupted = True
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err, interrupted


def _errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if line.startswith("netns-shell: ") and not line.startswith("netns-shell: warning:")
    ]


def _assert_ran(
    what: str, status: int, out: str, err: str, interrupted: bool, ok: tuple = (0,)
) -> None:
    if interrupted:
        assert status in (0, 130) and not _errors(err), f"{what}: {status}\n{out}\n{err}"
    else:
        assert status in ok, f"{what}: exit {status}\nstdout: {out}\nstderr: {err}"
        assert status == 0 or out, f"{what}: a verdict with no output"
    assert "Traceback" not in err and "internal error" not in err, err


@pytest.mark.parametrize("example", HELP_EXAMPLES)
def test_every_help_example_runs_in_the_lab(example, lab, process_netns, tmp_path):
    if example in NEEDS_ENGINE:
        pytest.skip(f"needs {NEEDS_ENGINE[example]}")
    if example in ON_SWARM:
        pytest.skip(f"needs {ON_SWARM[example]}: runs on a real swarm in {SWARM_TEST}")
    if example.startswith("capture -r"):  # reads what the -w example wrote
        _run_live(
            [
                sys.executable,
                "-m",
                "netns_shell",
                "--net",
                lab.path("ul"),
                "-c",
                f"capture -w {tmp_path / 'overlay.pcap'} -c 1 --duration 1",
            ],
            tmp_path,
        )
    line = _substitute(example, _placeholders(lab, tmp_path, process_netns))
    argv = [sys.executable, "-m", "netns_shell", *_where(lab, example, process_netns), "-c", line]
    if example.startswith("exec -a"):
        argv[-1] = "exec -a sh -c true"  # `sh` alone would read the test's stdin
    if "|" in line:  # `topology --dot | dot ...`: a pipe of the shell, written the REPL's way
        command, _, pipeline = line.partition("|")
        argv = f"{shlex.join(argv[:-1])} {shlex.quote(command.strip())} | {pipeline}"
    live = _is_live(line)
    status, out, err, interrupted = _run_live(argv, tmp_path, shell="|" in line, live=live)
    ok = VERDICTS.get(example.split()[0], (0,))
    _assert_ran(example, status, out, err, interrupted, ok)
    if "dot -Tsvg" in example:
        assert (tmp_path / "topo.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def _shell_examples() -> list[tuple[str, str]]:
    """(where, command) for each command of a ```sh block in docs/ and README that runs
    netns-shell; lines ending in a backslash and for-loops are one command."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            unit = ""
            for raw in block.splitlines():
                line = raw.rstrip()
                if not unit and (not line.strip() or line.lstrip().startswith("#")):
                    continue
                unit += line + "\n"
                if line.endswith("\\") or (unit.startswith("for ") and line.strip() != "done"):
                    continue
                if "netns-shell" in unit:
                    found.append((page.name, unit.strip()))
                unit = ""
    return found


SHELL_EXAMPLES = _shell_examples()

#: shell examples that cannot run here, and why
SHELL_EXCLUDED = {
    "wireshark": "opens a graphical window",
    "ssh node1": "needs another machine",
    "kubectl": "needs a Kubernetes cluster",
    "docker run": "runs the published image (tests/test_image.py builds and runs it)",
    "--demo": "interactive REPL (tests/test_demo.py and test_terminal.py drive it)",
    "netns-shell                                   # REPL": "interactive REPL",
    "netns-shell 1-rng4dt2tef                      # REPL": "interactive REPL",
    "netns-shell --net=/var/run/netns/blue": "interactive REPL",
    "netns-shell -t 3415": "interactive REPL",
    "standalone1": "a Docker container by name (tests/test_docker.py)",
    ".venv/bin/": "the install steps (test_readme_install_puts_netns_shell_on_path)",
    "pip install": "installs the package (test_readme_install_puts_netns_shell_on_path)",
    "pytest": "runs the test suite itself",
    "ln -sf": "changes /usr/local/bin (test_readme_puts_netns_shell_on_path runs it elsewhere)",
    "capture -w /tmp/vxlan.pcap udp port 4789": "runs until Ctrl-C (the -w examples run here)",
}


def _doc_placeholders(lab, tmp_path: Path) -> dict[str, str]:
    table = {"1-rng4dt2tef": lab.overlay, "1-rng4": lab.overlay, "1-9tp": lab.overlay}
    table["web"] = lab.name("c1")  # a container of the overlay
    for i in range(2, 7):  # the swarm's overlay addresses and MACs -> the lab's
        table[f"10.0.1.{i}"] = f"10.0.9.{min(i, 4)}"
        table[f"02:42:0a:00:01:0{i}"] = f"02:42:0a:00:09:0{min(i, 4)}"
    table["veth2"] = "veth1"
    for name in ("/tmp/ovl.pcap", "/tmp/vxlan.pcap"):
        table[name] = str(tmp_path / Path(name).name)
    return table


def _write_pcap(lab, path: str) -> None:
    if not os.path.exists(path):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "netns_shell",
                "--net",
                lab.path("ul"),
                "-c",
                f"capture -w {path} --duration 0.5",
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            check=True,
        )


SHIM = """#!{python}
import signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-m", "netns_shell", *sys.argv[1:]])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the child's to handle
status = child.wait()
with open({statuses!r}, "a") as log:
    log.write(f"{{status}}\\n")
sys.exit(status if status >= 0 else 128 - status)
"""


@pytest.fixture
def on_path(tmp_path) -> Path:
    """A directory holding a `netns-shell` that runs this tree's code and appends each
    exit status to `statuses` beside it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "netns-shell"
    script.write_text(SHIM.format(python=sys.executable, statuses=str(bin_dir / "statuses")))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _vanished(stderr: str) -> bool:
    """Whether a namespace that `--list` gave a loop was gone when the loop came to it:
    the host's Docker sandboxes (other tests' containers) come and go meanwhile."""
    missing = re.findall(r"no namespace named '([^']+)'", stderr)
    if not missing:
        return False
    listed = subprocess.run(
        [sys.executable, "-m", "netns_shell", "--json", "--list"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    return not any(f'"{name}"' in listed for name in missing)


@pytest.mark.parametrize("page, example", SHELL_EXAMPLES, ids=lambda v: v[:60])
def test_every_shell_example_of_the_docs_runs(page, example, lab, on_path, tmp_path):
    reason = next((why for key, why in SHELL_EXCLUDED.items() if key in example), None)
    if reason:
        pytest.skip(reason)
    table = _doc_placeholders(lab, tmp_path)
    for name in ("/tmp/ovl.pcap", "/tmp/vxlan.pcap"):  # what the examples before wrote
        _write_pcap(lab, table[name])
    script = _substitute(example, table)
    script = f"set -eo pipefail\nexport PATH={on_path}:$PATH\n{script}"
    started = time.monotonic()
    for _attempt in range(3):
        (on_path / "statuses").unlink(missing_ok=True)
        status, out, err, interrupted = _run_live(
            script, tmp_path, shell=True, live=_is_live(script)
        )
        if not _vanished(err):
            break
        started = time.monotonic()  # again: a namespace it was given went away meanwhile
    if interrupted:
        # Ctrl-C reaches every program of the pipeline; what the others answer is theirs
        # (tshark -r - exits 2 when interrupted after it has read packets). netns-shell's
        # own status must be that of a command stopped by Ctrl-C.
        statuses = (on_path / "statuses").read_text().split()
        assert statuses and {int(s) for s in statuses} <= {0, 130}, (example, statuses, err)
        status = 0
    _assert_ran(f"{page}: {example}", status, out, err, interrupted)
    assert time.monotonic() - started < 60


def test_readme_puts_netns_shell_on_path(tmp_path):
    """The README's install leaves `netns-shell` where the next command finds it: its
    `ln -s` line, run with a venv's script in place, makes `netns-shell` callable by name."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = readme.split("## Usage")[0]
    line = next(x for x in re.findall(r"```sh\n(.*?)```", install, re.S) if "ln -s" in x).strip()
    assert ".venv/bin/netns-shell" in line
    clone, bin_dir = tmp_path / "clone", tmp_path / "bin"
    (clone / ".venv" / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    script = clone / ".venv" / "bin" / "netns-shell"  # what `pip install .` puts there
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m netns_shell "$@"\n')
    script.chmod(0o755)
    subprocess.run(line.replace("/usr/local/bin", str(bin_dir)), shell=True, cwd=clone, check=True)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        ["sh", "-c", "netns-shell --version"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.startswith("netns-shell "), run.stderr
