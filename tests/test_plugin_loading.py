"""Plugins written to the documented API: loaded from --plugin-dir, listed, completed, run."""

from __future__ import annotations

import os
import textwrap

import pytest

from netns_shell.commands import build_registry
from netns_shell.completion import CompletionState, candidates, expected_at
from netns_shell.extensions import PluginLoader
from tests.conftest import netns_shell

HELLO = textwrap.dedent('''
    """A plugin written to the documented API (docs/plugins.md)."""
    import os

    from netns_shell.plugin import API_VERSION, Column, Param


    def register(registry):
        @registry.view(
            "hello", "say which namespace this is",
            Param("iface", metavar="IFACE", complete="interface", help="an interface"),
            columns=(Column.of("INODE", "inode"), Column.of("IFACE", "iface")),
        )
        def hello(namespace, args):
            inode = namespace.run(lambda: os.stat("/proc/thread-self/ns/net").st_ino)
            yield {"inode": inode, "iface": args["iface"]}
''')
BROKEN = 'raise RuntimeError("boom at import")\n'


@pytest.fixture
def plugin_dir(tmp_path):
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "hello.py").write_text(HELLO)
    (directory / "broken.py").write_text(BROKEN)
    return directory


def test_plugin_appears_in_help_and_runs_in_the_entered_namespace(plugin_dir, lab):
    run = netns_shell(
        "--plugin-dir", str(plugin_dir), "--net", lab.path("c1"), "--json", "-c", "hello eth0"
    )
    assert run.status == 0, run.stderr
    assert run.json == [{"inode": os.stat(lab.path("c1")).st_ino, "iface": "eth0"}]
    assert run.stderr.count("\n") == 1 and "plugin broken: not loaded" in run.stderr
    assert "boom at import" in run.stderr and "Traceback" not in run.stderr
    listing = netns_shell("--plugin-dir", str(plugin_dir), "-c", "help").stdout
    assert any(
        line.strip().startswith("hello") and "[plugin hello]" in line
        for line in listing.splitlines()
    )


def test_a_broken_plugin_does_not_stop_the_shell(plugin_dir, lab):
    run = netns_shell(
        "--plugin-dir", str(plugin_dir), "--net", lab.path("c1"), "--json", "-c", "links; hello"
    )
    assert run.status == 0
    links, hello = run.json_documents
    assert [link["ifname"] for link in links] == ["lo", "eth0"]
    assert hello[0]["inode"] == os.stat(lab.path("c1")).st_ino


def test_plugin_commands_complete(plugin_dir):
    registry = build_registry()
    registry.loader = PluginLoader(warn=lambda line: None, directories=[str(plugin_dir)])
    state = CompletionState(interfaces={"eth0": "veth", "lo": "loopback"})
    assert [w for w, _ in candidates(expected_at(registry, "hel"), registry, state)] == [
        "hello",
        "help",
    ]
    assert [w for w, _ in candidates(expected_at(registry, "hello e"), registry, state)] == ["eth0"]


def test_environment_path_and_blocking(plugin_dir, lab):
    env = {"NETNS_SHELL_PLUGIN_PATH": str(plugin_dir)}
    assert netns_shell("--net", lab.path("c1"), "-c", "hello", env=env).status == 0
    blocked = {**env, "NETNS_SHELL_DISABLE_PLUGINS": "hello,broken"}
    run = netns_shell("--net", lab.path("c1"), "-c", "hello", env=blocked)
    assert run.status == 2 and "unknown command 'hello'" in run.stderr
    assert "broken" not in run.stderr
    run = netns_shell("--no-plugins", "--plugin-dir", str(plugin_dir), "-c", "hello")
    assert run.status == 2


def test_never_loaded_from_the_current_directory(plugin_dir, monkeypatch):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "netns_shell", "-c", "hello"],
        cwd=plugin_dir,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown command 'hello'" in proc.stderr
    assert "boom" not in proc.stderr


LINKINDEX = textwrap.dedent('''
    """A plugin that adds a completion kind (docs/plugins.md#completion-kinds)."""
    import socket

    from netns_shell.plugin import Param, Result


    def register(registry):
        @registry.completion_kind("linkindex", description="interface index")
        def link_indexes(namespace):
            for index, name in namespace.run(socket.if_nameindex):
                yield str(index), name

        @registry.command(
            "whichlink", "the name of an interface index",
            Param("index", metavar="N", complete="linkindex", required=True),
        )
        def whichlink(session, args):
            names = dict(session.namespace.run(socket.if_nameindex))
            return Result.note(names.get(int(args["index"]), "none"))
''')
CLASH = textwrap.dedent("""
    def register(registry):
        @registry.completion_kind("interface")
        def mine(namespace):
            return ["x"]
""")


def test_a_plugin_adds_a_completion_kind(tmp_path, lab):
    """The kind's words are gathered in the current namespace by the background refresh, and
    Tab offers them where a param names the kind; the oracle is `ip -n NS -j link`."""
    import json
    import subprocess

    from netns_shell.completion import StateRefresher
    from netns_shell.namespace import NetNamespace
    from netns_shell.session import Session

    (tmp_path / "linkindex.py").write_text(LINKINDEX)
    (tmp_path / "clash.py").write_text(CLASH)
    warnings: list[str] = []
    registry = build_registry()
    PluginLoader(warn=warnings.append, directories=[str(tmp_path)])(registry)
    assert [w for w in warnings if "clash" in w] and "already registered" in warnings[0]
    assert registry.kinds.get("interface").source == "built-in"
    assert registry.kinds.get("linkindex").source == "plugin linkindex"
    session = Session(registry, current=NetNamespace.open_path(lab.path("c1")))
    try:
        refresher = StateRefresher(session)
        refresher.refresh(wait=True)
        expect = expected_at(registry, "whichlink ")
        assert expect.kind == "linkindex"
        links = json.loads(
            subprocess.check_output(["ip", "-n", lab.name("c1"), "-j", "link", "show"])
        )
        offered = list(candidates(expect, registry, refresher.state))
        assert offered == [(str(link["ifindex"]), link["ifname"]) for link in links]
        assert len(offered) == 2  # lo, eth0: the namespace's, not the host's
        prefix = str(links[1]["ifindex"])[0]
        assert all(
            w.startswith(prefix)
            for w, _ in candidates(
                expected_at(registry, f"whichlink {prefix}"), registry, refresher.state
            )
        )
    finally:
        session.close()
    run = netns_shell(
        "--plugin-dir",
        str(tmp_path),
        "--net",
        lab.path("c1"),
        "-c",
        f"whichlink {links[1]['ifindex']}",
    )
    assert run.stdout == "eth0\n"
