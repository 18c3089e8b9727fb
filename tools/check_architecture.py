"""Architecture checks over the package's source, with the standard library only (``ast``).

Three checks, each printing its offenders as ``path:line: message``:

* ``cycles``: import cycles among the package's modules, counting imports inside functions
  (a function-level import only hides a cycle until the function runs). Imports under
  ``if TYPE_CHECKING:`` are not counted: they never run. Modules outside the package
  (SQLAlchemy, the optional pandas/polars/tqdm) are not nodes of the graph.
* ``size``: modules over 400 lines whose docstring does not say why ("Longer than 400 lines
  because ..."), and function bodies (docstring excluded) over 60 lines.
* ``dialect-names``: comparisons with a database's name (``name == "mysql"``,
  ``dialect.name in ("mysql", "mariadb")``) outside ``<package>/backend/dialects*``: such facts
  belong to the dialect objects.

Usage (from the repository root; exit status 1 when a check finds something)::

    python tools/check_architecture.py                      # every check
    python tools/check_architecture.py --check cycles,size  # some of them
    python tools/check_architecture.py --check cycles --report size   # size: printed only

Example (a tiny package with a cycle through a function-level import)::

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp()) / "pkg"
    >>> root.mkdir()
    >>> _ = (root / "__init__.py").write_text("")
    >>> _ = (root / "a.py").write_text("from . import b\\n")
    >>> _ = (root / "b.py").write_text("def f():\\n    from . import a\\n")
    >>> for problem in check_cycles(root):
    ...     print(problem.render(root.parent))
    pkg/a.py:1: import cycle pkg.a -> pkg.b -> pkg.a (pkg/b.py:2 imports pkg.a)
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CHECKS = ("cycles", "size", "dialect-names")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: The phrase a long module's docstring uses to say why it is long.
LONG_MODULE_MARKER = "longer than 400 lines because"
DIALECT_NAMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb"})


@dataclass(frozen=True, order=True)
class Problem:
    """One offender: where it is and what is wrong."""

    path: Path
    line: int
    message: str

    def render(self, base: Path) -> str:
        try:
            shown = self.path.relative_to(base)
        except ValueError:
            shown = self.path
        return f"{shown.as_posix()}:{self.line}: {self.message}"


# -- the package's modules ---------------------------------------------------------------------


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root`` (a folder with ``__init__.py``), by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# -- cycles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``line`` of the source's file (inside a function
    when ``in_function``)."""

    source: str
    target: str
    line: int
    in_function: bool = False


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


Imported = tuple[ast.Import | ast.ImportFrom, bool]


def _runtime_imports(node: ast.AST, in_function: bool = False) -> Iterator[Imported]:
    """Every import statement under ``node`` (at any depth) except ``if TYPE_CHECKING:`` ones,
    each with whether it sits inside a function."""
    inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, inside
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:  # the else branch does run
                if isinstance(other, (ast.Import, ast.ImportFrom)):
                    yield other, inside
                else:
                    yield from _runtime_imports(other, inside)
        else:
            yield from _runtime_imports(child, inside)


