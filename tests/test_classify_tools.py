"""Tool categories inferred from common tool names and shell commands, and overridable."""

from __future__ import annotations

import pytest

import agentsignals
from agentsignals import semconv as sc
from agentsignals._classify.tools import category_for, classify_command
from agentsignals.testing import CapturedSpans, attributes


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Claude Code
        ("Read", "read"), ("Edit", "edit"), ("Write", "edit"), ("MultiEdit", "edit"),
        ("Bash", "shell"), ("Grep", "search"), ("Glob", "search"), ("LS", "search"),
        ("NotebookEdit", "edit"),
        # SWE-agent, mini-swe-agent, OpenHands, Codex and friends
        ("bash", "shell"), ("execute_bash", "shell"), ("shell", "shell"), ("run_command", "shell"),
        ("read_file", "read"), ("view_file", "read"), ("cat", "read"),
        ("grep", "search"), ("find_file", "search"), ("search_dir", "search"),
        ("search_codebase", "search"), ("find", "search"),
        ("edit_file", "edit"), ("apply_patch", "edit"), ("create_file", "edit"),
        ("pytest", "test"), ("run_tests", "test"),
        ("submit", "submit"), ("finish", "submit"), ("attempt_completion", "submit"),
        ("mcp__filesystem__read_file", "read"), ("workspace_grep", "search"),
        ("summon_dragon", "other"),
    ],
)  # fmt: skip
def test_category_from_name(name: str, expected: str) -> None:
    assert category_for(name).value == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("view", "read"),
        ("create", "edit"),
        ("str_replace", "edit"),
        ("insert", "edit"),
        ("undo_edit", "edit"),
    ],
)
def test_str_replace_editor_subcommands(command: str, expected: str) -> None:
    assert (
        category_for("str_replace_editor", {"command": command, "path": "a.py"}).value == expected
    )


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python -m pytest tests/test_x.py -x", "test"),
        ("cd repo && pytest -q", "test"),
        ("python manage.py test auth", "test"),
        ("grep -rn 'def mean' src", "search"),
        ("rg TODO", "search"),
        ("find . -name '*.py' | head", "search"),
        ("git grep -n foo", "search"),
        ("cat setup.py", "read"),
        ("sed -n '1,40p' a.py", "read"),
        ("head -50 a.py", "read"),
        ("sed -i 's/a/b/' a.py", "shell"),  # an edit: the workspace tracker marks it shell-mediated
        ("cat > new.py <<'EOF'\nprint(1)\nEOF", "shell"),
        ("echo hi > out.txt", "shell"),
        ("python -c 'print(1)'", "shell"),
        ("pip install -e .", "shell"),
        ("'unbalanced", "shell"),
    ],
)
def test_shell_commands_classified_by_what_they_do(command: str, expected: str) -> None:
    assert classify_command(command).value == expected
    assert category_for("bash", {"command": command}).value == expected


def test_explicit_category_overrides(captured: CapturedSpans) -> None:
    with agentsignals.tool("grep", category="other"):
        pass
    with agentsignals.tool("bash", arguments={"command": "pytest"}) as t:
        t.set_category("shell")
    assert [attributes(s)[sc.AGENT_SIGNALS_TOOL_CATEGORY] for s in captured.spans] == [
        "other",
        "shell",
    ]
