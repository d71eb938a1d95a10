"""WorkspaceTracker against real git repositories and plain folders (no mocks)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsignals._instrument.workspace import (
    FileChange,
    WorkspaceTracker,
    _count_lines,
    _parse_git_version,
    is_git_worktree,
)
from git_support import isolate_git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

A_PY = "".join(f"line {i}\n" for i in range(1, 11))
B_PY = "b1\nb2\nb3\nb4\nb5\n"
C_TXT = "c1\nc2\nc3\n"
MOD_PY = "import os\n\n\ndef f():\n"  # 4 lines
LOGO = bytes(range(256)) * 4


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path, monkeypatch)


def git(cwd: Path, *args: str, check: bool = True) -> str:
    # GIT_OPTIONAL_LOCKS=0: the test's own `git status` must not refresh the user's index,
    # or the before/after comparisons would measure the test instead of the tracker.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr.decode()}")
    return proc.stdout.decode(errors="surrogateescape")


def age(root: Path) -> None:
    """Move mtimes into the past so the folder backend trusts its stat cache."""
    past = time.time() - 30
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            os.utime(path, (past, past))


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)


def init_repo(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    write_files(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def repo_state(repo: Path) -> dict[str, object]:
    """Everything the tracker must leave alone, byte for byte."""
    git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir").strip())
    common = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    common = common if common.is_absolute() else (repo / common).resolve()
    files: dict[str, str] = {}
    for base in {git_dir, common}:
        for path in base.rglob("*"):
            if path.is_file():
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "index": (git_dir / "index").read_bytes() if (git_dir / "index").exists() else None,
        "head": git(repo, "rev-parse", "HEAD", check=False),
        "symbolic": git(repo, "symbolic-ref", "-q", "HEAD", check=False),
        "status": git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all"),
        "stash": git(repo, "stash", "list"),
        "refs": git(repo, "for-each-ref"),
        "git_files": files,
    }


@pytest.fixture(params=["git", "folder"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    files: dict[str, str | bytes] = {
        "a.py": A_PY,
        "b.py": B_PY,
        "c.txt": C_TXT,
        "logo.bin": LOGO,
        "pkg/mod.py": MOD_PY,
    }
    root = tmp_path / "ws"
    if request.param == "git":
        init_repo(root, files)
    else:
        root.mkdir()
        write_files(root, files)
    age(root)
    return root


@pytest.fixture
def tracker(workspace: Path) -> Iterator[WorkspaceTracker]:
    t = WorkspaceTracker(workspace)
    t.start()
    expected = "git" if (workspace / ".git").exists() else "folder"
    assert t.mode == expected
    yield t
    t.close()


def mod(path: str, added: int, removed: int) -> FileChange:
    return FileChange(path, "modified", added, removed)


def run(root: Path, *cmd: str) -> None:
    subprocess.run(list(cmd), cwd=root, check=True)


# ---------------------------------------------------------------------------------------
# Edits through every channel, both backends


def test_edit_channels(workspace: Path, tracker: WorkspaceTracker) -> None:
    root = workspace
    assert tracker.checkpoint() == []

    (root / "a.py").write_text(A_PY.replace("line 2\n", "LINE 2\n") + "line 11\n")
    assert tracker.checkpoint() == [mod("a.py", 2, 1)]

    if shutil.which("sed") is None:
        pytest.skip("sed not installed")
    run(root, "sed", "-i", "s/^b3$/B3/", "b.py")
    assert tracker.checkpoint() == [mod("b.py", 1, 1)]

    if shutil.which("bash") is None:
        pytest.skip("bash not installed")
    run(root, "bash", "-c", "cat > new.py <<'EOF'\nimport os\n\nprint(os.name)\nEOF")
    assert tracker.checkpoint() == [FileChange("new.py", "added", 3, 0)]

    script = "import pathlib; p = pathlib.Path('c.txt'); p.write_text(p.read_text()[3:])"
    run(root, sys.executable, "-c", script)
    assert tracker.checkpoint() == [mod("c.txt", 0, 1)]

    (root / "pkg" / "mod.py").unlink()
    assert tracker.checkpoint() == [FileChange("pkg/mod.py", "deleted", 0, 4)]

    (root / "logo.bin").write_bytes(LOGO[::-1])
    (root / "data.bin").write_bytes(b"\x00\x01\x02binary\n")
    assert tracker.checkpoint() == [
        FileChange("data.bin", "added", 0, 0, binary=True),
        FileChange("logo.bin", "modified", 0, 0, binary=True),
    ]

    os.rename(root / "b.py", root / "b2.py")
    assert tracker.checkpoint() == [
        FileChange("b.py", "deleted", 0, 5),
        FileChange("b2.py", "added", 5, 0),
    ]
    assert tracker.checkpoint() == []

    assert tracker.changes() == [
        mod("a.py", 2, 1),
        FileChange("b.py", "deleted", 0, 5),
        FileChange("b2.py", "added", 5, 0),
        mod("c.txt", 0, 1),
        FileChange("data.bin", "added", 0, 0, binary=True),
        FileChange("logo.bin", "modified", 0, 0, binary=True),
        FileChange("new.py", "added", 3, 0),
        FileChange("pkg/mod.py", "deleted", 0, 4),
    ]

    # Reverting: the checkpoint sees the edit back, the cumulative view drops the file.
    (root / "a.py").write_text(A_PY)
    assert tracker.checkpoint() == [mod("a.py", 1, 2)]
    assert "a.py" not in {c.path for c in tracker.changes()}
    # changes() does not consume anything a checkpoint would report.
    assert tracker.checkpoint() == []


def test_same_size_rewrites_are_seen(workspace: Path, tracker: WorkspaceTracker) -> None:
    # Rewrites within one timestamp tick keep (size, inode) and maybe mtime: the racy case.
    path = workspace / "c.txt"
    for i in range(6):
        path.write_text(f"c1\nX{i}\nc3\n")
        expected = [mod("c.txt", 1, 1)]
        assert tracker.checkpoint() == expected, i


def test_unchanged_checkpoint_skips_the_diff(workspace: Path, tracker: WorkspaceTracker) -> None:
    assert tracker.checkpoint() == []
    for _ in range(3):
        assert tracker.checkpoint() == []
        assert tracker.changes() == []
    assert tracker._diffs_run == 0
    backend = tracker._backend
    if tracker.mode == "git":
        # One `git status` per no-op checkpoint and nothing else.
        calls = backend.git_calls  # type: ignore[union-attr]
        tracker.checkpoint()
        assert backend.git_calls == calls + 1  # type: ignore[union-attr]
    else:
        assert backend.files_read == 5  # type: ignore[union-attr]  # the start snapshot

    # Touch without content change: stat differs, content does not.
    past = time.time() - 20
    os.utime(workspace / "a.py", (past, past))
    assert tracker.checkpoint() == []
    assert tracker._diffs_run == 0

    (workspace / "a.py").write_text(A_PY + "more\n")
    assert tracker.checkpoint() == [mod("a.py", 1, 0)]
    assert tracker._diffs_run == 1


def test_close_removes_temporary_files(workspace: Path) -> None:
    tracker = WorkspaceTracker(workspace)
    tracker.start()
    tmpdir = getattr(tracker._backend, "tmpdir", None)
    if tracker.mode == "git":
        assert tmpdir is not None and os.path.isdir(tmpdir)
    tracker.close()
    assert tracker.mode == "disabled"
    if tmpdir is not None:
        assert not os.path.exists(tmpdir)
    assert tracker.checkpoint() == []
    assert tracker.changes() == []


def test_odd_file_names(workspace: Path, tracker: WorkspaceTracker) -> None:
    names = ["dir with space/naïve file.py", ":(exclude)magic.py", "star*.py", "new\nline.py"]
    for name in names:
        write_files(workspace, {name: "x\n"})
    assert tracker.checkpoint() == [FileChange(n, "added", 1, 0) for n in sorted(names)]


# ---------------------------------------------------------------------------------------
# Git specifics


def test_baseline_is_the_working_tree_at_start(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"a.py": A_PY, "b.py": B_PY, "c.py": C_TXT})
    (repo / "a.py").write_text(A_PY + "staged\n")
    (repo / "s.py").write_text("staged new\n")
    git(repo, "add", "a.py", "s.py")
    (repo / "a.py").write_text(A_PY + "staged\nunstaged on top\n")
    (repo / "b.py").write_text(B_PY + "unstaged\n")
    (repo / "u.py").write_text("untracked\n")
    (repo / "c.py").unlink()
    git(repo, "stash", "list")
    before = repo_state(repo)
    assert before["status"]  # the repository really is dirty

    tracker = WorkspaceTracker(repo)
    tracker.start()
    assert tracker.mode == "git"
    assert tracker.checkpoint() == []
    assert tracker.changes() == []
    assert repo_state(repo) == before

    originals = {p: (repo / p).read_bytes() for p in ("a.py", "b.py", "u.py")}
    (repo / "b.py").write_text(B_PY + "unstaged\nagent\n")
    (repo / "u.py").write_text("untracked\nagent\n")
    (repo / "a.py").write_text(A_PY)
    assert tracker.checkpoint() == [mod("a.py", 0, 2), mod("b.py", 1, 0), mod("u.py", 1, 0)]
    assert tracker.changes() == [mod("a.py", 0, 2), mod("b.py", 1, 0), mod("u.py", 1, 0)]

    for rel, data in originals.items():
        (repo / rel).write_bytes(data)
    assert tracker.checkpoint() == [mod("a.py", 2, 0), mod("b.py", 0, 1), mod("u.py", 0, 1)]
    assert tracker.changes() == []
    tracker.close()
    assert repo_state(repo) == before


def _conflicted_repo(root: Path, operation: str) -> Path:
    repo = init_repo(root, {"f.txt": "l1\nl2\nl3\n", "other.py": "x = 1\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "f.txt").write_text("l1\nL2-feature\nl3\n")
    git(repo, "commit", "-q", "-am", "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "f.txt").write_text("l1\nL2-main\nl3\n")
    git(repo, "commit", "-q", "-am", "main")
    if operation == "rebase":
        git(repo, "checkout", "-q", "feature")
        assert git(repo, "rebase", "main", check=False) is not None
        assert (repo / ".git" / "rebase-merge").is_dir()
    else:
        git(repo, "merge", "feature", check=False)
        assert (repo / ".git" / "MERGE_HEAD").is_file()
    assert "<<<<<<<" in (repo / "f.txt").read_text()
    return repo


@pytest.mark.parametrize("operation", ["rebase", "merge"])
def test_conflicted_repository_is_left_alone(tmp_path: Path, operation: str) -> None:
    repo = _conflicted_repo(tmp_path / "repo", operation)
    (repo / "untracked.txt").write_text("u\n")
    before = repo_state(repo)
    assert "UU f.txt" in str(before["status"])

    tracker = WorkspaceTracker(repo)
    tracker.start()
    assert tracker.mode == "git"
    assert tracker.checkpoint() == []
    assert repo_state(repo) == before

    conflicted = (repo / "f.txt").read_bytes()
    (repo / "f.txt").write_text("l1\nL2-both\nl3\n")
    (repo / "notes.md").write_text("resolved\n")
    # Markers and both sides (5 lines) replaced by one line.
    assert tracker.checkpoint() == [mod("f.txt", 1, 5), FileChange("notes.md", "added", 1, 0)]
    assert tracker.changes() == [mod("f.txt", 1, 5), FileChange("notes.md", "added", 1, 0)]

    (repo / "f.txt").write_bytes(conflicted)
    (repo / "notes.md").unlink()
    assert tracker.changes() == []
    tracker.close()
    assert repo_state(repo) == before
    marker = "rebase-merge" if operation == "rebase" else "MERGE_HEAD"
    assert (repo / ".git" / marker).exists()


def test_gitignored_files_are_not_reported(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {".gitignore": "*.log\nbuild/\n", "a.py": A_PY})
    (repo / "old.log").write_text("ignored at start\n")
    tracker = WorkspaceTracker(repo)
    tracker.start()
    (repo / "old.log").write_text("still ignored\n")
    (repo / "new.log").write_text("x\n")
    write_files(repo, {"build/out.py": "x = 1\n", "keep.py": "k = 1\n"})
    assert tracker.checkpoint() == [FileChange("keep.py", "added", 1, 0)]
    assert tracker.changes() == [FileChange("keep.py", "added", 1, 0)]
    tracker.close()


def test_subdirectory_root_reports_paths_relative_to_it(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"top.py": "t\n", "sub/x.py": "x\n", "sub/d/y.py": "y\n"})
    tracker = WorkspaceTracker(repo / "sub")
    tracker.start()
    assert tracker.mode == "git"
    (repo / "top.py").write_text("t\nchanged outside\n")
    write_files(repo, {"other/z.py": "z\n", "sub/new.py": "n\n", "sub/x.py": "x\nx2\n"})
    (repo / "sub" / "d" / "y.py").unlink()
    assert tracker.checkpoint() == [
        FileChange("d/y.py", "deleted", 0, 1),
        FileChange("new.py", "added", 1, 0),
        mod("x.py", 1, 0),
    ]
    tracker.close()


def test_new_directory_under_untracked_root(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"top.py": "t\n"})
    (repo / "fresh").mkdir()
    tracker = WorkspaceTracker(repo / "fresh")
    tracker.start()
    assert tracker.mode == "git"
    write_files(repo, {"fresh/pkg/a.py": "a\nb\n"})
    assert tracker.checkpoint() == [FileChange("pkg/a.py", "added", 2, 0)]
    tracker.close()


def test_linked_worktree(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"a.py": A_PY})
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(wt), "-b", "feature")
    (wt / "dirty.py").write_text("before start\n")
    before_main, before_wt = repo_state(repo), repo_state(wt)
    tracker = WorkspaceTracker(wt)
    tracker.start()
    assert tracker.mode == "git"
    (wt / "a.py").write_text(A_PY + "wt\n")
    assert tracker.checkpoint() == [mod("a.py", 1, 0)]
    (wt / "a.py").write_text(A_PY)
    assert tracker.changes() == []
    tracker.close()
    assert repo_state(repo) == before_main
    assert repo_state(wt) == before_wt


def test_detached_head_and_unborn_branch(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"a.py": A_PY})
    git(repo, "checkout", "-q", "--detach")
    tracker = WorkspaceTracker(repo)
    tracker.start()
    (repo / "a.py").write_text("x\n")
    assert tracker.checkpoint() == [mod("a.py", 1, 10)]
    tracker.close()

    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    tracker = WorkspaceTracker(empty)
    tracker.start()
    assert tracker.mode == "git"
    assert tracker.checkpoint() == []
    (empty / "first.py").write_text("1\n2\n")
    assert tracker.checkpoint() == [FileChange("first.py", "added", 2, 0)]
    tracker.close()
    assert not (empty / ".git" / "index").exists()


def test_survives_gc_prune(tmp_path: Path) -> None:
    # The baseline lives in a private object directory, so even an aggressive gc by the
    # agent cannot make the start snapshot disappear.
    repo = init_repo(tmp_path / "repo", {"a.py": A_PY})
    (repo / "a.py").write_text(A_PY + "uncommitted\n")
    tracker = WorkspaceTracker(repo)
    tracker.start()
    git(repo, "gc", "-q", "--prune=now")
    (repo / "a.py").write_text(A_PY)
    assert tracker.checkpoint() == [mod("a.py", 0, 1)]
    tracker.close()


# ---------------------------------------------------------------------------------------
# Degradation


def test_without_git_falls_back_to_folder_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = init_repo(tmp_path / "repo", {"a.py": A_PY})
    age(repo)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    assert not is_git_worktree(repo)
    tracker = WorkspaceTracker(repo)
    tracker.start()
    assert tracker.mode == "folder"
    (repo / "a.py").write_text(A_PY + "x\n")
    assert tracker.checkpoint() == [mod("a.py", 1, 0)]
    tracker.close()


def test_missing_root_never_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tracker = WorkspaceTracker(tmp_path / "does-not-exist")
    with caplog.at_level(logging.WARNING, logger="agentsignals"):
        tracker.start()
    assert tracker.mode == "disabled"
    assert tracker.checkpoint() == []
    assert tracker.changes() == []
    tracker.close()
    assert any("cannot track" in r.getMessage() for r in caplog.records)


def test_workspace_removed_mid_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repo = init_repo(tmp_path / "repo", {"a.py": A_PY})
    tracker = WorkspaceTracker(repo)
    tracker.start()
    shutil.rmtree(repo)
    with caplog.at_level(logging.WARNING, logger="agentsignals"):
        assert tracker.checkpoint() == []
        assert tracker.changes() == []
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1  # logged once
    tracker.close()


def test_checkpoint_before_start_is_empty(tmp_path: Path) -> None:
    tracker = WorkspaceTracker(tmp_path)
    assert tracker.checkpoint() == []
    assert tracker.mode == "disabled"
    with tracker as started:
        assert started.mode == "folder"
        (tmp_path / "x.txt").write_text("x\n")
        assert tracker.checkpoint() == [FileChange("x.txt", "added", 1, 0)]
    assert tracker.mode == "disabled"


def test_is_git_worktree(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"sub/a.py": A_PY})
    plain = tmp_path / "plain"
    plain.mkdir()
    assert is_git_worktree(repo)
    assert is_git_worktree(repo / "sub")
    assert not is_git_worktree(plain)
    assert not is_git_worktree(tmp_path / "missing")
    assert not is_git_worktree(repo / ".git")


# ---------------------------------------------------------------------------------------
# Folder specifics


def test_folder_mode_skips_tool_directories(tmp_path: Path) -> None:
    tracker = WorkspaceTracker(tmp_path)
    tracker.start()
    write_files(
        tmp_path,
        {
            "__pycache__/a.cpython-311.pyc": b"\x00pyc",
            "node_modules/x/index.js": "x\n",
            ".venv/lib/site.py": "s\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            "src/kept.py": "k\n",
        },
    )
    big = b"x\n" * (3 * 1024 * 1024)  # 6 MB of text: counted as binary
    (tmp_path / "big.txt").write_bytes(big)
    assert tracker.checkpoint() == [
        FileChange("big.txt", "added", 0, 0, binary=True),
        FileChange("src/kept.py", "added", 1, 0),
    ]
    tracker.close()


def test_folder_line_counts_match_git(tmp_path: Path) -> None:
    # Same edits through both backends give the same numbers.
    old = "".join(f"def f{i}():\n    return {i}\n\n" for i in range(40))
    new_lines = old.splitlines(keepends=True)
    del new_lines[10:14]
    new_lines[30:30] = ["# inserted\n", "\n"]
    new_lines[50] = "    return 'changed'\n"
    new = "".join(new_lines) + "tail without newline"
    results = []
    for kind in ("git", "folder"):
        root = tmp_path / kind
        if kind == "git":
            init_repo(root, {"m.py": old})
        else:
            root.mkdir()
            (root / "m.py").write_text(old)
        tracker = WorkspaceTracker(root)
        tracker.start()
        assert tracker.mode == kind
        (root / "m.py").write_text(new)
        results.append(tracker.checkpoint())
        tracker.close()
    assert results[0] == results[1]
    assert results[0][0].lines_added > 0 and results[0][0].lines_removed > 0


def test_gitignored_root_uses_folder_mode(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {".gitignore": "scratch/\n", "a.py": A_PY})
    (repo / "scratch").mkdir()
    tracker = WorkspaceTracker(repo / "scratch")
    tracker.start()
    assert tracker.mode == "folder"
    (repo / "scratch" / "x.py").write_text("x\n")
    assert tracker.checkpoint() == [FileChange("x.py", "added", 1, 0)]
    tracker.close()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"", b"x\ny\n", (2, 0)),
        (b"a\nb\nc\n", b"a\nc\n", (0, 1)),
        (b"a\n", b"a", (1, 1)),  # losing the final newline changes the line, as in git
        (b"a\r\nb\r\n", b"a\r\nB\r\n", (1, 1)),
        (b"x\n" * 3000, b"y\n" * 3000, (3000, 3000)),  # past the difflib size guard
    ],
)
def test_count_lines(old: bytes, new: bytes, expected: tuple[int, int]) -> None:
    assert _count_lines(old, new) == expected


def test_parse_git_version() -> None:
    assert _parse_git_version(b"git version 2.39.5\n") == (2, 39)
    assert _parse_git_version(b"git version 2.37.1 (Apple Git-137.1)") == (2, 37)
    assert _parse_git_version(b"git version 2.45.1.windows.1") == (2, 45)
    assert _parse_git_version(b"garbage") == (0, 0)
