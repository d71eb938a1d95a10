"""Workspace tracker: what an agent changed, read from the workspace itself.

An agent's own edit counter misses edits made through the shell (``sed -i``, heredocs,
``python -c``), so the tracker compares workspace snapshots instead.

Two backends:

* **git** (the workspace is inside a git work tree): the baseline is the working tree at
  :meth:`WorkspaceTracker.start`, recorded as a tree object built through a *private*
  index file (``GIT_INDEX_FILE``, seeded with a copy of the user's index for its stat
  cache) and a *private* object directory (``GIT_OBJECT_DIRECTORY``, with the
  repository's object store as an alternate). The user's index, HEAD, refs, stash,
  object store and working tree are never written. A checkpoint is one
  ``git status`` against the private index (stat cache plus untracked cache); only when
  it reports something does ``git add`` stage exactly those paths, ``git write-tree``
  build the new tree and, if the tree id moved, ``git diff-tree --numstat`` count lines.
* **folder** (anything else, or git unavailable): a Python snapshot of regular files.
  A file is re-read only when its (mtime_ns, size, inode) changed or its mtime was too
  recent to trust. Baseline contents of text files up to 5 MB are kept in memory,
  zlib-compressed: they must be captured at start because in-place writes destroy them,
  so "copy on first change" is not possible.

Nothing here raises into the caller: failures are logged to the ``agentsignals`` logger
and the tracker degrades (git -> folder mode at start, or ``[]`` later).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import weakref
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from agentsignals._classify.regions import Region

__all__ = ["FileChange", "WorkspaceTracker", "is_git_worktree"]

logger = logging.getLogger("agentsignals")

Status = Literal["added", "modified", "deleted"]
Mode = Literal["git", "folder", "disabled"]

# Folder mode: directories never worth tracking (VCS metadata, environments, tool caches).
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)
# Folder mode: larger files are hashed to detect changes but counted as binary.
MAX_TEXT_BYTES = 5 * 1024 * 1024
# Folder mode: refuse to snapshot absurdly large trees (e.g. a home directory).
MAX_FOLDER_FILES = 200_000
# Git's own binary heuristic: a NUL byte in the first 8000 bytes.
_BINARY_SNIFF = 8000
# Folder mode: files whose mtime is this close to the scan time are re-read next time,
# because a second write within the timestamp granularity would keep the same stat.
_RACY_NS = 2_000_000_000
# difflib is quadratic in the worst case; above this many line pairs use a multiset count.
_DIFFLIB_MAX_CELLS = 4_000_000
_GIT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class FileChange:
    """One file that differs between two snapshots of the workspace."""

    path: str  # POSIX path relative to the workspace root
    status: str  # "added" | "modified" | "deleted"
    lines_added: int
    lines_removed: int
    binary: bool = False


class _GitError(Exception):
    pass


def _git_executable() -> str | None:
    return shutil.which("git")


def is_git_worktree(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` is inside the work tree of a git repository (and git runs)."""
    git = _git_executable()
    if git is None or not os.path.isdir(root):
        return False
    try:
        proc = subprocess.run(
            [git, "rev-parse", "--is-inside-work-tree"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == b"true"


# ---------------------------------------------------------------------------------------
# Line counting (folder mode)


def _split_lines(data: bytes) -> list[bytes]:
    # Split on "\n" only, as git does; a last line without newline still counts.
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _count_lines(old: bytes, new: bytes) -> tuple[int, int]:
    """(added, removed) lines from ``old`` to ``new``, close to ``git diff --numstat``."""
    a = _split_lines(old)
    b = _split_lines(new)
    # Trim the common prefix and suffix: cheap, and keeps difflib's input small.
    lo = 0
    hi_a, hi_b = len(a), len(b)
    while lo < hi_a and lo < hi_b and a[lo] == b[lo]:
        lo += 1
    while hi_a > lo and hi_b > lo and a[hi_a - 1] == b[hi_b - 1]:
        hi_a -= 1
        hi_b -= 1
    a, b = a[lo:hi_a], b[lo:hi_b]
    if not a or not b:
        return len(b), len(a)
    if len(a) * len(b) > _DIFFLIB_MAX_CELLS:
        # Order-insensitive bound: avoids quadratic time on huge rewrites.
        common = sum((Counter(a) & Counter(b)).values())
        return len(b) - common, len(a) - common
    added = removed = 0
    # autojunk would treat frequent lines (blank lines, braces) as junk: non-minimal diffs.
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return added, removed


# ---------------------------------------------------------------------------------------
# Backends


class _Backend(Protocol):
    diffs_run: int

    def start(self) -> None: ...
    def checkpoint(self) -> list[FileChange]: ...
    def changes(self) -> list[FileChange]: ...
    def previous_content(self, path: str) -> bytes | None: ...
    def previous_snapshot(self) -> object: ...
    def content_in(self, snapshot: object, path: str) -> bytes | None: ...
    def close(self) -> None: ...


def _c_quote(path: str) -> str:
    # GIT_ALTERNATE_OBJECT_DIRECTORIES entries containing the separator must be C-quoted.
    if os.pathsep not in path and not path.startswith('"'):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


_MIN_GIT = (2, 25)


def _parse_git_version(out: bytes) -> tuple[int, int]:
    # "git version 2.39.5", "git version 2.37.1 (Apple Git-137.1)", "2.45.1.windows.1"
    words = out.split()
    parts = words[2].split(b".") if len(words) > 2 else []
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


class _GitBackend:
    """Snapshots as tree objects built through a private index and object directory."""

    def __init__(self, root: Path, git: str) -> None:
        self.root = root
        self.git = git
        self.diffs_run = 0
        self.git_calls = 0
        self.tmpdir: str | None = None
        self._finalizer: weakref.finalize[..., _GitBackend] | None = None
        self._env: dict[str, str] = {}
        self._toplevel = root
        self._prefix = b""  # root relative to the top level, "/"-terminated, or b""
        self._config: list[str] = []
        self._base_tree = ""
        self._last_tree = ""
        self._previous_tree = ""  # the tree before the latest checkpoint
        # Tree of the private index's content; valid while `git status` reports it clean.
        self._index_tree = ""

    def _run(
        self,
        *args: str,
        ok_codes: Iterable[int] = (0,),
        cwd: Path | None = None,
        stdin: bytes | None = None,
    ) -> bytes:
        """Run git; stdout. Exit codes outside ``ok_codes`` raise :class:`_GitError`."""
        return self._exec(*args, ok_codes=ok_codes, cwd=cwd, stdin=stdin).stdout

    def _exec(
        self,
        *args: str,
        ok_codes: Iterable[int] = (0,),
        cwd: Path | None = None,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        self.git_calls += 1
        cmd = [self.git, *self._config, *args]
        try:
            proc = subprocess.run(
                cmd,
                cwd=cwd or self.root,
                env=self._env,
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=_GIT_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise _GitError(f"git {args[0]}: {exc}") from exc
        if proc.returncode not in ok_codes:
            err = proc.stderr.decode(errors="replace").strip()
            raise _GitError(f"git {args[0]} exited {proc.returncode}: {err[:500]}")
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            logger.debug("workspace: git %s exited %d: %s", args[0], proc.returncode, err[:500])
        return proc

    def start(self) -> None:
        base_env = dict(os.environ)
        base_env.pop("GIT_INDEX_FILE", None)
        self._env = base_env
        version = _parse_git_version(self._run("version"))
        if version < _MIN_GIT:
            # --pathspec-from-file (2.25) is used by every non-trivial checkpoint.
            raise _GitError(f"git {version} is older than {_MIN_GIT}")
        out = self._run(
            "rev-parse",
            "--show-toplevel",
            "--show-prefix",
            "--git-path",
            "index",
            "--git-path",
            "objects",
        )
        lines = os.fsdecode(out).split("\n")
        if len(lines) < 4:
            raise _GitError(f"unexpected rev-parse output: {lines!r}")
        self._toplevel = Path(lines[0])
        self._prefix = os.fsencode(lines[1])
        real_index = os.path.join(self.root, lines[2])
        real_objects = os.path.abspath(os.path.join(self.root, lines[3]))
        if self._prefix:
            # git sees nothing inside an ignored directory: let the folder backend track it.
            proc = self._exec(
                "check-ignore",
                "-q",
                "--",
                os.fsdecode(self._prefix),
                ok_codes=(0, 1),
                cwd=self._toplevel,
            )
            if proc.returncode == 0:
                raise _GitError("the workspace is ignored by git")
        uc = self._run("config", "--get", "core.untrackedCache", ok_codes=(0, 1))
        self._config = [
            # Keep the private index self-contained, and avoid failing on settings meant
            # for interactive use.
            "-c",
            "core.splitIndex=false",
            "-c",
            "core.safecrlf=false",
            "-c",
            "advice.addEmbeddedRepo=false",
            "-c",
            "advice.addIgnoredFile=false",
        ]
        if uc.strip().lower() not in (b"false", b"no", b"off", b"0"):
            # The untracked cache halves the cost of the no-change probe (measured on a
            # django-sized tree); honour an explicit opt-out, which usually means the
            # filesystem does not update directory mtimes reliably.
            self._config += ["-c", "core.untrackedCache=true"]

        self.tmpdir = tempfile.mkdtemp(prefix="agentsignals-ws-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.tmpdir, True)
        index = os.path.join(self.tmpdir, "index")
        objects = os.path.join(self.tmpdir, "objects")
        os.mkdir(objects)
        alternates = [_c_quote(real_objects)]
        if extra := os.environ.get("GIT_ALTERNATE_OBJECT_DIRECTORIES"):
            alternates.append(extra)
        self._env = {
            **base_env,
            "GIT_INDEX_FILE": index,
            # New blobs and trees go to a private store: the user's object database is
            # not written and `git gc --prune=now` cannot remove our baseline.
            "GIT_OBJECT_DIRECTORY": objects,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": os.pathsep.join(alternates),
        }
        # Seed with a copy of the user's index: its stat cache means unchanged tracked
        # files are not re-hashed. copy2 keeps the mtime, which git's racy-entry check
        # compares against.
        if os.path.isfile(real_index):
            shutil.copy2(real_index, index)
        # --ignore-errors: one unreadable file must not hide every other change.
        self._run("add", "-A", "--ignore-errors", "--", ".", ok_codes=(0, 1))
        self._index_tree = self._write_tree()
        # One probe now builds the untracked cache, so the first checkpoint is as cheap
        # as the others; anything it finds happened during start and joins the baseline.
        self._base_tree = self._last_tree = self._previous_tree = self._snapshot()

    def _write_tree(self) -> str:
        return os.fsdecode(self._run("write-tree")).strip()

    def _dirty_paths(self) -> list[bytes]:
        """Top-level-relative paths under root whose working copy differs from the index."""
        # No pathspec: one would disable the untracked cache; filter below instead.
        # -unormal reports a new directory as "dir/", which is all a probe needs.
        out = self._run(
            "status",
            "--porcelain=v1",
            "-z",
            "-unormal",
            "--no-renames",
            "--ignore-submodules=dirty",
            cwd=self._toplevel,
        )
        prefix = self._prefix
        dirty: list[bytes] = []
        for record in out.split(b"\0"):
            if len(record) < 4:
                continue
            x, y, path = record[:1], record[1:2], record[3:]
            # Column X compares the private index with HEAD: irrelevant here.
            if y == b" " and x != b"U":
                continue
            if path.startswith(prefix) or (path.endswith(b"/") and prefix.startswith(path)):
                dirty.append(path)
        return dirty

    def _snapshot(self) -> str:
        """Tree id of the working tree under root now (respecting .gitignore)."""
        dirty = self._dirty_paths()
        if not dirty:
            return self._index_tree
        # Stage only what status reported; literal pathspecs so names like "*.py" or
        # ":x" are not interpreted.
        self._run(
            "--literal-pathspecs",
            "add",
            "-A",
            "--ignore-errors",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            ok_codes=(0, 1),
            cwd=self._toplevel,
            stdin=b"\0".join(dirty),
        )
        self._index_tree = self._write_tree()
        return self._index_tree

    def _diff(self, old: str, new: str) -> list[FileChange]:
        self.diffs_run += 1
        out = self._run(
            "diff-tree",
            "-r",
            "-z",
            "--no-renames",
            "--no-ext-diff",
            "--relative",
            "--raw",
            "--numstat",
            old,
            new,
        )
        return _parse_raw_numstat(out)

    def checkpoint(self) -> list[FileChange]:
        tree = self._snapshot()
        self._previous_tree = self._last_tree
        if tree == self._last_tree:
            return []
        changes = self._diff(self._last_tree, tree)
        self._last_tree = tree
        return changes

    def previous_content(self, path: str) -> bytes | None:
        return self.content_in(self._previous_tree, path)

    def previous_snapshot(self) -> object:
        return self._previous_tree  # a tree id: valid while the private object store lives

    def content_in(self, snapshot: object, path: str) -> bytes | None:
        spec = f"{snapshot}:{os.fsdecode(self._prefix)}{path}"
        proc = self._exec("cat-file", "-e", spec, ok_codes=(0, 1, 128))
        if proc.returncode != 0:
            return None
        return self._run("cat-file", "blob", spec)

    def changes(self) -> list[FileChange]:
        tree = self._snapshot()
        if tree == self._base_tree:
            return []
        return self._diff(self._base_tree, tree)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()


def _parse_raw_numstat(out: bytes) -> list[FileChange]:
    """Parse ``diff-tree -z --raw --numstat`` output (all raw records, then numstat)."""
    fields = out.split(b"\0")
    status: dict[str, tuple[str, bool]] = {}
    counts: dict[str, tuple[int, int, bool]] = {}
    i = 0
    n = len(fields)
    while i < n:
        field = fields[i]
        if not field:
            i += 1
            continue
        if field.startswith(b":"):
            # ":<mode> <mode> <oid> <oid> <status>" then the path.
            meta = field[1:].split(b" ")
            path = os.fsdecode(fields[i + 1])
            letter = meta[4][:1]
            gitlink = b"160000" in (meta[0], meta[1])
            st = {b"A": "added", b"D": "deleted"}.get(letter, "modified")
            status[path] = (st, gitlink)
            i += 2
            continue
        added_s, removed_s, path_b = field.split(b"\t", 2)
        path = os.fsdecode(path_b)
        if added_s == b"-":
            counts[path] = (0, 0, True)
        else:
            counts[path] = (int(added_s), int(removed_s), False)
        i += 1
    result: list[FileChange] = []
    for path, (st, gitlink) in status.items():
        added, removed, binary = counts.get(path, (0, 0, False))
        if gitlink:
            # A submodule's "Subproject commit" line is not a line of the workspace.
            added = removed = 0
        result.append(FileChange(path, st, added, removed, binary))
    result.sort(key=lambda c: c.path)
    return result


@dataclass(frozen=True, slots=True)
class _Entry:
    sig: tuple[int, int, int]  # (mtime_ns, size, inode)
    digest: bytes
    binary: bool
    data: bytes | None  # zlib-compressed content of a text file, else None
    racy: bool  # mtime too recent to trust the stat next time


class _FolderBackend:
    """Pure-Python snapshots of the regular files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.diffs_run = 0
        self.files_read = 0
        self._base: dict[str, _Entry] = {}
        self._last: dict[str, _Entry] = {}
        self._previous: dict[str, _Entry] = {}  # the snapshot before the latest checkpoint
        # Most recent scan: its entries carry the freshest stat for the skip test.
        self._cache: dict[str, _Entry] = {}

    def start(self) -> None:
        if not self.root.is_dir():
            raise NotADirectoryError(str(self.root))
        snap = self._scan({})
        self._base = self._last = self._cache = self._previous = snap

    def _walk(self) -> Iterable[tuple[str, os.stat_result]]:
        stack: list[tuple[str, str]] = [(os.fspath(self.root), "")]
        count = 0
        while stack:
            path, rel = stack.pop()
            try:
                it = os.scandir(path)
            except OSError:
                continue  # vanished or unreadable directory
            with it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if entry.name not in SKIP_DIRS:
                                stack.append((entry.path, f"{rel}{entry.name}/"))
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    count += 1
                    if count > MAX_FOLDER_FILES:
                        raise RuntimeError(f"more than {MAX_FOLDER_FILES} files under root")
                    yield f"{rel}{entry.name}", st

    def _read(self, rel: str, st: os.stat_result, now_ns: int) -> _Entry | None:
        self.files_read += 1
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        racy = st.st_mtime_ns >= now_ns - _RACY_NS
        h = hashlib.blake2b(digest_size=16)
        try:
            with open(os.path.join(self.root, rel), "rb") as fh:
                if st.st_size > MAX_TEXT_BYTES:
                    while chunk := fh.read(1 << 20):
                        h.update(chunk)
                    return _Entry(sig, h.digest(), True, None, racy)
                data = fh.read()
        except OSError:
            return None
        h.update(data)
        if b"\0" in data[:_BINARY_SNIFF] or len(data) > MAX_TEXT_BYTES:
            return _Entry(sig, h.digest(), True, None, racy)
        return _Entry(sig, h.digest(), False, zlib.compress(data, 1), racy)

    def _scan(self, cache: Mapping[str, _Entry]) -> dict[str, _Entry]:
        now_ns = time.time_ns()
        snap: dict[str, _Entry] = {}
        for rel, st in self._walk():
            old = cache.get(rel)
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            if old is not None and old.sig == sig and not old.racy:
                snap[rel] = old
                continue
            new = self._read(rel, st, now_ns)
            if new is None:
                continue
            if old is not None and old.digest == new.digest:
                # Same content (e.g. touched): share the stored bytes.
                new = _Entry(new.sig, old.digest, old.binary, old.data, new.racy)
            snap[rel] = new
        return snap

    def _diff(self, old: Mapping[str, _Entry], new: Mapping[str, _Entry]) -> list[FileChange]:
        # Unchanged files share their entry object between snapshots: identity is enough.
        paths = [p for p, b in new.items() if old.get(p) is not b]
        paths += [p for p in old if p not in new]
        result: list[FileChange] = []
        for path in sorted(paths):
            a = old.get(path)
            b = new.get(path)
            if a is None and b is not None:
                result.append(self._change(path, "added", None, b))
            elif b is None and a is not None:
                result.append(self._change(path, "deleted", a, None))
            elif a is not None and b is not None and a.digest != b.digest:
                result.append(self._change(path, "modified", a, b))
        return result

    def _change(self, path: str, status: Status, a: _Entry | None, b: _Entry | None) -> FileChange:
        if (a is not None and a.data is None) or (b is not None and b.data is None):
            return FileChange(path, status, 0, 0, True)
        old = zlib.decompress(a.data) if a is not None and a.data is not None else b""
        new = zlib.decompress(b.data) if b is not None and b.data is not None else b""
        self.diffs_run += 1
        added, removed = _count_lines(old, new)
        return FileChange(path, status, added, removed)

    def checkpoint(self) -> list[FileChange]:
        snap = self._scan(self._cache)
        self._cache = snap
        changes = self._diff(self._last, snap)
        self._previous, self._last = self._last, snap
        return changes

    def previous_content(self, path: str) -> bytes | None:
        return self.content_in(self._previous, path)

    def previous_snapshot(self) -> object:
        return self._previous  # never changed in place: each checkpoint makes a new one

    def content_in(self, snapshot: object, path: str) -> bytes | None:
        entry = snapshot.get(path) if isinstance(snapshot, dict) else None
        if entry is None:
            return None
        if entry.data is None:
            raise LookupError(f"{path}: binary or too large, its content was not kept")
        return zlib.decompress(entry.data)

    def changes(self) -> list[FileChange]:
        snap = self._scan(self._cache)
        self._cache = snap
        return self._diff(self._base, snap)

    def close(self) -> None:
        self._base = self._last = self._cache = self._previous = {}


# ---------------------------------------------------------------------------------------
# Public facade


class WorkspaceTracker:
    """Reports the files an agent changed in ``root``, per tool call and cumulatively.

    Thread-safe; never raises. See the module docstring for the two backends.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        try:
            self.root = Path(root).absolute()
        except OSError:  # the process's cwd was deleted; keep the path as given
            self.root = Path(root)
        self._lock = threading.Lock()
        self._backend: _Backend | None = None
        self._mode: Mode = "disabled"
        self._failures = 0
        self._prefer_folder = False  # benchmarks/tests: force the folder backend
        # What the latest checkpoint() returned (with each file's status).
        self.last_changes: list[FileChange] = []

    @property
    def mode(self) -> Mode:
        """``"git"``, ``"folder"``, or ``"disabled"`` (not started, closed or failed)."""
        return self._mode

    @property
    def _diffs_run(self) -> int:
        # Number of content diffs computed so far; lets tests prove no-op checkpoints
        # skip the diff.
        return self._backend.diffs_run if self._backend is not None else 0

    def start(self) -> None:
        """Take the baseline snapshot. Calling it again restarts from the current state."""
        with self._lock:
            self._close_backend()
            self._failures = 0
            git = None if self._prefer_folder else _git_executable()
            if git is not None and is_git_worktree(self.root):
                backend: _Backend = _GitBackend(self.root, git)
                try:
                    backend.start()
                except Exception as exc:
                    backend.close()
                    logger.warning(
                        "workspace: git snapshot of %s failed, using folder mode: %s",
                        self.root,
                        exc,
                    )
                else:
                    self._backend, self._mode = backend, "git"
                    return
            backend = _FolderBackend(self.root)
            try:
                backend.start()
            except Exception as exc:
                backend.close()
                logger.warning("workspace: cannot track %s: %s", self.root, exc)
                return
            self._backend, self._mode = backend, "folder"

    def checkpoint(self) -> list[FileChange]:
        """Files whose content changed since the previous checkpoint (or since start)."""
        changes = self._call("checkpoint")
        self.last_changes = changes
        return changes

    def changes(self) -> list[FileChange]:
        """Every file that differs from the start snapshot now, with lines vs the start."""
        return self._call("changes")

    def previous_content(self, path: str) -> bytes | None:
        """The content of ``path`` (relative to the root) as the checkpoint before the latest
        one saw it: right after a tool call, the file as it was before that call. None when it
        did not exist then. Raises LookupError when it is not known (not tracking; a binary
        or over-size file in folder mode; git failed)."""
        return self.content_in(self.previous_snapshot(), path)

    def previous_snapshot(self) -> object:
        """A token for the checkpoint before the latest one (no I/O): read a file of it later
        with :meth:`content_in`, e.g. only if a fault needs it. Raises LookupError when the
        workspace is not tracked."""
        with self._lock:
            backend = self._backend
            if backend is None:
                raise LookupError("the workspace is not tracked")
            return backend.previous_snapshot()

    def content_in(self, snapshot: object, path: str) -> bytes | None:
        """The content of ``path`` in a snapshot from :meth:`previous_snapshot` (None: it did
        not exist). Raises LookupError as :meth:`previous_content` does."""
        with self._lock:
            backend = self._backend
            if backend is None:
                raise LookupError("the workspace is not tracked")
            try:
                return backend.content_in(snapshot, path)
            except LookupError:
                raise
            except Exception as exc:
                raise LookupError(f"{path}: {exc}") from exc

    def regions(self, changes: list[FileChange], *, max_bytes: int = 1 << 20) -> list[Region]:
        """The changed line ranges of the latest checkpoint's `changes` (each file's content
        before it against the file now). Binary, over-size or unknown files are skipped;
        never raises."""
        from agentsignals._classify.regions import line_regions

        out: list[Region] = []
        for change in changes:
            try:
                old = self.previous_content(change.path)
                path = self.root / change.path
                new = path.read_bytes() if path.is_file() else b""
                if len(new) > max_bytes or (old is not None and len(old) > max_bytes):
                    continue
                if b"\0" in new or (old is not None and b"\0" in old):
                    continue  # binary
                out.extend(
                    line_regions(
                        change.path,
                        (old or b"").decode("utf-8", "replace").splitlines(),
                        new.decode("utf-8", "replace").splitlines(),
                    )
                )
            except (LookupError, OSError) as exc:
                logger.debug("workspace: no regions for %s: %s", change.path, exc)
        return out

    def close(self) -> None:
        """Drop the snapshots and remove temporary files."""
        with self._lock:
            self._close_backend()

    def __enter__(self) -> WorkspaceTracker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _excluded_prefixes(self) -> tuple[str, ...]:
        """POSIX prefixes (relative to the root) of the folders configure() excludes."""
        from agentsignals._instrument.runtime import RUNTIME

        out: list[str] = []
        for folder in RUNTIME.settings.workspace_exclude:
            try:
                rel = Path(folder).absolute().relative_to(self.root.absolute())
            except ValueError:
                continue  # outside the workspace
            if rel.parts:
                out.append(rel.as_posix() + "/")
        return tuple(out)

    def _call(self, op: Literal["checkpoint", "changes"]) -> list[FileChange]:
        with self._lock:
            backend = self._backend
            if backend is None:
                return []
            try:
                changes = backend.checkpoint() if op == "checkpoint" else backend.changes()
                excluded = self._excluded_prefixes()
                if excluded:
                    changes = [c for c in changes if not c.path.startswith(excluded)]
                return changes
            except Exception as exc:
                self._failures += 1
                # Once per tracker at warning level; a broken workspace fails every call.
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                logger.log(level, "workspace: %s of %s failed: %s", op, self.root, exc)
                return []

    def _close_backend(self) -> None:
        backend, self._backend, self._mode = self._backend, None, "disabled"
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.close()
