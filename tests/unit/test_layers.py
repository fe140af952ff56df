"""The layer contract of issue 11: who may import whom, no cycles, no file over 500 lines.

The contracts themselves are in pyproject.toml ([tool.importlinter]) and are checked by
import-linter. The cycle check here is our own, over the source with `ast`, because it
also names the lines that close each cycle, including imports inside functions and under
`if TYPE_CHECKING:` (both are marked: they still tie the modules together).
"""

from __future__ import annotations

import ast
import itertools
import os
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PACKAGES = ("hall_agent", "hallctl", "drivers", "sim", "kiosk", "bench", "central")
MAX_LINES = 500


def source_files() -> dict[str, Path]:
    """Every project module by dotted name (a package by its own name, not ``__init__``)."""
    modules: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def test_the_import_contracts_in_pyproject_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), f"{lint} is missing: pip install -e '.[test]' (import-linter)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # bench/ is not an installed package
    r = subprocess.run([str(lint), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
                       cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, f"lint-imports found broken contracts:\n{r.stdout}{r.stderr}"


def test_no_project_source_file_is_over_500_lines() -> None:
    long = {}
    for path in source_files().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[str(path.relative_to(ROOT))] = n
    listing = "\n".join(f"  {name}: {n} lines" for name, n in
                        sorted(long.items(), key=lambda kv: -kv[1]))
    assert not long, f"{len(long)} files are over {MAX_LINES} lines; split them:\n{listing}"


@dataclass(frozen=True)
class Edge:
    line: int
    how: str  # "" (module level), "in a function", "under TYPE_CHECKING"

    def __str__(self) -> str:
        return f"l.{self.line}" + (f" {self.how}" if self.how else "")


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path, known: set[str]) -> dict[str, list[Edge]]:
    """The project modules ``module`` imports, anywhere in it, each with the lines that do."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, list[Edge]] = {}

    def add(target: str, node: ast.stmt, how: str) -> None:
        # `import a.b.c` where only a.b is ours, or a module that is not there: nearest ours.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if not target or target == module:
            return
        edges = found.setdefault(target, [])
        if Edge(node.lineno, how) not in edges:  # `from a import b, c`: one line, once
            edges.append(Edge(node.lineno, how))

    def visit(node: ast.AST, how: str) -> None:
        for child in ast.iter_child_nodes(node):
            child_how = how
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                child_how = how or "in a function"
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, how)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = _package_of(module, path).split(".")
                    anchor = anchor[:len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    add(sub if sub in known else base, child, how)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), "under TYPE_CHECKING")
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), how)
                continue
            if not isinstance(child, ast.Import | ast.ImportFrom):
                visit(child, child_how)

    visit(tree, "")
    return found


def import_graph() -> dict[str, dict[str, list[Edge]]]:
    modules = source_files()
    known = set(modules)
    return {m: imports_of(m, p, known) for m, p in modules.items()}


def strongly_connected(graph: dict[str, dict[str, list[Edge]]]) -> list[list[str]]:
    """Tarjan's components, iteratively (no recursion limit); only those with a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop(0)
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, {}))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in graph[node]:
                    out.append(sorted(comp))
    return out


def shortest_cycle_through(graph: dict[str, dict[str, list[Edge]]], start: str,
                           within: set[str]) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node]):
            if nxt not in within:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return []


def describe_cycles(graph: dict[str, dict[str, list[Edge]]]) -> list[str]:
    """Per tangle of modules, the shortest cycle through each of them, once each."""
    reports = []
    for comp in strongly_connected(graph):
        seen: set[tuple[str, ...]] = set()
        lines = [f"{len(comp)} modules import each other: {', '.join(comp)}"]
        for module in comp:
            cycle = shortest_cycle_through(graph, module, set(comp))
            turn = cycle.index(min(cycle[:-1]))
            key = tuple(cycle[turn:-1] + cycle[:turn])
            if key in seen:
                continue
            seen.add(key)
            hops = [f"{a} ({'; '.join(map(str, graph[a][b]))})" for a, b in
                    itertools.pairwise(cycle)]
            lines.append("  " + " → ".join([*hops, cycle[-1]]))
        reports.append("\n".join(lines))
    return reports


def test_project_modules_import_no_cycle() -> None:
    cycles = describe_cycles(import_graph())
    assert not cycles, "import cycles (each hop: the importing lines):\n" + "\n".join(cycles)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(
        tmp_path: Path) -> None:
    # The checker itself: a → b at module level, b → a inside a function (a lazy import is
    # still a cycle), and `from pkg import c` naming the module pkg.c.
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    files = {"a": "from pkg import b\n", "b": "def f():\n    from . import a\n",
             "c": "import pkg.a\n"}
    graph = {}
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text)
        graph[f"pkg.{name}"] = imports_of(f"pkg.{name}", tmp_path / f"{name}.py", known)
    graph["pkg"] = {}
    assert graph["pkg.c"] == {"pkg.a": [Edge(1, "")]}
    (report,) = describe_cycles(graph)
    assert "pkg.a (l.1) → pkg.b (l.2 in a function) → pkg.a" in report
