"""The package's layering, read from the source with `ast` (nothing is imported).

Why: the pipeline is io -> features -> methods/outputs -> eval -> api/train -> cli, and
each stage must stay usable (and testable) without the ones above it. An upward import,
or an import loop, is how that silently erodes; this test names the offending line.

`STAGES` is the one place the order is written. A module's stage is its first component
under ``highlighter`` (a sub-package, or a module at the package root).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "highlighter"

# Bottom to top. Within one stage, different components may not import each other,
# except the plumbing at the bottom (pure helpers every stage shares).
STAGES: list[set[str]] = [
    {"__init__", "errors", "atomic", "interrupts", "registry", "settings", "scores", "batch", "batch_ray",
     "timeparse"},  # plumbing
    {"io"},
    {"features"},
    {"methods", "outputs"},  # independent of each other: `scores` holds what both need
    {"eval"},
    {"api", "train"},
    {"cli"},
    {"__main__"},
]
PLUMBING = 0
RANK = {name: i for i, names in enumerate(STAGES) for name in names}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def component(module: str) -> str:
    """``highlighter.eval.harness`` -> ``eval``; ``highlighter`` (its __init__) -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (None: outside it)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        cand = ".".join(parts[:n])
        if cand in known:
            return cand
    return None


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported module of the package, line, runs at import time) for every import in ``module``.

    Imports inside functions run later (lazy); those under ``if TYPE_CHECKING`` never run.
    Both still count as dependencies for the stage order; only eager ones can form a loop.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, int, bool]] = []

    def base_of(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = module.split(".")
        up = parts if is_pkg else parts[:-1]
        up = up[: len(up) - (node.level - 1)]
        return ".".join(up + ([node.module] if node.module else []))

    def visit(node: ast.AST, eager: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                visit(child, False)
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if (target := resolve(a.name, known)) is not None:
                        out.append((target, child.lineno, eager))
            elif isinstance(child, ast.ImportFrom):
                base = base_of(child)
                for a in child.names:  # `from pkg import submodule` imports the submodule
                    target = f"{base}.{a.name}" if f"{base}.{a.name}" in known else resolve(base, known)
                    if target is not None:
                        out.append((target, child.lineno, eager))
            else:
                visit(child, eager)

    visit(tree, True)
    return out


def graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int, bool]]]]:
    known = modules()
    return known, {m: imports(m, p, known) for m, p in known.items()}


def test_every_module_has_a_stage():
    missing = sorted({component(m) for m in modules()} - set(RANK))
    assert not missing, f"add these to STAGES in {__file__}: {missing}"


def allowed(src: str, dst: str) -> bool:
    a, b = component(src), component(dst)
    if a == b:
        return True
    ra, rb = RANK[a], RANK[b]
    return rb < ra or ra == rb == PLUMBING


def test_no_import_from_a_lower_stage_to_a_higher_one():
    known, edges = graph()
    bad = [f"{known[src].relative_to(PKG.parent)}:{line}: {component(src)} imports {dst} ({component(dst)})"
           for src, targets in edges.items() for dst, line, _ in targets
           if component(src) in RANK and component(dst) in RANK and not allowed(src, dst)]
    assert not bad, "imports against the stage order " + " < ".join("/".join(sorted(s)) for s in STAGES) + \
        ":\n" + "\n".join(bad)


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), via Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def test_no_import_loop():
    _, edges = graph()
    eager = {m: {dst for dst, _, now in ts if now and dst != m} for m, ts in edges.items()}
    # a package's __init__ importing its own modules, which import the package, is how packages work
    for m in eager:
        eager[m] = {d for d in eager[m] if not m.startswith(d + ".")}
    cycles = find_cycles(eager)
    assert not cycles, "import loops (modules that import each other when loaded):\n" + \
        "\n".join(" <-> ".join(c) for c in cycles)


# --- the checker itself -------------------------------------------------------------------------


def test_checker_sees_an_upward_import_and_a_loop(tmp_path, monkeypatch):
    """The rules above must be able to fail: a fake package with one of each."""
    pkg = tmp_path / "highlighter"
    for rel, text in {
        "__init__.py": "",
        "io/__init__.py": "",
        "io/probe.py": "def f():\n    from highlighter.eval import harness\n",  # lazy, still upward
        "eval/__init__.py": "",
        "eval/harness.py": "from . import metrics\n",
        "eval/metrics.py": "from highlighter.eval.harness import x\n",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    monkeypatch.setitem(globals(), "PKG", pkg)
    with pytest.raises(AssertionError, match=r"io/probe.py:2: io imports highlighter.eval.harness"):
        test_no_import_from_a_lower_stage_to_a_higher_one()
    with pytest.raises(AssertionError, match="highlighter.eval.harness <-> highlighter.eval.metrics"):
        test_no_import_loop()
