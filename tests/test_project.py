"""Project-level promises: the README's commands are what CI runs, `import agentsignals` stays
cheap, the public API is explicit, and the code is typed and formatted."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import agentsignals

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("##", 1)[0]
    block = re.search(r"```bash\n(.*?)```", setup, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_names_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    install_and_demo, run_tests = commands
    assert "agentsignals demo" in install_and_demo
    assert run_tests.endswith("pytest")
    assert run_tests in (ROOT / ".ci" / "run").read_text().splitlines()


def test_every_top_level_folder_has_real_content() -> None:
    for folder in (
        "semconv",
        "exporters",
        "collectors",
        "tests",
        "docs",
        "benchmarks",
        "src/agentsignals",
    ):
        files = [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.stat().st_size > 0]
        assert files, f"{folder}/ is empty"
    assert (ROOT / "docs" / "architecture.md").is_file()


def test_import_is_cheap_and_lazy() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import agentsignals\n"
        "elapsed = time.perf_counter() - t\n"
        "heavy = ('opentelemetry.sdk', 'pydantic', 'msgspec', 'grpc', 'google.protobuf', 'yaml',"
        " 'tree_sitter', 'wrapt', 'asyncio', 'ssl', 'importlib.metadata', 'hashlib',"
        " 'agentsignals._classify.shell')\n"
        "print(sorted({m.split('.')[0] if not m.startswith(('opentelemetry', 'agentsignals')) else m for m in sys.modules if m.startswith(heavy)}))\n"  # noqa: E501
        "print(elapsed)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, elapsed = out.stdout.splitlines()
    assert heavy == "[]", f"import agentsignals pulled in {heavy}"
    # The benchmark measures the real figure (docs/performance.md); this only catches blow-ups.
    assert float(elapsed) < 1.0


def test_public_api_is_explicit() -> None:
    assert sorted(agentsignals.__all__) == sorted(
        [
            "AttemptHandle", "Config", "ToolHandle", "TrialHandle", "TurnHandle", "__version__",
            "attempt", "configure", "current_attempt", "current_tool", "current_turn",
            "force_flush", "instrument", "shutdown", "tool", "trace_attempt", "trace_tool",
            "trace_trial", "trace_turn", "trial", "turn",
        ]
    )  # fmt: skip
    for name in agentsignals.__all__:
        assert getattr(agentsignals, name) is not None
    assert agentsignals.ToolHandle.__module__ == "agentsignals"
    assert (ROOT / "src" / "agentsignals" / "py.typed").is_file()


@pytest.mark.skipif(
    shutil.which("ruff", path=str(Path(sys.executable).parent)) is None, reason="ruff not installed"
)
def test_ruff_clean() -> None:
    ruff = str(Path(sys.executable).parent / "ruff")
    lint = subprocess.run(
        [ruff, "check", "src", "semconv", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [ruff, "format", "--check", "src", "semconv"], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout


@pytest.mark.skipif(
    shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="mypy not installed"
)
def test_mypy_strict_clean() -> None:
    mypy = str(Path(sys.executable).parent / "mypy")
    result = subprocess.run([mypy], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
