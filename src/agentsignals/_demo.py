"""`agentsignals demo`: a small scripted coding agent on a scratch git repository.

No model and no network: the "model" is a script, but everything else is real. The repository
has two real bugs and real unittest tests; the agent searches, reads, edits one file through an
edit tool and the other through `sed -i` in a shell tool, runs the tests, fails its first attempt
(it runs out of tool budget) and succeeds on the retry. Every step is traced.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import agentsignals
from agentsignals import propagate

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentsignals._features.record import AttemptRecord

TASK_ID = "textkit__textkit-1"

REPO_FILES = {
    "README.md": "# textkit\n\nSmall text statistics helpers.\n",
    "textkit/__init__.py": '"""textkit: small text statistics helpers."""\n',
    "textkit/stats.py": textwrap.dedent(
        '''\
        """Statistics over word lengths."""


        def word_lengths(text):
            return [len(word) for word in text.split()]


        def mean(values):
            if not values:
                return 0.0
            return sum(values) / (len(values) + 1)
        '''
    ),
    "textkit/fmt.py": textwrap.dedent(
        '''\
        """Formatting helpers."""


        def percent(ratio):
            return f"{ratio * 10:.1f}%"
        '''
    ),
    "tests/__init__.py": "",
    "tests/test_textkit.py": textwrap.dedent(
        """\
        import unittest

        from textkit.fmt import percent
        from textkit.stats import mean, word_lengths


        class TextkitTest(unittest.TestCase):
            def test_mean(self):
                self.assertEqual(mean(word_lengths("ab abcd")), 3.0)

            def test_mean_empty(self):
                self.assertEqual(mean([]), 0.0)

            def test_percent(self):
                self.assertEqual(percent(0.25), "25.0%")


        if __name__ == "__main__":
            unittest.main()
        """
    ),
}

ISSUE = "mean() of word lengths is too small, and percent(0.25) prints 2.5% instead of 25.0%."


def create_repository(root: Path) -> Path:
    """A scratch git repository with the buggy package and its tests, committed."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in REPO_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "demo",
        "GIT_AUTHOR_EMAIL": "demo@example.invalid",
        "GIT_COMMITTER_NAME": "demo",
        "GIT_COMMITTER_EMAIL": "demo@example.invalid",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "textkit 0.1"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


@dataclass
class Workspace:
    """The agent's tools, each traced as a tool span."""

    root: Path
    log: list[str] = field(default_factory=list)

    @agentsignals.trace_tool("bash")
    def bash(self, command: str) -> str:
        result = subprocess.run(
            command,
            shell=True,
            cwd=self.root,
            capture_output=True,
            text=True,
            env=propagate.subprocess_env(),
            check=False,
        )
        agentsignals.current_tool().set_exit_code(
            result.returncode, failed=result.returncode != 0 and not command.startswith("grep")
        )
        return result.stdout + result.stderr

    @agentsignals.trace_tool
    def read_file(self, path: str) -> str:
        agentsignals.current_tool().set_files([path])
        return (self.root / path).read_text()

    @agentsignals.trace_tool
    def str_replace_editor(self, command: str, path: str, old_str: str, new_str: str) -> str:
        agentsignals.current_tool().set_files([path])
        file = self.root / path
        text = file.read_text()
        if old_str not in text:
            agentsignals.current_tool().set_error("EditNoMatch", "old_str not found")
            return f"Error: old_str not found in {path}"
        file.write_text(text.replace(old_str, new_str, 1))
        return f"The file {path} has been edited."

    @agentsignals.trace_tool
    def run_tests(self) -> subprocess.CompletedProcess[str]:
        # One stream, as a terminal shows it: unittest reports on stderr.
        return subprocess.run(
            [sys.executable, "-m", "unittest", "-q"],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=propagate.subprocess_env(),
            check=False,
        )

    @agentsignals.trace_tool
    def submit(self) -> str:
        return self.bash("git diff")


@dataclass
class Step:
    """One scripted model turn: what it 'thought', its usage, and the tool calls it requests."""

    reasoning: str
    phase: str
    calls: list[tuple[str, dict[str, Any]]]


