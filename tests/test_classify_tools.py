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


BIG_BODY = "x = compute(1, 2)  # pytest > out | grep\n" * 200_000  # 8.6 MB of data, not commands


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # The heredoc body is data: what the command does is read around it.
        ("cat > big.py <<'EOF'\n" + BIG_BODY + "EOF\npytest big.py -q", "test"),
        ("cat > big.py <<'EOF'\n" + BIG_BODY + "EOF\ncat big.py", "shell"),
        ("cat <<-EOF > big.txt\n" + BIG_BODY + "\t\tEOF\ngrep -n foo big.txt", "shell"),
        ("python - <<EOF\n" + BIG_BODY, "shell"),  # unterminated: runs to the end
        # Long commands without heredocs are read by their first 4 KB ...
        ("grep -rn foo " + "src/a.py " * 2000, "search"),
        ("grep -rn -i foo " + "src/a.py " * 2000, "search"),
        ("cat " + "a.py " * 2000 + "| wc -l", "read"),
        # ... and a redirection or in-place edit past them still makes them no read.
        ("cat " + "a.py " * 2000 + "> all.py", "shell"),
        ("grep -l foo " + "a.py " * 2000 + "; sed -i 's/a/b/' a.py", "shell"),
        ("<<" * 4_000_000, "shell"),
        ("".join(f"cat <<E{i}\nx\nE{i}\n" for i in range(20_000)) + "ls", "read"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else v,
)
def test_long_commands_are_read_with_bounded_work(command: str, expected: str) -> None:
    """A bash call with an 8 MiB heredoc took seconds in shlex on every call, capture on or
    off. Longer commands are read without heredoc bodies, then by their first 4 KB."""
    assert classify_command(command).value == expected
    assert category_for("bash", {"command": command}).value == expected
