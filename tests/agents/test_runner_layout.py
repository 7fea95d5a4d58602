"""The runner stays a package of small phases (issue 18 item 1): no module over 400 lines, no function over 60.

An AST walk over agents/runner/: a function's length is its span in the source, decorators and
docstring included, nested functions counted within their parent as well as on their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agents.runner

PACKAGE = Path(agents.runner.__file__).parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def function_lengths(path: Path) -> dict[str, int]:
    lengths = {}
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lengths[f"{path.name}:{node.lineno} {node.name}"] = (node.end_lineno or node.lineno) - first + 1
    return lengths


def test_the_runner_is_a_package_of_small_modules() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 6, [m.name for m in modules]
    too_long = {m.name: n for m in modules if (n := len(m.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_no_runner_function_is_over_sixty_lines() -> None:
    lengths = {name: n for path in sorted(PACKAGE.glob("*.py")) for name, n in function_lengths(path).items()}
    assert len(lengths) > 20  # the walk sees the runner's functions
    too_long = {name: n for name, n in lengths.items() if n > MAX_FUNCTION_LINES}
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_the_walk_measures_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert function_lengths(tmp_path / "m.py") == {"m.py:1 long": 71, "m.py:74 short": 2}


if __name__ == "__main__":
    for name, n in sorted(
        ((name, n) for p in PACKAGE.glob("*.py") for name, n in function_lengths(p).items()), key=lambda x: -x[1]
    )[:10]:
        print(n, name)
