"""Shell conventions: --version, bash completion, NO_COLOR, documented exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys

import pexpect

import netns_shell
from tests.conftest import netns_shell as run_shell


def test_version():
    run = run_shell("--version")
    assert run.status == 0 and run.stdout.strip() == f"netns-shell {netns_shell.__version__}"


def test_help_documents_exit_statuses_and_completion():
    run = run_shell("--help")
    assert run.status == 0
    text = " ".join(run.stdout.split())
    assert "Exit status: 0 success; 1 a command failed; 2 a usage error" in text
    assert "--completion bash" in text


def _complete(words: list[str]) -> list[str]:
    script = run_shell("--completion", "bash").stdout
    shell = os.path.dirname(sys.executable)
    wrapper = os.path.join(shell, "netns-shell")
    env = {**os.environ, "PATH": f"{shell}:{os.environ['PATH']}"}
    if not os.path.exists(wrapper):  # tests may run without the console script installed
        return []
    program = (
        f"{script}\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}; "
        "_netns_shell; printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, env=env)
    return out.stdout.split()


def test_bash_completion_of_options_targets_and_commands(lab):
    assert "--json" in _complete(["netns-shell", "--js"])
    assert lab.overlay in _complete(["netns-shell", lab.overlay[:-3]])
    assert "links" in _complete(["netns-shell", "-c", "li"])
    assert set(run_shell("--complete", "commands").stdout.split("\0")) >= {"links", "fdb", "ns"}


def test_no_color_prompt_has_no_styling(tmp_path):
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
    }
    for no_color, styled in (("1", False), ("", True)):
        child = pexpect.spawn(
            sys.executable,
            ["-m", "netns_shell"],
            env={**env, "NO_COLOR": no_color},
            encoding="utf-8",
            timeout=20,
        )
        child.expect("host")
        child.expect(">")
        seen = child.before
        child.sendline("exit")
        child.expect(pexpect.EOF)
        assert ("\x1b[0;1m" in seen) is styled, repr(seen)