ATTEMPT_1 = [
    Step(
        "The issue mentions mean(); find where it is defined.",
        "explore",
        [("bash", {"command": "grep -rn 'def mean' textkit"})],
    ),
    Step(
        "Read textkit/stats.py to see how mean is computed.",
        "localize",
        [("read_file", {"path": "textkit/stats.py"})],
    ),
    Step(
        "The divisor is len(values) + 1: off by one. Fix it with the editor.",
        "implement",
        [
            (
                "str_replace_editor",
                {
                    "command": "str_replace",
                    "path": "textkit/stats.py",
                    "old_str": "sum(values) / (len(values) + 1)",
                    "new_str": "sum(values) / len(values)",
                },
            )
        ],
    ),
    Step("Run the tests to verify.", "verify", [("run_tests", {})]),
]

ATTEMPT_2 = [
    Step(
        "Tests still fail on percent. Search for it.",
        "explore",
        [("bash", {"command": "grep -rn 'def percent' textkit"})],
    ),
    Step(
        "Read textkit/fmt.py.",
        "localize",
        [("read_file", {"path": "textkit/fmt.py"})],
    ),
    Step(
        "percent multiplies by 10 instead of 100. A one-line sed fixes it.",
        "implement",
        [("bash", {"command": "sed -i 's/ratio \\* 10:/ratio * 100:/' textkit/fmt.py"})],
    ),
    Step("Run the tests again.", "verify", [("run_tests", {})]),
    Step("All tests pass. Submit.", "verify", [("submit", {})]),
]


@dataclass
class AttemptSummary:
    index: int
    turns: int = 0
    tool_calls: int = 0
    tests_passed: bool | None = None
    exit_reason: str = ""


def run_agent(repo: Path) -> list[AttemptSummary]:
    """Run the scripted agent: attempt 0 runs out of budget, attempt 1 fixes the rest."""
    tools = Workspace(repo)
    summaries: list[AttemptSummary] = []
    with agentsignals.trial(TASK_ID, dataset="demo@1"):
        for index, (script, cap) in enumerate(((ATTEMPT_1, 4), (ATTEMPT_2, 8))):
            summary = AttemptSummary(index)
            with agentsignals.attempt(
                agent_type="scripted-demo",
                model_id="demo/scripted-model",
                dataset="demo@1",
                attempt1_tool_cap=4,
                retry_tool_cap=8,
                concurrency=1,
                timeout_s=300,
                agent_name="demo-agent",
                workspace=str(repo),
            ) as attempt:
                if index:
                    attempt.set_modes(recovery_mode="continue_from_workspace")
                context_tokens = 900
                for step in script:
                    with agentsignals.turn(model="demo/scripted-model", phase=step.phase) as turn:
                        turn.record_reasoning(step.reasoning)
                        context_tokens += 350
                        turn.record_usage(
                            input_tokens=context_tokens,
                            output_tokens=60 + len(step.reasoning),
                            cache_read_tokens=context_tokens - 400,
                        )
                        turn.record_cost(round(context_tokens * 3e-6 + 0.0002, 6))
                    summary.turns += 1
                    for name, args in step.calls:  # tools run after the turn block
                        try:
                            result = getattr(tools, name)(**args)
                        except Exception as exc:  # a failing tool is an observation, as in
                            result = f"Error: {exc}"  # any agent loop
                        summary.tool_calls += 1
                        if name == "run_tests":
                            passed = getattr(result, "returncode", 1) == 0
                            summary.tests_passed = passed
                    if summary.tool_calls >= cap and summary.tests_passed is not True:
                        summary.exit_reason = "max_turns"
                        break
                else:
                    summary.exit_reason = "submitted"
                attempt.set_exit_reason(summary.exit_reason)
                # The harness ran the task's tests itself: its verdict is the outcome.
                attempt.record_outcome(resolved=summary.tests_passed is True)
            summaries.append(summary)
    return summaries


