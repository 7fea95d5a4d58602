"""The documentation lives in the repository: a short README that starts with the two commands and links
every page of docs/, and one configuration table that names every variable the settings read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# settings.py and the settings_*.py modules it imports, by concept.
SETTINGS = sorted((ROOT / "horizon_project").glob("settings*.py"))
READERS = {"env", "env_int", "env_float", "env_bool"}


def settings_variables() -> set[str]:
    """Every name the settings modules read from the environment: env("X"...), env_int/env_float/env_bool("X"...),
    os.environ.get("X"...), os.getenv("X"...) and os.environ["X"], found by walking their syntax trees."""
    names: set[str] = set()
    nodes = [node for module in SETTINGS for node in ast.walk(ast.parse(module.read_text()))]
    for node in nodes:
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            reader = (
                (isinstance(func, ast.Name) and func.id in READERS)
                or (isinstance(func, ast.Attribute) and func.attr == "get" and ast.unparse(func.value) == "os.environ")
                or (isinstance(func, ast.Attribute) and func.attr == "getenv" and ast.unparse(func.value) == "os")
            )
            if reader and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
        elif (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            names.add(node.slice.value)
    return names


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    first_block = re.search(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    # Nothing but the title and a few lines of what Horizon is come before them.
    assert text.index("```") < text.index("\n## ", text.index("## The two commands") + 1)
    assert text.splitlines()[0] == "# Horizon"


def test_every_page_of_docs_is_linked_from_the_readme() -> None:
    links = set(re.findall(r"\]\((docs/[^)#\s]+)", README.read_text()))
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert pages, "docs/ holds no page"
    assert pages - links == set(), f"not linked from README.md: {sorted(pages - links)}"


def test_every_variable_the_settings_read_is_in_the_configuration_table() -> None:
    names = settings_variables()
    assert {"DATABASE_URL", "HORIZON_LEASE_SECONDS", "PROMETHEUS_MULTIPROC_DIR", "HORIZON_VAR_DIR"} <= names  # the walk works
    rows = [line for line in (ROOT / "docs" / "configuration.md").read_text().splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split(" | ")[0])}
    assert names - documented == set(), f"read by the settings, missing from docs/configuration.md: {sorted(names - documented)}"
