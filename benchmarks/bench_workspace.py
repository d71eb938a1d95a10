"""Benchmark the workspace tracker on a synthetic django-shaped git repository.

Run: ``python benchmarks/bench_workspace.py [--keep DIR] [--folder]``. Prints a Markdown
table of milliseconds per operation. Not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agentsignals._instrument.workspace import WorkspaceTracker

SEED = 20240611
LANGS = 110  # django ships ~100 locales
LOCALE_APPS = 10  # django/conf plus contrib apps with their own catalogs

_WORDS = """
self request response model field queryset form view url template context value name
data kwargs args result instance object manager cursor connection settings cache user
group permission session message site admin widget error exception item index key path
""".split()  # noqa: SIM905 -- a word list reads better as prose


def _line_pool(rng: random.Random, size: int = 4000) -> list[str]:
    pool: list[str] = []
    for _ in range(size):
        indent = "    " * rng.choice((0, 1, 1, 2, 2, 2, 3))
        w = rng.sample(_WORDS, 4)
        pool.append(
            rng.choice(
                (
                    f"{indent}{w[0]} = {w[1]}.{w[2]}({w[3]})",
                    f"{indent}if {w[0]} is not None and {w[1]}:",
                    f"{indent}return {w[0]}.{w[1]}_{w[2]}",
                    f"{indent}def {w[0]}_{w[1]}(self, {w[2]}, **{w[3]}):",
                    f'{indent}"""{w[0].title()} the {w[1]} for {w[2]}."""',
                    f"{indent}for {w[0]} in {w[1]}.{w[2]}():",
                    "",
                    f"{indent}# {w[0]} {w[1]} {w[2]} {w[3]}",
                )
            )
        )
    return pool


def _size(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(40, min(cap, int(rng.lognormvariate(0, sigma) * median)))


def _text(rng: random.Random, pool: list[str], header: str, nbytes: int) -> bytes:
    lines = [header]
    total = len(header)
    while total < nbytes:
        line = rng.choice(pool)
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def generate(root: Path) -> dict[str, int]:
    """Write a deterministic django-shaped tree (~6,500 files) and return counts by suffix."""
    rng = random.Random(SEED)
    pool = _line_pool(rng)
    files: dict[str, bytes] = {}

    def py(path: str) -> None:
        files[path] = _text(rng, pool, f"# {path}", _size(rng, 2500, 1.1, 150_000))

    # django/: the package (~900 modules in ~120 packages).
    for pkg in range(120):
        base = f"django/pkg{pkg:03d}"
        files[f"{base}/__init__.py"] = b""
        for mod in range(7):
            py(f"{base}/mod{mod}.py")
    # tests/: ~230 test apps, ~1,800 modules.
    for app in range(230):
        base = f"tests/app{app:03d}"
        files[f"{base}/__init__.py"] = b""
        for mod in range(rng.randint(3, 10)):
            py(f"{base}/test_mod{mod}.py")
    # Locale catalogs: text .po and binary .mo.
    for app in range(LOCALE_APPS):
        for lang in range(LANGS):
            base = f"django/contrib/app{app}/locale/l{lang:03d}/LC_MESSAGES"
            nbytes = _size(rng, 9000, 0.8, 120_000)
            files[f"{base}/django.po"] = _text(rng, pool, f'msgid "{base}"', nbytes)
            files[f"{base}/django.mo"] = rng.randbytes(nbytes // 2)
    # Docs, templates, static assets, fixtures.
    for i in range(620):
        files[f"docs/topic{i // 40}/page{i}.txt"] = _text(
            rng, pool, f"page {i}", _size(rng, 9000, 0.9, 200_000)
        )
    for i in range(450):
        files[f"django/templates/t{i // 30}/tpl{i}.html"] = _text(
            rng, pool, f"<!-- {i} -->", _size(rng, 1200, 0.9, 30_000)
        )
    for i in range(160):
        files[f"django/static/js/s{i // 20}/m{i}.js"] = _text(
            rng, pool, f"// {i}", _size(rng, 5000, 1.0, 300_000)
        )
    for i in range(90):
        files[f"django/static/css/c{i}.css"] = _text(rng, pool, f"/* {i} */", 3000)
    for i in range(150):
        files[f"tests/fixtures/f{i // 20}/fixture{i}.json"] = _text(rng, pool, "[", 2500)
    for i in range(120):
        files[f"django/static/img/i{i // 30}/img{i}.png"] = rng.randbytes(
            _size(rng, 2000, 1.0, 60_000)
        )
    for path, data in files.items():
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / ".gitignore").write_text("__pycache__/\n*.pyc\n/build/\n")
    counts: dict[str, int] = {}
    for path in files:
        suffix = os.path.splitext(path)[1]
        counts[suffix] = counts.get(suffix, 0) + 1
    return counts


def _git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    proc = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout


def _ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _edit(path: Path, n: int) -> None:
    text = path.read_text()
    path.write_text(text.replace("\n", f"\nedited_{n} = {n}\n", 1))


def bench(root: Path, *, folder: bool, rounds: int = 20) -> list[tuple[str, float]]:
    """Time the tracker operations on ``root``; returns (operation, ms) rows."""

    def tracker_for() -> WorkspaceTracker:
        t = WorkspaceTracker(root)
        t._prefer_folder = folder
        return t

    rows: list[tuple[str, float]] = []
    starts = []
    for _ in range(5):
        tracker = tracker_for()
        starts.append(_ms(tracker.start))
        tracker.close()
    rows.append(("start() (median of 5)", statistics.median(starts)))

    tracker = tracker_for()
    tracker.start()
    assert tracker.mode == ("folder" if folder else "git"), tracker.mode
    rows.append(("first checkpoint(), no change", _ms(tracker.checkpoint)))
    times = [_ms(tracker.checkpoint) for _ in range(rounds)]
    rows.append((f"checkpoint(), no change (median of {rounds})", statistics.median(times)))

    targets = sorted(root.glob("django/pkg0*/mod*.py"))[:rounds]
    times = []
    for n, target in enumerate(targets):
        _edit(target, n)
        t0 = time.perf_counter()
        got = tracker.checkpoint()
        times.append((time.perf_counter() - t0) * 1000)
        assert [c.path for c in got] == [target.relative_to(root).as_posix()], got
    label = f"checkpoint(), one file edited (median of {len(times)})"
    rows.append((label, statistics.median(times)))

    created, deleted = [], []
    for n in range(5):
        new = root / "tests" / f"app{n:03d}" / "new_module.py"
        new.write_text("x = 1\ny = 2\n")
        created.append(_ms(tracker.checkpoint))
        new.unlink()
        deleted.append(_ms(tracker.checkpoint))
    rows.append(("checkpoint(), one file created (median of 5)", statistics.median(created)))
    rows.append(("checkpoint(), one file deleted (median of 5)", statistics.median(deleted)))

    times = [_ms(tracker.changes) for _ in range(5)]
    got = tracker.changes()
    rows.append((f"changes(), {len(got)} files changed (median of 5)", statistics.median(times)))
    rows.append(("close()", _ms(tracker.close)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    parser.add_argument("--folder", action="store_true", help="also time the folder backend")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        root: Path = args.keep or Path(tmp) / "repo"
        root.mkdir(parents=True, exist_ok=True)
        if not (root / ".git").exists():
            t0 = time.perf_counter()
            counts = generate(root)
            _git(root, "init", "-q", "-b", "main")
            _git(root, "add", "-A")
            _git(root, "commit", "-q", "-m", "synthetic django")
            built = time.perf_counter() - t0
            total = sum(counts.values())
            summary = ", ".join(f"{k or '(none)'}: {v}" for k, v in sorted(counts.items()))
            print(f"Generated {total} files in {built:.1f}s ({summary})\n", file=sys.stderr)
        else:
            _git(root, "reset", "-q", "--hard")
            _git(root, "clean", "-q", "-fd")
        status_ms = statistics.median(
            _ms(lambda: _git(root, "status", "--porcelain")) for _ in range(5)
        )
        results = {"git": bench(root, folder=False)}
        _git(root, "reset", "-q", "--hard")
        if args.folder:
            results["folder"] = bench(root, folder=True)
            _git(root, "reset", "-q", "--hard")
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    print(f"{git_version.strip()}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"Reference: `git status --porcelain` median {status_ms:.1f} ms\n")
    modes = list(results)
    print("| operation | " + " | ".join(f"{m} mode (ms)" for m in modes) + " |")
    print("|---|" + "---:|" * len(modes))
    for i, (label, _) in enumerate(results["git"]):
        cells = [f"{results[m][i][1]:.1f}" for m in modes]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