def main(output: Path, workdir: Path | None = None) -> int:
    """Run the demo, write traces under `output`, print where they are and a summary."""
    config = agentsignals.configure(
        output_dir=output, service_name="agentsignals-demo", features=True
    )
    with tempfile.TemporaryDirectory(prefix="agentsignals-demo-") as scratch:
        repo = create_repository((workdir or Path(scratch)) / "textkit")
        print(f"task: {ISSUE}")
        print(f"scratch repository: {repo}")
        summaries = run_agent(repo)
        agentsignals.force_flush()
    print()
    print("attempt  turns  tool calls  tests   exit")
    for s in summaries:
        tests = {True: "pass", False: "FAIL", None: "-"}[s.tests_passed]
        print(f"{s.index:>7}  {s.turns:>5}  {s.tool_calls:>10}  {tests:<6}  {s.exit_reason}")
    agentsignals.shutdown()  # flushes traces and writes the last feature records
    print_features(config.features_dir, {s.index for s in summaries})
    files = sorted(config.traces_dir.glob("*.jsonl"))
    print()
    print(f"traces (OTLP/JSON lines): {config.traces_dir}")
    for path in files[-3:]:
        print(f"  {path.name}")
    print(f"features (JSON lines):    {config.features_dir}")
    write_report(config.features_dir, output / "report" / "report.html")
    return 0 if summaries and summaries[-1].tests_passed else 1


def write_report(features_dir: Path, html: Path) -> None:
    """The report of this run (needs the report extra; says so when it is missing)."""
    try:
        from agentsignals import report
    except ImportError as exc:
        print(
            f"report: needs the report extra ({exc.name} is missing): "
            "pip install 'agentsignals[report]'"
        )
        return
    result = report.build(report.load([features_dir]), report.Options(title="agentsignals demo"))
    path = result.write_html(html)
    result.write_json(html.with_suffix(".json"))
    print(f"report (open in a browser): {path.resolve()}")


def print_features(folder: Path, indexes: set[int]) -> None:
    """The derived signals of each attempt, as the feature records in the store say."""
    from agentsignals import features

    stored = features.read_store(folder)
    records = [r for r in stored.attempts if r.task_id == TASK_ID and r.attempt_index in indexes]
    records = sorted(records, key=lambda r: r.started_at_ns or 0)[-len(indexes) :]
    rows: list[tuple[str, Callable[[AttemptRecord], object]]] = [
        ("behavior.tool_sequence", lambda r: " ".join(r.behavior.tool_sequence or [])),
        ("behavior.edit_calls", lambda r: r.behavior.edit_calls),
        ("behavior.shell_edit_calls", lambda r: r.behavior.shell_edit_calls),
        ("behavior.bash_mediated_edits", lambda r: r.behavior.bash_mediated_edits),
        ("behavior.touched_files", lambda r: ", ".join(r.behavior.touched_files or [])),
        ("behavior.diff_lines", lambda r: r.behavior.diff_lines),
        ("behavior.files_read_before_edit", lambda r: r.behavior.files_read_before_edit),
        ("behavior.first_edit_step", lambda r: r.behavior.first_edit_step),
        ("behavior.validated_after_last_edit", lambda r: r.behavior.validated_after_last_edit),
        ("reasoning.phase_transitions", lambda r: " > ".join(r.reasoning.phase_transitions or [])),
        ("tokens.input_tokens_total", lambda r: r.tokens.input_tokens_total),
        ("tokens.cache_read_ratio", lambda r: _fmt(r.tokens.cache_read_ratio)),
        ("tokens.cost_usd", lambda r: _fmt(r.tokens.cost_usd)),
        ("infra.exit_reason", lambda r: r.infra.exit_reason),
    ]
    print()
    print("features per attempt (agentsignals.features):")
    header = "".join(f"{'attempt ' + str(r.attempt_index):<44}" for r in records)
    print(f"  {'':<36}{header}")
    for name, get in rows:
        cells = "".join(f"{_fmt(get(r)):<44}" for r in records)
        print(f"  {name:<36}{cells}")


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
