"""The REPL driven like a person at a terminal (pexpect): commands, Tab, Ctrl-C, exit."""

from __future__ import annotations

import re
import subprocess
import sys

import pexpect

from tests.conftest import ANSI, PROMPT


def _screen(child: pexpect.spawn) -> str:
    return ANSI.sub("", child.before or "")


def test_person_at_the_prompt(shell, lab, tmp_path):
    child = shell()
    child.sendline("ns")
    child.expect_exact(lab.overlay)
    child.expect(PROMPT)
    # Tab completes the namespace name from a unique prefix
    child.send(f"use {lab.overlay[:-2]}")
    child.send("\t")
    child.send("\r")
    child.expect_exact(f"now in {lab.overlay}")
    child.expect(re.escape(f"[{lab.overlay}") + PROMPT)  # the prompt names the namespace
    # Tab after 'fdb br ' offers the bridge of this namespace
    child.send("fdb br b\t")
    child.send("\r")
    child.expect_exact(lab.remotes[0].vtep)
    child.expect(PROMPT)
    # Ctrl-C at the prompt clears the line and does not leave
    child.send("links this-is-discarded")
    child.sendintr()
    child.expect(PROMPT)
    child.sendline("links vxlan0")
    child.expect_exact("vxlan0")
    child.expect(PROMPT)
    transcript = _screen(child)
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (
        "Traceback" not in transcript
        and "this-is-discarded" not in transcript.split("links vxlan0")[-1]
    )
    history = (tmp_path / "state" / "netns-shell" / "history").read_text()
    # the history shows what Tab made of the typed prefixes
    assert f"use {lab.overlay}\n" in history
    assert "fdb br br0\n" in history and "links vxlan0" in history


def test_errors_at_the_prompt_do_not_leave(shell, lab):
    child = shell("--net", lab.entry_path)
    for line, answer in (
        ("lnks", "did you mean 'links'"),
        ("use no-such-namespace-xyz", "no namespace named"),
        ("fdb br nosuch", "no interface named 'nosuch'"),
    ):
        child.sendline(line)
        child.expect_exact(answer)
        child.expect(PROMPT)
    child.sendline("help fdb")
    child.expect_exact("usage: fdb")
    child.expect(PROMPT)
    child.sendeof()  # Ctrl-D leaves
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_cancels_a_running_command(shell, lab):
    child = shell("--net", lab.path("c1"))
    child.sendline("exec sleep 30")
    _wait_for_child_program(child.pid, "sleep")
    _discard_output(child)  # the accepted line's prompt, drawn again: not the next prompt
    child.sendintr()
    child.expect(PROMPT, timeout=15)  # well before `sleep 30` would end on its own
    child.sendline("links eth0")
    child.expect_exact(lab.members[0].mac)
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def _discard_output(child: pexpect.spawn) -> None:
    """Forget what the shell has written so far, so the next expect sees only new output."""
    try:
        while True:
            child.read_nonblocking(65536, timeout=0.3)
    except pexpect.TIMEOUT:
        pass
    child.buffer = ""


def _wait_for_child_program(pid: int, comm: str) -> None:
    import subprocess
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(pid), "-x", comm], capture_output=True)
        if found.returncode == 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"{comm} never started under {pid}")


def test_piped_lines_run_like_a_script(lab):
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "netns_shell", "--net", lab.entry_path],
        input="# comment\nneigh -4 dev br0\nbridges\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    for member in lab.members:
        assert member.ip in proc.stdout
    assert "br0" in proc.stdout


def test_tab_offers_every_route_table_that_holds_routes(shell, netns):
    """`routes table <Tab>` offers a table with routes that no policy rule names."""
    subprocess.run(
        ["ip", "-n", netns, "route", "add", "blackhole", "10.77.0.0/24", "table", "4242"],
        check=True,
    )
    child = shell("--net", f"/var/run/netns/{netns}")
    child.send("routes table 42\t")
    child.send("\r")
    child.expect_exact("10.77.0.0/24")
    child.expect(PROMPT)
    child.sendline("exit")
    child.expect(pexpect.EOF)


def test_tab_right_after_use_offers_the_new_namespace_s_words(lab):
    """The completion state is rebuilt in the background after `use`: a Tab at once waits
    for it rather than offer the previous namespace's interfaces."""
    import io

    from netns_shell.commands import build_registry
    from netns_shell.completion import StateRefresher
    from netns_shell.render import Console
    from netns_shell.session import Session

    console = Console(stdout=io.StringIO(), stderr=io.StringIO())
    session = Session(registry=build_registry(), console=console)
    refresher = StateRefresher(session)
    session.on_switch.append(lambda s: refresher.refresh())
    refresher.refresh(wait=True)
    try:
        for _ in range(20):
            session.execute(f"use {lab.overlay}")
            assert "br0" in refresher.current().bridges
            session.execute("host")
            assert "vxlan0" not in refresher.current().interfaces
    finally:
        session.close()
