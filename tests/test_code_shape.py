"""Keeps the package's functions short (CONTRIBUTING.md: at most 80 lines each,
docstring and decorators included), so a long one fails here rather than in review."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "maskrcnn_native"
MAX_LINES = 80


def _functions(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            yield node.name, node.lineno, node.end_lineno - first + 1


def test_sources_found():
    files = list(PACKAGE.rglob("*.py"))
    assert len(files) > 30, files  # the check below must not pass on an empty tree
    assert any(name == "forward" for f in files for name, _, _ in _functions(f))


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_longer_than_80_lines(path):
    long = [f"{path.name}:{line} {name} ({n} lines)" for name, line, n in _functions(path) if n > MAX_LINES]
    assert not long, long
