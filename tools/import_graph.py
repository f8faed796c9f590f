"""Print which netns_shell module imports which (read from the source, nothing is imported).

    python tools/import_graph.py [--root DIR]

One line per module: `module -> a, b` for imports run when the module loads,
`lazy: ...` for imports inside functions (run on first use), `types: ...` for
imports under `if TYPE_CHECKING:` (never run).  Module names drop the
`netns_shell.` prefix.  The last lines name the import cycles, if any, among
load-time and type-only imports (a cycle through type-only imports is still a
design cycle: two modules that each need the other to be described).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "netns_shell"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]):
    """The package modules an import statement names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    found = []
    for name in names:
        if name in known:
            found.append(name)
    # `from . import x` names submodule x, not the package itself
    if isinstance(node, ast.ImportFrom) and len(found) > 1 and names[0] in found:
        found.remove(names[0])
    return found


def _file_edges(path: Path, module: str, known: set[str]) -> dict[str, set[str]]:
    """{"load", "lazy", "types"} -> package modules one file imports."""
    edges: dict[str, set[str]] = {"load": set(), "lazy": set(), "types": set()}
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.body:
                    visit_one(sub, "types")
                for sub in child.orelse:
                    visit_one(sub, where)
                continue
            nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit_one(child, "lazy" if nested and where == "load" else where)

    def visit_one(child: ast.AST, kind: str) -> None:
        if isinstance(child, ast.Import | ast.ImportFrom):
            for target in _targets(child, module, is_package, known):
                if target != module:
                    edges[kind].add(target)
        visit(child, kind)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "load")
    edges["lazy"] -= edges["load"]
    edges["types"] -= edges["load"] | edges["lazy"]
    return edges


def import_graph(root: Path) -> dict[str, dict[str, set[str]]]:
    """module -> {"load": set, "lazy": set, "types": set} of package modules it imports."""
    files = sorted((root / PACKAGE).rglob("*.py"))
    known = {_module_name(f, root) for f in files}
    return {_module_name(f, root): _file_edges(f, _module_name(f, root), known) for f in files}


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Strongly connected components (size > 1) over load-time and type-only edges (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def edges(m: str) -> set[str]:
        return graph[m]["load"] | graph[m]["types"]

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges(v)):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph):
        if module not in index:
            strong(module)
    return sorted(found)


def _short(name: str) -> str:
    return name[len(PACKAGE) + 1 :] if name.startswith(PACKAGE + ".") else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    options = parser.parse_args(argv)
    graph = import_graph(Path(options.root))
    for module in sorted(graph):
        edges = graph[module]
        parts = [", ".join(sorted(map(_short, edges["load"]))) or "-"]
        for kind in ("lazy", "types"):
            if edges[kind]:
                parts.append(f"{kind}: " + ", ".join(sorted(map(_short, edges[kind]))))
        print(f"{_short(module) or PACKAGE} -> " + "; ".join(parts))
    found = cycles(graph)
    print(f"cycles (load-time and type-only imports): {len(found)}")
    for component in found:
        print("  " + " <-> ".join(map(_short, component)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
