"""The documentation site: `mkdocs build --strict` passes, and the command reference that
docs/hooks/command_reference.py generates lists every command with its usage line.

The expected commands are computed here, independently of the hook: the built-in registry
plus the plugins shipped in plugins/. A command added to either can never be missing from
the docs without this test failing.  One build (about a second) serves every test.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from netns_shell.cli import build_parser
from netns_shell.commands import Registry, build_registry
from netns_shell.extensions import PluginLoader, builtin_plugin_names

ROOT = Path(__file__).resolve().parent.parent
HOOK = ROOT / "docs" / "hooks" / "command_reference.py"

pytestmark = pytest.mark.xdist_group("docs")  # one build per worker that runs these


def _text(fragment: str) -> str:
    """The visible text of an HTML fragment."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _plain(markdown: str) -> str:
    """What a help text with `code` spans looks like once rendered."""
    return markdown.replace("`", "")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (it is in the test extras: pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


@pytest.fixture(scope="module")
def registry() -> Registry:
    """Built-in commands plus the shipped plugins, which must all load."""
    warnings: list[str] = []
    registry = build_registry()
    PluginLoader(warnings.append)(registry)
    assert warnings == [], warnings
    shipped = set(builtin_plugin_names())
    for command in list(registry):  # plugins of this machine (entry points) are not ours
        if command.source != "built-in" and command.source.removeprefix("plugin ") not in shipped:
            registry.commands.pop(command.name)
    return registry


@pytest.fixture(scope="module")
def reference(site: Path) -> str:
    return (site / "commands" / "index.html").read_text(encoding="utf-8")


def _sections(page: str) -> dict[str, str]:
    """Command name -> the HTML of its section (from its heading to the next heading)."""
    parts = re.split(r'(<h[23] id="[^"]*")', page)
    found = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        match = re.match(r'<h3 id="cmd-([^"]+)"', heading)
        if match:
            found[match.group(1)] = body
    return found


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = [next(iter(entry.values())) for entry in config["nav"]]
    assert pages[:4] == ["index.md", "getting-started.md", "overlay-walkthrough.md", "commands.md"]
    for page in pages:
        built = "index.html" if page == "index.md" else f"{page.removesuffix('.md')}/index.html"
        assert (site / built).is_file(), f"{page} was not built"
    assert not (site / "hooks").exists(), "the hook must not be published as a page or file"


def test_reference_lists_every_command_with_its_usage(reference: str, registry: Registry) -> None:
    assert "netns-shell:commands" not in reference, "the hook did not replace its marker"
    sections = _sections(reference)
    hook = _hook()
    expected = {hook.anchor(c.name).removeprefix("cmd-") for c in registry}
    assert set(sections) == expected, "the reference and the registry list different commands"
    for command in registry:
        key = hook.anchor(command.name).removeprefix("cmd-")
        assert key in sections, f"command {command.name!r} is missing from the reference"
        text = _text(sections[key])
        assert command.usage() in text, f"{command.name}: usage line missing"
        assert _plain(command.summary[1:]) in text, f"{command.name}: summary missing"
        for alias in command.aliases:
            assert alias in text, f"{command.name}: alias {alias!r} missing"
        for param in command.params:
            assert _plain(param.help) in text, f"{command.name}: help of {param.dest!r} missing"
        for example in command.examples:
            assert example in text, f"{command.name}: example {example!r} missing"
        source = "built-in" if command.source == "built-in" else "shipped plugin"
        assert f"Source: {source}" in text, f"{command.name}: source missing"


def test_reference_lists_every_cli_option(reference: str) -> None:
    assert "netns-shell:cli-options" not in reference, "the hook did not replace its marker"
    text = _text(reference[reference.index('id="command-line-options"') :])
    for action in build_parser()._actions:
        if action.help == argparse.SUPPRESS:  # hidden options (used by the completion script)
            continue
        for option in action.option_strings:
            assert option in text, f"CLI option {option} missing from the reference"
        if action.help:
            assert _plain(action.help) in text, f"help of {action.dest} missing from the reference"


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_command_reference_hook", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inline_text_cannot_break_a_table_or_start_markup() -> None:
    inline = _hook().inline
    assert inline("IP|MAC") == "IP&#124;MAC"
    assert inline("`a|b` and *c*") == "<code>a&#124;b</code> and \\*c\\*"
    assert inline("'*' marks <x>") == "'\\*' marks &lt;x&gt;"
    assert inline("an `unclosed backtick") == "an \\`unclosed backtick"
