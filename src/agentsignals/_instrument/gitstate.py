"""A product session's end state in its git repository: did the user apply (commit) the
agent's output, or revert it? Read with plain `git` commands at the session's close (live) or
at import time (`agentsignals import --git-state`), never raising.

- ``output_applied``: a commit made at or after the session's start touches a file the agent
  changed (`git log --since`).
- ``changes_reverted``: no such commit, and every file the agent changed is as it was in the
  commit the session started at (`git diff --quiet <base> -- files`, no untracked file among
  them): the changes were made and are gone.

Both are None when the folder is not a git work tree, git is missing, or the agent changed no
file (nothing to apply or revert).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from agentsignals._instrument.runtime import logger

__all__ = ["GitEndState", "head_commit", "session_end_state"]

_TIMEOUT_S = 10.0
_REPO_VARIABLES = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
    }
)


@dataclass(frozen=True)
class GitEndState:
    output_applied: bool | None
    changes_reverted: bool | None


def _git(repo: str, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    git = shutil.which("git")
    if git is None:
        return None
    # The repository in `repo`, whatever a host's environment points git at.
    env = {k: v for k, v in os.environ.items() if k not in _REPO_VARIABLES}
    try:
        return subprocess.run(
            [git, "-C", repo, *args],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("session git state: git %s failed: %s", args[0], exc)
        return None


def head_commit(repo: str) -> str | None:
    """The commit HEAD names now (None outside a git work tree or before the first commit)."""
    proc = _git(repo, "rev-parse", "--verify", "-q", "HEAD")
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.decode().strip() or None


def _commit_at(repo: str, started_ns: int) -> str | None:
    proc = _git(repo, "rev-list", "-1", f"--before=@{started_ns // 1_000_000_000}", "HEAD")
    if proc is None or proc.returncode != 0:
        return None
    return proc.stdout.decode().strip() or None


def session_end_state(
    repo: str | None,
    files: Sequence[str],
    *,
    started_ns: int | None,
    base_commit: str | None = None,
) -> GitEndState:
    """The end state of the agent's changes to `files` (absolute, or relative to `repo`) in
    the repository `repo`, for a session that started at `started_ns` on `base_commit`
    (default: the last commit before the start)."""
    unknown = GitEndState(None, None)
    if not repo or not files or started_ns is None or not os.path.isdir(repo):
        return unknown
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0:
        return unknown
    root = os.path.realpath(top.stdout.decode().strip())
    here = os.path.realpath(repo)
    paths = sorted({os.path.relpath(os.path.join(here, f), root) for f in files})
    paths = [p for p in paths if not p.startswith("..")]
    if not paths:
        return unknown
    since = f"--since=@{started_ns // 1_000_000_000}"
    log = _git(root, "log", "--format=%H", since, "--", *paths)
    if log is None or log.returncode != 0:
        return unknown
    applied = bool(log.stdout.strip())
    if applied:
        return GitEndState(True, False)
    base = base_commit or _commit_at(root, started_ns)
    if base is None:
        return GitEndState(False, None)
    diff = _git(root, "diff", "--quiet", base, "--", *paths)
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--", *paths)
    if diff is None or untracked is None or diff.returncode not in (0, 1):
        return GitEndState(False, None)
    reverted = diff.returncode == 0 and not untracked.stdout.strip()
    return GitEndState(False, reverted)
