"""End to end: a real agent loop on a real git repository, traced, then turned into features
three ways (in process, offline from the files, from Python), which must agree.

The agent makes a direct edit, a `sed -i` edit, creates a file through a heredoc, runs the
repository's real tests, fails, and succeeds on a retry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentsignals
from agentsignals import features, propagate

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
    pytest.mark.usefixtures("fresh_otel"),
]


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "calc"
    (root / "calc").mkdir(parents=True)
    (root / "calc" / "__init__.py").write_text("")
    (root / "calc" / "ops.py").write_text(
        "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n"
    )
    (root / "calc" / "util.py").write_text("SCALE = 10\n")
    (root / "test_calc.py").write_text(
        textwrap.dedent(
            """\
            import unittest
            from calc.ops import add, mul
            class T(unittest.TestCase):
                def test_add(self): self.assertEqual(add(2, 3), 5)
                def test_mul(self): self.assertEqual(mul(2, 3), 6)
                def test_helper(self):
                    from calc.helpers import double
                    self.assertEqual(double(4), 8)
            """
        )
    )
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "init")
    return root


class Agent:
    def __init__(self, root: Path) -> None:
        self.root = root

    @agentsignals.trace_tool
    def read_file(self, path: str) -> str:
        agentsignals.current_tool().set_files([path])
        return (self.root / path).read_text()

    @agentsignals.trace_tool
    def edit_file(self, path: str, old: str, new: str) -> str:
        agentsignals.current_tool().set_files([path])
        file = self.root / path
        file.write_text(file.read_text().replace(old, new))
        return "ok"

    @agentsignals.trace_tool
    def bash(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command], cwd=self.root, capture_output=True, text=True,
            env=propagate.subprocess_env(), check=False,
        )  # fmt: skip

    @agentsignals.trace_tool("pytest")
    def run_tests(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "unittest", "-q", "test_calc"], cwd=self.root,
            capture_output=True, text=True, check=False,
        )  # fmt: skip


def run_agent(repo: Path) -> list[int]:
    agent = Agent(repo)
    exits = []
    with agentsignals.trial("calc-1"):
        with agentsignals.attempt(agent_type="e2e", workspace=str(repo), attempt1_tool_cap=5) as a0:
            with agentsignals.turn() as t:
                t.record_usage(input_tokens=1000, output_tokens=50)
            agent.bash("grep -rn 'def add' calc")
            agent.read_file("calc/ops.py")
            agent.read_file("calc/util.py")
            agent.edit_file("calc/ops.py", "return a - b", "return a + b")  # direct edit
            exits.append(agent.run_tests().returncode)  # mul and helpers still fail
            a0.set_exit_reason("max_turns")
        with agentsignals.attempt(agent_type="e2e", workspace=str(repo), retry_tool_cap=8) as a1:
            with agentsignals.turn() as t:
                t.record_usage(input_tokens=2000, output_tokens=70)
            agent.read_file("calc/ops.py")
            agent.bash("sed -i '6s/a + b/a * b/' calc/ops.py")  # shell edit of mul only
            agent.bash("cat > calc/helpers.py <<'EOF'\ndef double(x):\n    return 2 * x\nEOF")
            exits.append(agent.run_tests().returncode)
            a1.set_exit_reason("submitted")
    return exits


def test_real_agent_loop_features_in_process_offline_and_python_agree(
    repo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    agentsignals.configure(output_dir=out, features=True, batch=False)
    assert run_agent(repo) == [1, 0]
    agentsignals.shutdown()

    in_process = features.read_store(out / "features")
    offline = features.extract(out / "traces")
    assert [r.attempt_id for r in in_process.attempts] == [r.attempt_id for r in offline.attempts]
    for a, b in zip(in_process.attempts, offline.attempts, strict=True):
        assert json.loads(json.dumps(features.to_rows([a])[0])) == json.loads(
            json.dumps(features.to_rows([b])[0])
        )
    a0, a1 = offline.attempts

    assert a0.attempt_index == 0 and a1.attempt_index == 1
    assert a0.behavior.tool_sequence == ["bash", "read_file", "read_file", "edit_file", "pytest"]
    assert a0.behavior.touched_files == ["calc/ops.py"]
    assert [
        (f.path, f.lines_added, f.lines_removed) for f in a0.behavior.touched_file_lines or []
    ] == [("calc/ops.py", 1, 1)]
    assert a0.behavior.diff_lines == 2
    assert (
        a0.behavior.edit_calls,
        a0.behavior.shell_edit_calls,
        a0.behavior.bash_mediated_edits,
    ) == (1, 0, False)
    assert a0.behavior.files_read_before_edit == 2
    assert a0.behavior.first_edit_step == 3
    assert a0.behavior.validated_after_last_edit is True
    assert a0.treatment.attempt1_tool_cap == 5

    # The retry edits only through the shell: invisible to an edit counter, seen on the workspace.
    # In the order the agent first edited them: sed on ops.py, then the heredoc helpers.py.
    assert a1.behavior.touched_files == ["calc/ops.py", "calc/helpers.py"]
    lines = {f.path: (f.lines_added, f.lines_removed) for f in a1.behavior.touched_file_lines or []}
    assert lines == {"calc/helpers.py": (2, 0), "calc/ops.py": (1, 1)}
    assert a1.behavior.diff_lines == 4
    assert (
        a1.behavior.edit_calls,
        a1.behavior.shell_edit_calls,
        a1.behavior.bash_mediated_edits,
    ) == (0, 2, True)
    assert a1.behavior.files_read_before_edit == 1
    assert a1.behavior.first_edit_step == 1
    assert a1.infra.exit_reason == "submitted"
    assert a1.tokens.input_tokens_total == 2000

    [trial] = offline.trials
    assert trial.attempt_count == 2
    assert trial.first_attempt is not None and trial.first_attempt.attempt_index == 0
    assert [r.attempt_index for r in trial.retries] == [1]
    assert trial.retries_tool_call_count == 4

    # The Python entry point on the SDK's own spans gives the same records.
    frame = features.to_dataframe(offline.attempts)
    assert list(frame["behavior.shell_edit_calls"]) == [0, 2]
    assert list(frame["infra.attempt_index"]) == [0, 1]
