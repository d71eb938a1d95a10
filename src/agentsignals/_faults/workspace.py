"""The workspace faults: each picks its target from what the agent did, changes the files, and
says exactly what it changed (content before and after, so it can be undone byte for byte).

A function returns None when the fault cannot apply yet (no edit to revert, no file read to
cut); the injector then tries again after the next tool call.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "Change",
    "add_failing_test",
    "break_dependency",
    "corrupt_file",
    "delete_created_file",
    "read_bytes",
    "revert_last_edit",
    "truncate_file",
    "write_bytes",
]

CONFLICT_MARKER = "<<<<<<< HEAD"
TEST_FILE_NAME = "test_regression_guard.py"
TEST_CLASS = "RegressionGuardTest"
TEST_NAME = "test_release_version_matches_changelog"
FAILING_TEST = f"""import unittest


class {TEST_CLASS}(unittest.TestCase):
    def {TEST_NAME}(self):
        released, changelog = "0.1", "0.2"
        self.assertEqual(released, changelog, "the release version and the changelog disagree")
"""


@dataclass
class Change:
    """What a workspace fault did: files (relative, POSIX) with content before and after
    (None: the file did not exist)."""

    description: str
    before: dict[str, bytes | None] = field(default_factory=dict)
    after: dict[str, bytes | None] = field(default_factory=dict)
    mentions: list[str] = field(default_factory=list)
    reversible: bool = True

    @property
    def files(self) -> list[str]:
        return list(self.before)


def read_bytes(root: Path, rel: str) -> bytes | None:
    try:
        return (root / rel).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def write_bytes(root: Path, rel: str, data: bytes | None) -> None:
    path = root / rel
    if data is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _is_text(data: bytes) -> bool:
    return b"\0" not in data[:8000]


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def revert_last_edit(root: Path, last_edit: dict[str, bytes | None] | None) -> Change | None:
    """Put the files of the agent's last editing call back as they were before it (a file
    it created is removed)."""
    if not last_edit:
        return None
    change = Change(description="")
    for rel, old in last_edit.items():
        current = read_bytes(root, rel)
        if current == old:
            continue
        change.before[rel] = current
        change.after[rel] = old
        write_bytes(root, rel, old)
    if not change.before:
        return None
    names = ", ".join(change.before)
    change.description = f"reverted the last edit of {names} (the files are as before that call)"
    change.mentions = sorted({PurePosixPath(p).name for p in change.before})
    return change


def _text_target(root: Path, explicit: str | None, reads: list[str], min_lines: int) -> str | None:
    candidates = [explicit] if explicit else list(reversed(reads))
    for rel in candidates:
        if rel is None:
            continue
        data = read_bytes(root, rel)
        if data is not None and _is_text(data) and len(data.splitlines()) >= min_lines:
            return rel
    return None


def corrupt_file(root: Path, explicit: str | None, reads: list[str]) -> Change | None:
    """A stray merge-conflict marker line in the middle of a file the agent read: the file no
    longer parses (Python, JSON, YAML, most languages)."""
    rel = _text_target(root, explicit, reads, 1)
    if rel is None:
        return None
    data = read_bytes(root, rel)
    assert data is not None
    lines = data.splitlines(keepends=True)
    at = len(lines) // 2
    newline = b"\r\n" if lines and lines[0].endswith(b"\r\n") else b"\n"
    if lines and not lines[-1].endswith((b"\n", b"\r")) and at == len(lines):
        lines[-1] += newline
    lines.insert(at, CONFLICT_MARKER.encode() + newline)
    new = b"".join(lines)
    write_bytes(root, rel, new)
    return Change(
        description=f"inserted a stray '{CONFLICT_MARKER}' line at line {at + 1} of {rel}",
        before={rel: data},
        after={rel: new},
        mentions=[PurePosixPath(rel).name, CONFLICT_MARKER],
    )


def truncate_file(root: Path, explicit: str | None, reads: list[str]) -> Change | None:
    """A file the agent read cut to its first half (whole lines), as a crashed write leaves it."""
    rel = _text_target(root, explicit, reads, 2)
    if rel is None:
        return None
    data = read_bytes(root, rel)
    assert data is not None
    lines = data.splitlines(keepends=True)
    keep = len(lines) // 2
    new = b"".join(lines[:keep])
    write_bytes(root, rel, new)
    return Change(
        description=f"truncated {rel} from {_lines(len(lines))} to {_lines(keep)}",
        before={rel: data},
        after={rel: new},
        mentions=[PurePosixPath(rel).name],
    )


def _is_test_file(rel: str) -> bool:
    name = PurePosixPath(rel).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def add_failing_test(root: Path, seen_tests: list[str]) -> Change | None:
    """A new test file with one failing test, next to the tests the agent read or ran (else in
    tests/ or test/, else at the root), found by unittest and pytest discovery alike."""
    folder: PurePosixPath | None = None
    for rel in reversed(seen_tests):
        if _is_test_file(rel) and (root / rel).is_file():
            folder = PurePosixPath(rel).parent
            break
    if folder is None:
        folder = next(
            (PurePosixPath(d) for d in ("tests", "test") if (root / d).is_dir()), PurePosixPath()
        )
    name = TEST_FILE_NAME
    n = 1
    while (root / folder / name).exists():
        n += 1
        name = f"test_regression_guard_{n}.py"
    rel = str(folder / name) if str(folder) not in ("", ".") else name
    data = FAILING_TEST.encode()
    write_bytes(root, rel, data)
    return Change(
        description=f"added {rel} with a failing test ({TEST_CLASS}.{TEST_NAME})",
        before={rel: None},
        after={rel: data},
        mentions=[PurePosixPath(rel).name, TEST_NAME],
    )


def delete_created_file(root: Path, created: list[str]) -> Change | None:
    """The last file the agent created (and that still exists) is deleted."""
    for rel in reversed(created):
        data = read_bytes(root, rel)
        if data is None:
            continue
        write_bytes(root, rel, None)
        return Change(
            description=f"deleted {rel}, a file the agent created",
            before={rel: data},
            after={rel: None},
            mentions=[PurePosixPath(rel).name],
        )
    return None


_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+([A-Za-z_][\w.]*)[ \t]+import|import[ \t]+([A-Za-z_][\w.]*))", re.M
)


def _imports(data: bytes) -> list[str]:
    out: list[str] = []
    for m in _IMPORT.finditer(data):
        name = (m.group(1) or m.group(2)).split(b".")[0].decode()
        if name not in out:
            out.append(name)
    return out


def _own(root: Path, name: str) -> bool:
    return (root / f"{name}.py").exists() or (root / name).is_dir()


def break_dependency(root: Path, module: str | None, python_files: list[str]) -> Change | None:
    """A dependency's import fails: a module file at the workspace root shadows it and raises
    ImportError as an incompatible release would. The module is the plan's, else the first
    third-party module imported by the Python files the agent edited or read (latest first).
    Shadowing works where the workspace root is on the import path (``python -m ...``, pytest's
    rootdir, a script run from the root)."""
    name = module
    if name is None:
        for rel in reversed(python_files):
            data = read_bytes(root, rel)
            if data is None:
                continue
            for imported in _imports(data):
                if imported == "__future__" or imported in sys.stdlib_module_names:
                    continue
                if _own(root, imported):
                    continue
                name = imported
                break
            if name is not None:
                break
    if name is None or not name.isidentifier():
        return None
    rel = f"{name}.py"
    if (root / rel).exists() or (root / name).exists():
        return None
    text = (
        f'raise ImportError("{name}: the installed release is incompatible with this project '
        f'(import of {name} failed)")\n'
    )
    data = text.encode()
    write_bytes(root, rel, data)
    return Change(
        description=f"made `import {name}` fail (a {rel} at the workspace root shadows it)",
        before={rel: None},
        after={rel: data},
        mentions=[name, "ImportError"],
    )


def to_relative(root: Path, path: str, cwd: Path | None = None) -> str | None:
    """A path an agent named, relative to the workspace root (POSIX), or None when outside."""
    p = Path(path)
    if not p.is_absolute():
        p = (cwd or root) / p
    try:
        rel = Path(os.path.normpath(p)).relative_to(root)
    except ValueError:
        return None
    text = rel.as_posix()
    return None if text in ("", ".") else text
