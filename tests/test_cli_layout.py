"""The CLI's own layering, read with `ast`: one module builds the app, commands never import each other.

Why: commands that import each other (and `main` for its `app`) made `cli/` one import loop;
shared pieces live in `common`, `options` and `progress`, and only `main` names the commands.
"""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "highlighter" / "cli"
SHARED = {"common", "options", "progress"}  # what commands may use


def cli_imports(path: Path) -> set[str]:
    """The `highlighter.cli` modules ``path`` imports (eagerly or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "highlighter.cli":
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("highlighter.cli."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("highlighter.cli.")}
    return found


def test_commands_import_only_shared_modules():
    commands = {p.stem for p in CLI.glob("*.py")} - SHARED - {"main", "__init__"}
    assert {"detect", "trim", "weights", "methods"} <= commands
    bad = {c: sorted(cli_imports(CLI / f"{c}.py") - SHARED) for c in commands}
    assert not {c: b for c, b in bad.items() if b}, bad
    assert all(cli_imports(CLI / f"{m}.py") <= {"common"} for m in SHARED)  # shared pieces stay below commands
    assert commands <= cli_imports(CLI / "main.py")  # main registers every command
