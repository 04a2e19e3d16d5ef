"""`highlighter methods list` (table and --json) and where `--method`'s help points."""

from __future__ import annotations

import json
import os
import subprocess

from typer.testing import CliRunner

from highlighter.cli.main import app
from highlighter.methods import DEFAULT_METHOD, available_methods, describe_methods
from test_cli_info import cli_command, run_cli

runner = CliRunner()


def test_methods_list_json_is_the_catalog():
    r = runner.invoke(app, ["methods", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    by_name = {row["name"]: row for row in rows}
    assert sorted(by_name) == sorted(available_methods())
    assert [n for n, row in by_name.items() if row["default"]] == [DEFAULT_METHOD]
    for m in describe_methods():
        row = by_name[m.name]
        assert (row["supervised"], row["modalities"], row["results"]) == (m.supervised, list(m.modalities), m.results)
        assert [(w["target"], w["path"]) for w in row["weights"]] == [(w.target, str(w.path)) for w in m.weights]
    assert by_name["hpcl"]["supervised"] and not by_name["rasl"]["supervised"]
    assert all(os.path.isfile(w["path"]) for row in rows for w in row["weights"])


def test_methods_list_table_is_whole_when_piped():
    """80 columns and stdout not a terminal (`| cat`): no cell may be cut to "…"."""
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    res = subprocess.run([*cli_command(), "methods", "list"], capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr
    assert "…" not in res.stdout, res.stdout
    infos = describe_methods()
    for m in infos:
        row = next(line for line in res.stdout.splitlines() if line.startswith(f"│ {m.name} "))
        assert ("yes" if m.supervised else "no") in row and "+".join(m.modalities) in row
        assert all(cell in row for cell in m.results.values()), (row, m.results)
        assert (" * " in row) == m.default
    assert all(col in res.stdout for m in infos for col in m.results)


def test_method_help_points_at_methods_list():
    for cmd in ("detect", "trim", "train", "evaluate"):
        res = run_cli(cmd, "--help")
        assert res.returncode == 0, res.stderr
        assert "highlighter methods list" in res.stdout, (cmd, res.stdout)
        assert "highlighter info" not in res.stdout  # which lists no methods
