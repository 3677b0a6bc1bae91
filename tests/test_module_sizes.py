"""Modules a person can hold in their head (issue 13): no module under ``meshnode/`` over 600
lines, no function over 60 lines (decorators included). Read with ``ast``, not imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "meshnode"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def _function_lengths(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            end = node.end_lineno or node.lineno
            found.append((f"{node.name} (line {node.lineno})", end - start + 1))
    return found


def test_sizes__no_module_is_over_600_lines() -> None:
    # Given every module of the package, When their lines are counted
    over = {
        str(path.relative_to(PACKAGE_DIR.parent)): lines
        for path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    # Then none is over the limit (split by concern, as services/iou/ and services/ledger/)
    assert over == {}


def test_sizes__no_function_is_over_60_lines() -> None:
    # Given every function and method of the package, When their spans are measured
    over = [
        f"{path.relative_to(PACKAGE_DIR.parent)}: {name} is {length} lines"
        for path in _modules()
        for name, length in _function_lengths(path)
        if length > MAX_FUNCTION_LINES
    ]
    # Then none is over the limit
    assert over == []


def test_sizes__the_check_sees_a_long_function(tmp_path: Path) -> None:
    # Given a module with a 61-line function, When it is measured, Then it is reported
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    path = tmp_path / "long.py"
    path.write_text(f"def long() -> None:\n{body}\n", encoding="utf-8")
    assert _function_lengths(path) == [("long (line 1)", 61)]
