"""Shared parts of the framework integration tests: a real git repository with a bug, the
tools the agents get, and the span-tree rendering the assertions compare."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

STATS_PY = "def add(a, b):\n    return a - b\n"
TEST_PY = "from stats import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = "sed -i 's/a - b/a + b/' stats.py"


def make_repo(root: Path) -> Path:
    """A git repository whose test fails until `add` is fixed."""
    repo = root / "repo"
    repo.mkdir()
    (repo / "stats.py").write_text(STATS_PY)
    (repo / "test_stats.py").write_text(TEST_PY)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(root)}  # fmt: skip
    for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env, capture_output=True)
    return repo


def run_bash(repo: Path, command: str) -> tuple[str, int]:
    proc = subprocess.run(command, shell=True, cwd=repo, capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr, proc.returncode


def run_pytest(repo: Path) -> tuple[str, int]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_stats.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout + proc.stderr, proc.returncode


def tree(spans: list[ReadableSpan], keep: tuple[str, ...] = ()) -> list[str]:
    """Span names indented by depth, children in start order. Only spans whose instrumentation
    scope is agentsignals, or whose scope name starts with one of `keep`, are shown; hidden
    spans' children move up to the nearest shown ancestor."""
    by_id = {s.context.span_id: s for s in spans}

    def shown(s: ReadableSpan) -> bool:
        name = s.instrumentation_scope.name if s.instrumentation_scope else ""
        return name == "agentsignals" or any(name.startswith(k) for k in keep)

    def shown_parent(s: ReadableSpan) -> int | None:
        p = s.parent.span_id if s.parent else None
        while p is not None and p in by_id and not shown(by_id[p]):
            q = by_id[p].parent
            p = q.span_id if q else None
        return p if p in by_id else None

    children: dict[int | None, list[ReadableSpan]] = {}
    for s in spans:
        if shown(s):
            children.setdefault(shown_parent(s), []).append(s)
    out: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x.start_time or 0):
            out.append("  " * depth + s.name)
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    return out


@contextmanager
def classes_restored(*modules: Any) -> Iterator[None]:
    """Put `modules` and every class in them back as they were after the block.

    OpenInference instrumentors wrap framework classes and their `uninstrument()` does not
    always put back what was there (openinference-instrumentation-dspy 0.1.48 restores
    `Module.__call__` without DSPy's callback wrapper; the smolagents one leaves model
    wrappers bound to the finished test's tracer provider). Tests that turn one on restore the
    framework themselves, so the tests after them run on the framework as installed.
    """
    saved: dict[type, dict[str, Any]] = {}
    module_attrs = {module: dict(vars(module)) for module in modules}
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, type) and value not in saved:
                saved[value] = dict(vars(value))
    try:
        yield
    finally:
        for module, attrs in module_attrs.items():
            for name, value in attrs.items():
                if vars(module).get(name) is not value:
                    setattr(module, name, value)
        for cls, before in saved.items():
            for name in set(vars(cls)) - set(before):
                with suppress(AttributeError, TypeError):
                    delattr(cls, name)
            for name, value in before.items():
                if vars(cls).get(name) is not value:
                    with suppress(AttributeError, TypeError):
                        setattr(cls, name, value)
