"""Attacks a hostile review tried, each reproduced against the real tool (docs/hardening.md)."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time

import pytest

from netns_shell.commands import build_registry
from netns_shell.commands.line import quote, split_commands
from netns_shell.completion import CompletionState, candidates, expected_at
from tests.conftest import ip_json, netns_shell, unique


def _batch(netns: str, lines) -> None:
    subprocess.run(
        ["ip", "-n", netns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True
    )


def _altname_lines(dev: str, count: int) -> list[str]:
    return [f"link property add dev {dev} altname a{i:03d}{'x' * 123}" for i in range(count)]


def test_a_link_message_bigger_than_64k_is_not_hidden(netns):
    """A veth with ~490 altnames of 127 bytes makes one RTM_NEWLINK of about 70 KiB, more than
    a 64 KiB receive buffer: the kernel cut it and the link vanished from every view."""
    _batch(
        netns,
        [
            "link add hid0 type veth peer name hid1",
            "link set hid0 up",
            "link set hid1 up",
            "addr add 198.51.100.1/24 dev hid0",
            *_altname_lines("hid0", 490),
        ],
    )
    ref = ip_json("-n", netns, "link", "show")
    assert "hid0" in [r["ifname"] for r in ref]
    mine = netns_shell(netns, "--json", "-c", "links")
    assert mine.status == 0, mine.stderr
    assert [r["ifname"] for r in mine.json] == [r["ifname"] for r in ref]
    (hidden,) = [r for r in mine.json if r["ifname"] == "hid0"]
    assert hidden["altnames"] == next(r for r in ref if r["ifname"] == "hid0")["altnames"]
    routes = netns_shell(netns, "--json", "-c", "routes -4")
    assert {r.get("dev") for r in routes.json} == {"hid0"}
    found = netns_shell("--json", "-c", "find hid0")
    assert [r["dev"] for r in found.json if r["netns"] == netns] == ["hid0"]
    ns = netns_shell("--json", "-c", "ns")
    (entry,) = [r for r in ns.json if r["name"] == netns]
    assert entry["links"] == len(ref)
    capture = netns_shell(netns, "-c", "capture -i hid0 --duration 0.2")
    assert capture.status == 0, capture.stderr
    assert "capturing on hid0" in capture.stderr
    peers = netns_shell(netns, "--json", "-c", "links -d hid1")
    assert peers.json[0]["link"] == "hid0"
    assert json.loads(netns_shell(netns, "--json", "-c", "topology").stdout)


# ------------------------------------------------------------------ completion
HOSTILE_NAMES = ["x$(touch pwned)", "a b;c", "q'uo\"te", "back\\slash", "`touch pwned2`"]


@pytest.fixture
def hostile_namespaces():
    """Named namespaces whose names are shell code, separators, quotes and escapes."""
    suffix = unique("-")
    made = []
    try:
        for name in HOSTILE_NAMES:
            subprocess.run(["ip", "netns", "add", name + suffix], check=True)
            made.append(name + suffix)
        yield made
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


def _bash_complete(words: list[str], cwd: str) -> list[str]:
    """COMPREPLY of the bash completion script for a command line being typed."""
    script = netns_shell("--completion", "bash").stdout
    bindir = os.path.dirname(sys.executable)
    driver = (
        script
        + 'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _netns_shell\n'
        + 'printf "%s\\0" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "-c", driver, "bash", *words],
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"},
        check=True,
    )
    return [w.decode() for w in proc.stdout.split(b"\0") if w]


def test_bash_completion_treats_names_as_data(hostile_namespaces, tmp_path):
    """The old script ran `compgen -W "$(netns-shell --complete targets)"`: compgen expands
    $(...) and backquotes inside the words, so Tab ran a name as a command, as root."""
    replies = _bash_complete(["netns-shell", ""], str(tmp_path))
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    for name in hostile_namespaces:
        quoted = [r for r in replies if shlex.split(r) == [name]]
        assert len(quoted) == 1, (name, replies)
    # a typed prefix, opening quote included, narrows to the one name
    name = hostile_namespaces[1]  # 'a b;c...'
    assert [shlex.split(r) for r in _bash_complete(["netns-shell", "'a b"], str(tmp_path))] == [
        [name]
    ]
    assert _bash_complete(["netns-shell", "-c", "lin"], str(tmp_path)) == ["links"]
    assert "--read-only" in _bash_complete(["netns-shell", "--re"], str(tmp_path))


def test_tab_in_the_shell_inserts_names_quoted_for_its_parser(hostile_namespaces):
    """A name holding ';' was inserted raw: on Enter it became a second command."""
    registry = build_registry()
    state = CompletionState(namespaces={name: "named" for name in hostile_namespaces})
    for name in hostile_namespaces:
        typings = [f"use {quote(name[:3])}"] + ([f"use '{name[:3]}"] if "'" not in name else [])
        for typed in typings:
            expect = expected_at(registry, typed)
            words = [w for w, _ in candidates(expect, registry, state) if w == name]
            assert words == [name]
            line = typed[: expect.start] + quote(name)
            assert split_commands(line) == [["use", name]]
    # the real thing: the completed text is what `use` receives
    from netns_shell.render import Console
    from netns_shell.session import Session

    session = Session(registry=registry, console=Console(stdout=io.StringIO()))
    try:
        for name in hostile_namespaces:
            assert session.execute("use " + quote(name)) == 0
            assert session.namespace.path == f"/var/run/netns/{name}"
    finally:
        session.close()


def test_line_splitting_is_linear_in_word_length():
    """shlex took 2 minutes on a 2 MB word (quadratic); the splitter is one linear pass."""
    for word in ("a" * 2_000_000, '"' + "b" * 2_000_000 + '"', "c\\ " * 500_000):
        start = time.perf_counter()
        (words,) = split_commands(f"links {word}")
        assert len(words) == 2
        assert time.perf_counter() - start < 2.0
