"""The project guide's size limit, checked: no function or method in app/ over 80 lines.

Complexity (<= 12) is ruff's C90 rule (pyproject.toml); ruff has no rule for length, so
this walks the source with ast. A long function is split into named steps, not excused."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
MAX_LINES = 80


def long_functions(root: Path, limit: int) -> list[str]:
    """`path:line name (N lines)` of every function longer than `limit` lines, decorators
    not counted."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found.append(
                        f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)"
                    )
    return found


def test_no_function_in_app_is_over_80_lines() -> None:
    assert long_functions(APP, MAX_LINES) == []


def test_the_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    (tmp_path / "module.py").write_text(f"def short():\n    pass\n\n\nasync def long():\n{body}")
    assert long_functions(tmp_path, MAX_LINES) == [
        f"{tmp_path.name}/module.py:5 long ({MAX_LINES + 1} lines)"
    ]
