"""The layers hold: no import cycles, and the library layer never reaches up to the shell.

Read from the source by tools/import_graph.py (nothing is imported), so a lazy
import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from import_graph import cycles, import_graph  # noqa: E402

#: the shell: parsing, the REPL, the session, handlers; the plugin loaders (plugin,
#: extensions) sit between: the library may ask them for a plugin's reader (collect -> ipvs)
SHELL = {"__main__", "cli", "repl", "session", "pipeline", "completion"}
BETWEEN = {"plugin", "extensions"}


def _graph() -> dict[str, dict[str, set[str]]]:
    return {
        name.removeprefix("netns_shell."): {
            kind: {t.removeprefix("netns_shell.") for t in targets}
            for kind, targets in edges.items()
        }
        for name, edges in import_graph(ROOT).items()
    }


def _is_shell(module: str) -> bool:
    return module in SHELL or module == "commands" or module.startswith("commands.")


def test_no_import_cycles():
    """None among imports run at load time, and none even through type-only imports (the
    registry <-> session and trace places <-> records ones are gone)."""
    graph = import_graph(ROOT)
    loading = {m: {"load": e["load"], "lazy": set(), "types": set()} for m, e in graph.items()}
    assert cycles(loading) == []
    assert cycles(graph) == []


def test_the_library_never_imports_the_shell():
    graph = _graph()
    wrong = {
        module: sorted(t for kind in edges.values() for t in kind if _is_shell(t))
        for module, edges in graph.items()
        if not _is_shell(module) and module not in BETWEEN and module != "netns_shell"
    }
    assert {m: t for m, t in wrong.items() if t} == {}


def test_handlers_see_a_context_not_the_session():
    graph = _graph()
    for module, edges in graph.items():
        if module.startswith("commands"):
            assert "session" not in set().union(*edges.values()), module


def test_the_script_prints_the_graph():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "import_graph.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "\ncatalogue -> " in out
    assert "cycles (load-time and type-only imports): " in out
