"""The shell and the terminal: job control around `exec`, signals at the prompt, width.

Real processes on a pseudo-terminal (pexpect), as a person at a terminal would see them.
"""

from __future__ import annotations

import os
import re
import signal

import pexpect
import pytest

from tests.conftest import ANSI, PROMPT


@pytest.fixture
def pid_namespace_process():
    """A process with a network and a PID namespace of its own (like a container's init)."""
    import subprocess
    import time

    argv = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "sleep", "300"]
    outer = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = subprocess.run(["pgrep", "-P", str(outer.pid)], capture_output=True, text=True)
            if found.stdout.split():
                inner = int(found.stdout.split()[0])
                with open(f"/proc/{inner}/comm", encoding="utf-8") as fh:
                    if fh.read().strip() == "sleep":
                        yield inner
                        return
            time.sleep(0.02)
        raise RuntimeError("unshare never started its program")
    finally:
        outer.kill()
        outer.wait()


def _process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("flags", ["-p", "-a"])
def test_exec_of_an_interactive_shell_gets_and_gives_back_the_terminal(
    shell, pid_namespace_process, flags
):
    """`exec -p sh`, `exit`: no "Cannot set tty process group", the shell is not Stopped."""
    child = shell("-t", str(pid_namespace_process))
    child.sendline(f"exec {flags} sh")
    child.expect(r"# ")
    child.sendline("echo in-$((6*7))")
    child.expect_exact("in-42")
    child.sendline("exit")
    child.expect(PROMPT)
    transcript = ANSI.sub("", child.before or "")
    assert _process_state(child.pid) != "T"
    child.sendline("links lo")  # the shell still reads the terminal
    child.expect_exact("65536")
    child.expect(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Cannot set tty process group" not in transcript
    assert "job control" not in transcript


def _wait_for_exit(child: pexpect.spawn, timeout: float = 15) -> int | None:
    child.expect(pexpect.EOF, timeout=timeout)
    child.close()
    return child.exitstatus if child.exitstatus is not None else 128 + child.signalstatus


def test_sigterm_at_the_idle_prompt_leaves_at_once_with_143(shell):
    child = shell()
    child.kill(signal.SIGTERM)  # nothing typed: the shell waits in the prompt
    assert _wait_for_exit(child) == 143


def test_sigterm_at_the_demo_prompt_leaves_at_once_and_removes_the_lab(shell):
    from netns_shell.lab import NETNS_DIR

    child = shell("--demo")
    base = re.search(r"namespaces named (\S+)-\*", ANSI.sub("", child.before)).group(1)
    assert any(n.startswith(base) for n in os.listdir(NETNS_DIR))
    child.kill(signal.SIGTERM)
    assert _wait_for_exit(child, timeout=15) == 143
    assert [n for n in os.listdir(NETNS_DIR) if n.startswith(base)] == []
