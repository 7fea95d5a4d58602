"""No project module is longer than 400 lines (migrations and tests aside): a module that grows past it
holds more than one concern and is split along them."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "tasks_app", "horizon_project")
MAX_LINES = 400


def module_lines() -> dict[str, int]:
    """Each project module (path relative to the repository) and its number of lines."""
    sizes: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or "tests" in relative.parts:
                continue
            sizes[relative.as_posix()] = len(path.read_text(encoding="utf-8").splitlines())
    return sizes


def test_the_walk_finds_the_project_modules() -> None:
    sizes = module_lines()
    assert {"agents/errors.py", "tasks_app/apps.py", "horizon_project/settings.py"} <= set(sizes)
    assert not any("/migrations/" in path for path in sizes)


def test_no_project_module_exceeds_400_lines() -> None:
    offenders = {path: lines for path, lines in module_lines().items() if lines > MAX_LINES}
    listed = ", ".join(f"{path} ({lines} lines)" for path, lines in sorted(offenders.items(), key=lambda item: -item[1]))
    assert not offenders, f"modules over {MAX_LINES} lines: {listed}"
