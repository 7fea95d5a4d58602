"""Run a command as the unprivileged worker user (`horizon-worker`, created by scripts/test.sh when it runs as root)."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKER_USER = os.environ.get("HORIZON_REDTEAM_USER", "horizon-worker")


def _blocked_ancestor(path: str) -> str | None:
    """The outermost directory above `path` that users other than its owner cannot traverse."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        here = os.path.join(*parts[:i])
        if os.path.isdir(here) and not os.stat(here).st_mode & 0o001:
            return here
    return None


def as_worker_user(argv: list[str]) -> list[str]:
    """argv run by the unprivileged worker user. The interpreter (a pyenv under /root, say) and the
    checkout may sit below a directory that user cannot traverse: a bwrap run as root (a mount namespace
    only) lays an empty, traversable directory over each such one and binds back only what is needed."""
    if os.geteuid() != 0:
        return argv  # the suite's user is unprivileged already
    try:
        user = pwd.getpwnam(WORKER_USER)
    except KeyError:
        pytest.fail(f"no user {WORKER_USER}: create it (useradd --system {WORKER_USER}; scripts/test.sh does)")
    needed = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), str(REPO)})
    blocked = sorted({b for p in needed if (b := _blocked_ancestor(p))})
    drop = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    if not blocked:
        return drop + argv
    wrap = [str(shutil.which("bwrap")), "--dev-bind", "/", "/"]
    for directory in blocked:
        wrap += ["--perms", "0755", "--tmpfs", directory]
        for path in (p for p in needed if p.startswith(directory + "/")):
            # bwrap would make the directories between 0700: make them traversable first.
            between = Path(path).relative_to(directory).parents
            for parent in sorted(str(Path(directory) / d) for d in between if str(d) != "."):
                wrap += ["--perms", "0755", "--dir", parent]
            wrap += ["--bind", path, path]
    return wrap + ["--"] + drop + argv
