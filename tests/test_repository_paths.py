"""No tracked file points outside the repository: a clone is everything a reader and the code need.

The design notes, the briefs and the machine the project was written on are not part of a clone, so
a reference to them (a relative path climbing out of the repository, the development machine's
directories, someone's home directory) is a dead link for everyone else.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
OUTSIDE = re.compile(
    r"\.\./shared\b"  # the shared design notes next to the checkout
    r"|(?<![\w.])/work/"  # the development machine's work tree
    r"|(?<![\w.])/home/[a-z_][\w.-]*/"  # anyone's home directory
    r"|(?<![\w.])/root/"
    r"|(?<![\w.])/Users/"
    r"|\b[A-Za-z]:\\Users\\"
)
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary (the performance chart)
    return data.decode("utf-8", errors="replace")


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    found = []
    for name in _tracked():
        path = ROOT / name
        if name == SELF or path.is_symlink() or not path.is_file():
            continue
        text = _text(path)
        for number, line in enumerate((text or "").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()[:120]}")
    assert found == []


def test_relative_links_in_the_documentation_stay_inside_the_repository_and_exist() -> None:
    found = []
    for name in _tracked():
        if not name.endswith(".md"):
            continue
        for target in MARKDOWN_LINK.findall((ROOT / name).read_text()):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL, or an anchor in the same page
            resolved = ((ROOT / name).parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                found.append(f"{name}: {target}")
    assert found == []


def test_no_tracked_symlink_leads_outside_the_repository() -> None:
    found = []
    for name in _tracked():
        path = ROOT / name
        if path.is_symlink() and not (path.parent / os.readlink(path)).resolve().is_relative_to(ROOT):
            found.append(f"{name} -> {os.readlink(path)}")
    assert found == []