def _base_of(name: str, path: Path, stmt: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` reads from, in module ``name`` (file ``path``)."""
    if not stmt.level:
        return stmt.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if stmt.level > 1:
        package = package[: len(package) - (stmt.level - 1)]
    return ".".join([*package, *([stmt.module] if stmt.module else [])])


def import_edges(name: str, path: Path, known: Iterable[str]) -> list[Edge]:
    """The imports of module ``name`` that reach other modules in ``known``."""
    names = set(known)
    edges: list[Edge] = []
    for stmt, in_function in _runtime_imports(_parse(path)):
        targets: list[str] = []
        if isinstance(stmt, ast.Import):
            targets = [alias.name for alias in stmt.names]
        else:
            base = _base_of(name, path, stmt)
            for alias in stmt.names:
                sub = f"{base}.{alias.name}"
                # "from pkg import mod" runs pkg.mod; "from pkg import thing" runs pkg.
                targets.append(sub if sub in names else base)
        for target in targets:
            while target and target not in names:  # "import a.b.c" of a name inside a.b
                target = target.rpartition(".")[0]
            edge = Edge(name, target, stmt.lineno, in_function)
            if target and target != name and edge not in edges:  # "import a, b" of one module
                edges.append(edge)
    return edges


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's components of ``graph``, iteratively (no recursion limit on long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            successors = graph[node]
            if position < len(successors):
                work.append((node, position + 1))
                nxt = successors[position]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _path_within(graph: dict[str, list[str]], start: str, members: set[str]) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside one component (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for nxt in graph[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]


def check_cycles(root: Path, *, explain: bool = False) -> list[Problem]:
    """One problem per import cycle (a strongly connected group of modules), with one cycle
    through it spelled out and where its closing import is; ``explain`` adds one line per
    function-level import inside a group (the usual places a cycle hides)."""
    found = modules(root)
    edges = [edge for name, path in found.items() for edge in import_edges(name, path, found)]
    graph: dict[str, list[str]] = {name: [] for name in found}
    first_line: dict[tuple[str, str], int] = {}
    for edge in edges:
        if (edge.source, edge.target) not in first_line:
            graph[edge.source].append(edge.target)
            first_line[edge.source, edge.target] = edge.line
    problems = []
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        cycle = _path_within(graph, component[0], set(component))
        closing = (cycle[-2], cycle[-1])
        message = (
            f"import cycle {' -> '.join(cycle)} "
            f"({found[closing[0]].relative_to(root.parent).as_posix()}:{first_line[closing]} "
            f"imports {closing[1]})"
        )
        if len(component) > len(cycle) - 1:
            message += f"; the group also holds {', '.join(sorted(set(component) - set(cycle)))}"
        problems.append(Problem(found[cycle[0]], first_line[cycle[0], cycle[1]], message))
        if explain:
            members = set(component)
            problems += [
                Problem(
                    found[e.source],
                    e.line,
                    f"function-level import of {e.target} inside the cycle through {cycle[0]}",
                )
                for e in edges
                if e.in_function and e.source in members and e.target in members
            ]
    return sorted(problems)


# -- size --------------------------------------------------------------------------------------


def _body_lines(func: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = func.body
    first = body[0]
    if (
        len(body) > 1
        and isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        first = body[1]  # the docstring is documentation, not body
    end = body[-1].end_lineno or body[-1].lineno
    return end - first.lineno + 1


def check_size(
    root: Path, max_module: int = MAX_MODULE_LINES, max_function: int = MAX_FUNCTION_LINES
) -> list[Problem]:
    """Long modules without a stated reason, and long function bodies."""
    problems = []
    for path in modules(root).values():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        lines = len(source.splitlines())
        docstring = " ".join((ast.get_docstring(tree) or "").lower().split())
        marker = LONG_MODULE_MARKER.replace("400", str(max_module))
        if lines > max_module and marker not in docstring:
            problems.append(
                Problem(
                    path,
                    1,
                    f"module has {lines} lines (over {max_module}) and its docstring does not "
                    f"say why (\"Longer than {max_module} lines because ...\")",
                )
            )
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = _body_lines(node)
                if length > max_function:
                    problems.append(
                        Problem(
                            path,
                            node.lineno,
                            f"function {node.name}() has a body of {length} lines "
                            f"(over {max_function})",
                        )
                    )
    return sorted(problems)


# -- dialect names -----------------------------------------------------------------------------


def _names_in(node: ast.expr) -> set[str]:
    """The database names a comparison operand spells (a string, or a tuple/list/set of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & DIALECT_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_names_in(e) for e in node.elts)) if node.elts else set()
    return set()


def _is_dialect_module(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return len(parts) >= 2 and parts[0] == "backend" and parts[1].startswith("dialects")


def check_dialect_names(root: Path) -> list[Problem]:
    """Comparisons with a database name outside the dialect modules."""
    problems = []
    for path in modules(root).values():
        if _is_dialect_module(path, root):
            continue
        for node in ast.walk(_parse(path)):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
                continue
            spelled = set().union(*(_names_in(e) for e in [node.left, *node.comparators]))
            if spelled:
                problems.append(
                    Problem(
                        path,
                        node.lineno,
                        f"compares with the database name(s) {', '.join(sorted(spelled))}: "
                        "ask the dialect object instead",
                    )
                )
    return sorted(problems)


# -- command line ------------------------------------------------------------------------------


def run(root: Path, checks: Sequence[str], *, explain: bool = False) -> list[Problem]:
    """The problems the named checks find in the package at ``root``."""
    problems: list[Problem] = []
    for check in checks:
        if check == "cycles":
            problems += check_cycles(root, explain=explain)
        elif check == "size":
            problems += check_size(root)
        elif check == "dialect-names":
            problems += check_dialect_names(root)
        else:
            raise SystemExit(f"unknown check {check!r}; the checks are {', '.join(CHECKS)}")
    return problems


def _names(raw: str) -> list[str]:
    return [c.strip() for c in raw.split(",") if c.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        default=",".join(CHECKS),
        help=f"comma-separated checks that fail the run (default: all of {','.join(CHECKS)})",
    )
    parser.add_argument(
        "--report",
        default="",
        help="comma-separated checks whose findings are printed without failing the run "
        "(for a check a refactor has yet to make pass)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="cycles: also list each function-level import inside a cycle's group",
    )
    parser.add_argument(
        "--package",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "activerecord",
        help="the package directory (default: activerecord next to tools/)",
    )
    args = parser.parse_args(argv)
    root = args.package.resolve()
    failing = 0
    for checks, enforced in ((_names(args.check), True), (_names(args.report), False)):
        if not checks:
            continue
        problems = run(root, checks, explain=args.explain)
        for problem in problems:
            print(problem.render(root.parent) + ("" if enforced else " [report only]"))
        verdict = f"{len(problems)} problem(s)" if problems else "ok"
        mode = "" if enforced else ", report only"
        print(f"check_architecture ({', '.join(checks)}{mode}): {verdict}", file=sys.stderr)
        if enforced:
            failing += len(problems)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
