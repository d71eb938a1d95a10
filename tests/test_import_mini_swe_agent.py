"""mini-swe-agent trajectories become the spans and features of live runs: a real v1 SWE-bench
run, v2 files written by mini-swe-agent 2.x itself (tests/fixtures/mini_swe_agent, see
generate.py there), hand-written v1 edge cases, and broken copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentsignals import features, verify
from agentsignals import semconv as sc
from agentsignals._features.record import AttemptRecord
from agentsignals._import.formats import ImportProblem, TrajectoryError, mini_swe_agent, swe_agent
from agentsignals._import.run import detect_format, import_file
from agentsignals._spans.model import Span

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RUN = DATA / "mini-swe-agent" / "20251118_gemini-3-pro"
DJANGO = RUN / "trajs/django__django-16527/django__django-16527.traj.json"
REPORT = RUN / "logs/django__django-16527/report.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "mini_swe_agent"
TOOLCALL = FIXTURES / "toolcall.traj.json"
TEXT_LIMITS = FIXTURES / "textbased_limits.traj.json"

needs_data = pytest.mark.skipif(
    not DJANGO.exists(), reason=f"real agent data not found at {DATA} (see SOURCES.md there)"
)


def load(path: Path) -> list[Span]:
    problems: list[ImportProblem] = []
    runs = list(mini_swe_agent.read(path, problems.append))
    assert problems == []
    assert len(runs) == 1
    return runs[0]


def record(spans: list[Span]) -> AttemptRecord:
    (r,) = features.from_spans(spans).attempts
    return r


def of_type(spans: list[Span], kind: str) -> list[Span]:
    return [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == kind]


def write(tmp_path: Path, data: dict[str, Any], name: str = "x__x-1.traj.json") -> Path:
    out = tmp_path / name
    out.write_text(json.dumps(data))
    return out


# ------------------------------------------------------------------------------ real v1 run


@needs_data
def test_django_16527_v1_run() -> None:
    data = json.loads(DJANGO.read_text())
    info = data["info"]
    spans = load(DJANGO)
    r = record(spans)
    b, t = r.behavior, r.tokens
    # Ground truth: 22 API calls; every reply ran one bash command.
    assert info["model_stats"]["api_calls"] == 22
    assert b.turn_count == 22 == t.model_calls
    assert b.tool_call_count == 22 and b.tool_sequence == ["bash"] * 22
    assert b.tool_category_sequence == [
        "search", "read", "search", "search", "read", "read", "shell", "shell", "shell", "shell",
        "shell", "read", "shell", "shell", "shell", "test", "search", "search", "test", "shell",
        "read", "submit",
    ]  # fmt: skip
    # Edits went through the shell: heredocs, sed -i, rm.
    assert b.edit_calls == 0 and b.shell_edit_calls == 5 and b.bash_mediated_edits is True
    assert b.first_edit_step == 6
    changed = b.step_changed_files or []
    assert changed[6] == ["reproduce_issue.py"]
    assert changed[10] == ["django/contrib/admin/templatetags/admin_modify.py"]
    assert changed[19] == ["reproduce_issue.py", "verify_positive_case.py"]
    # The first `python3 reproduce_issue.py` exited 1 (KeyError): a failed call.
    assert b.tool_error_count == 1
    tools = of_type(spans, "tool")
    assert [s.attributes.get(sc.PROCESS_EXIT_CODE) for s in tools][6:9] == [0, 1, 0]
    assert tools[-1].attributes.get(sc.PROCESS_EXIT_CODE) is None  # the submission
    # Touched files from the submission.
    assert b.touched_files == ["django/contrib/admin/templatetags/admin_modify.py"]
    assert [(f.path, f.lines_added, f.lines_removed) for f in b.touched_file_lines or []] == [
        ("django/contrib/admin/templatetags/admin_modify.py", 2, 1)
    ]
    # Usage per call from the provider responses; their sum is the run's total.
    usage = [m["extra"]["response"]["usage"] for m in data["messages"] if m["role"] == "assistant"]
    assert t.input_tokens_total == sum(u["prompt_tokens"] for u in usage) == 117864
    assert t.output_tokens_total == sum(u["completion_tokens"] for u in usage) == 3087
    assert t.cache_read_tokens == sum(u["prompt_tokens_details"]["cached_tokens"] for u in usage)
    assert t.cost_usd == pytest.approx(info["model_stats"]["instance_cost"])
    assert t.context_growth_curve == [u["prompt_tokens"] for u in usage]
    assert r.reasoning.reasoning_tokens_total == 172 + 92
    assert r.reasoning.has_reasoning_blocks is True
    # The agent's own test runs (Django's runner) both passed.
    assert r.verification.agent_test_runs == 2 and r.verification.agent_last_run_failed == 0
    # A submitted run has no failure mode; the raw status is not a failure label.
    assert r.infra.exit_reason == "submitted" and r.infra.final_failure_mode is None
    assert r.task_id == "django__django-16527"
    assert r.treatment.model_id == "google/gemini-3-pro-preview"
    assert r.treatment.agent_type == "mini-swe-agent" and r.treatment.attempt1_tool_cap == 250
    # Turns start at the responses' `created` times: a real wall time (2:09).
    created = [
        m["extra"]["response"]["created"] for m in data["messages"] if m["role"] == "assistant"
    ]
    turns = of_type(spans, "turn")
    assert [s.start_ns for s in turns] == [c * 1_000_000_000 for c in created]
    assert r.infra.wall_time_s == pytest.approx(created[-1] - created[0], abs=0.1)
    assert turns[0].attributes[sc.GEN_AI_REQUEST_MODEL] == "google/gemini-3-pro-preview"


@needs_data
def test_django_16527_is_resolved_by_its_report() -> None:
    attempts = features.from_spans(load(DJANGO)).attempts
    merged = verify.merge(attempts, verify.load_outcomes([REPORT]))
    (r,) = merged.attempts
    assert r.verification.reward == 1.0
    assert r.verification.patch_outcome_label == "correct_patch"


@needs_data
def test_detection() -> None:
    head = DJANGO.read_bytes()[:65536]
    assert mini_swe_agent.detect(DJANGO, head)
    assert not swe_agent.detect(DJANGO, head)
    assert detect_format(DJANGO) == "mini-swe-agent"
    for path in (TOOLCALL, TEXT_LIMITS):
        assert detect_format(path) == "mini-swe-agent"
    for other in (DATA / "swe-agent").rglob("*.traj"):
        assert not mini_swe_agent.detect(other, other.read_bytes()[:65536]), other


def test_detect_is_about_head_and_suffix() -> None:
    assert mini_swe_agent.detect(Path("a.json"), b'{"trajectory_format": "mini-swe-agent-1.1"}')
    assert mini_swe_agent.detect(Path("a.json"), b'{"info": {"mini_version": "2.0.0"')
    # A v1 file whose submission is larger than the head.
    assert mini_swe_agent.detect(
        Path("a.traj.json"), b'{"info": {"exit_status": "Submitted", "submission": "diff'
    )
    assert not mini_swe_agent.detect(Path("a.json"), b'{"info": {"exit_status": "x"')
    assert not mini_swe_agent.detect(Path("a.json"), b'[{"messages": []}]')
    assert not mini_swe_agent.detect(Path("a.traj"), b'{"trajectory": [{"action": "ls"')


# ------------------------------------------------------------------ v2, by mini-swe-agent


def test_v2_tool_calls_fixture() -> None:
    data = json.loads(TOOLCALL.read_text())
    assert data["trajectory_format"] == "mini-swe-agent-1.1"
    spans = load(TOOLCALL)
    r = record(spans)
    b, t = r.behavior, r.tokens
    # 6 API calls: 5 replies and one whose reply had no tool call (a format error).
    assert data["info"]["model_stats"]["api_calls"] == 6
    assert b.turn_count == 6 == t.model_calls
    assert b.tool_sequence == ["bash"] * 6
    assert b.tool_category_sequence == ["search", "read", "search", "shell", "test", "submit"]
    tools, turns = of_type(spans, "tool"), of_type(spans, "turn")
    # Two parallel calls of the first reply share its turn; results go by tool call id.
    assert [s.attributes[sc.AGENT_SIGNALS_TURN_INDEX] for s in tools] == [0, 0, 2, 3, 4, 5]
    assert [s.attributes.get(sc.GEN_AI_TOOL_CALL_ID) for s in tools] == [
        "call_10", "call_11", "call_30", "call_40", "call_50", "call_60",
    ]  # fmt: skip
    assert tools[1].attributes[sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES] == len(
        "def add(a, b):\n    return a - b\n"
    )
    assert [s.attributes.get(sc.PROCESS_EXIT_CODE) for s in tools] == [0, 0, 0, 0, 0, None]
    assert b.step_changed_files == [[], [], [], ["calc.py"], [], []]
    assert b.validated_after_last_edit is True
    assert r.verification.agent_test_runs == 1
    assert r.verification.agent_last_run_passed == 2 and r.verification.agent_last_run_failed == 0
    # Per-call usage and cost (the format error's call was billed too).
    assert t.input_tokens_total == 1200 + 1400 + 1500 + 1600 + 1700 + 1900
    assert t.cache_read_tokens == 0 + 0 + 1200 + 1400 + 1500 + 1600
    assert t.cost_usd == pytest.approx(data["info"]["model_stats"]["instance_cost"])
    assert r.reasoning.reasoning_tokens_total == 30
    assert r.reasoning.plan_steps_detected == 2  # "1. list the files / 2. read calc.py"
    # The format error's reply text is not in the file (only its usage): its text is unknown.
    assert sc.AGENT_SIGNALS_TURN_THOUGHT_CHARS not in turns[1].attributes
    assert turns[2].attributes[sc.AGENT_SIGNALS_TURN_THOUGHT_CHARS] > 0
    # Every reply and observation is timestamped: nothing synthesized.
    assert not any(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME in s.attributes for s in spans)
    ts = [m["extra"]["timestamp"] for m in data["messages"] if m["role"] == "tool"]
    assert [s.end_ns for s in tools[:5]] == [int(x * 1e9) for x in ts]
    assert all(tool.start_ns >= turns[0].end_ns for tool in tools)
    assert r.infra.exit_reason == "submitted"
    assert b.touched_files == ["calc.py"]
    assert r.task_id == "fixture__calc-1" and r.treatment.attempt1_tool_cap == 20


def test_v2_text_based_fixture_ends_on_the_step_limit() -> None:
    data = json.loads(TEXT_LIMITS.read_text())
    r = record(spans := load(TEXT_LIMITS))
    b = r.behavior
    assert data["info"]["exit_status"] == "LimitsExceeded"
    assert b.turn_count == 3 == data["info"]["model_stats"]["api_calls"]
    assert b.tool_category_sequence == ["shell", "shell", "read"]
    # The heredoc wrote helper.py; `sleep 5` hit the 1 s command timeout.
    assert b.step_changed_files == [["helper.py"], [], []]
    tools = of_type(spans, "tool")
    assert tools[1].attributes[sc.ERROR_TYPE] == "timeout"
    assert sc.PROCESS_EXIT_CODE not in tools[1].attributes  # -1 is mini's marker, not a code
    assert b.tool_error_count == 1
    # api_calls reached step_limit: the turn cap, not the cost.
    assert r.infra.exit_reason == "max_turns" and r.infra.final_failure_mode == "LimitsExceeded"
    # No patch is collected unless the agent submits: unknown, not "nothing touched".
    attempt = of_type(spans, "attempt")[0]
    assert sc.AGENT_SIGNALS_ATTEMPT_TOUCHED_FILES not in attempt.attributes
    # The THOUGHT text is visible text, not a reasoning block.
    assert r.reasoning.thought_chars_total == sum(
        len(x) for x in ("Write a helper script.", "This may hang.", "Read the code.")
    )
    assert r.reasoning.reasoning_chars_total is None


# ------------------------------------------------------------------ v1, edge cases by hand


def v1(messages: list[dict[str, Any]], status: str, **info: Any) -> dict[str, Any]:
    """A v1 file as mini-swe-agent 1.x's save_traj writes it."""
    return {
        "info": {
            "exit_status": status,
            "submission": info.pop("submission", ""),
            "model_stats": info.pop("model_stats", {"instance_cost": 0.0, "api_calls": 0}),
            "mini_version": "1.15.0",
            "config": info.pop("config", {}),
        },
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Fix it."},
            *messages,
        ],
        "trajectory_format": "mini-swe-agent-1",
    }


def reply(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def observation(code: int, output: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": f"<returncode>{code}</returncode>\n<output>\n{output}</output>",
    }


def test_v1_format_errors_timeouts_and_the_cost_limit(tmp_path: Path) -> None:
    long_output = (
        "<returncode>0</returncode>\n<warning>\ntoo long\n</warning><output_head>\nHEAD\n"
        "</output_head>\n<elided_chars>\n20000 characters elided\n</elided_chars>\n"
        "<output_tail>\nTAIL\n</output_tail>"
    )
    timeout = (
        "The last command <command>sleep 99</command> timed out and has been killed.\n"
        "The output of the command was:\n <output>\n\n</output>\nPlease try another command."
    )
    messages = [
        reply("THOUGHT: two things\n\n```bash\nls\n```\n\n```bash\npwd\n```"),
        {
            "role": "user",
            "content": "Please always provide EXACTLY ONE action in triple backticks.",
        },
        reply("No command at all."),
        {
            "role": "user",
            "content": "Please always provide EXACTLY ONE action in triple backticks.",
        },
        reply("THOUGHT: wait, actually list it\n\n```bash\nfind . -name '*.py'\n```"),
        {"role": "user", "content": long_output},
        reply("```bash\nsleep 99\n```"),
        {"role": "user", "content": timeout},
        reply("```bash\npython -m pytest -q\n```"),
        observation(1, "FAILED tests/test_a.py::test_x - assert 0\n1 failed, 2 passed in 0.5s\n"),
        {"role": "user", "content": ""},  # LimitsExceeded's message
    ]
    data = v1(
        messages,
        "LimitsExceeded",
        model_stats={"instance_cost": 3.02, "api_calls": 5},
        config={"agent": {"step_limit": 0, "cost_limit": 3.0}, "model": {"model_name": "m"}},
    )
    spans = load(write(tmp_path, data))
    r = record(spans)
    b = r.behavior
    assert b.turn_count == 5  # format errors are replies too (api_calls)
    assert b.tool_sequence == ["bash"] * 3 and b.tool_category_sequence == [
        "search",
        "shell",
        "test",
    ]
    tools = of_type(spans, "tool")
    assert tools[0].attributes[sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES] == len("HEAD\n\nTAIL\n")
    assert tools[1].attributes[sc.ERROR_TYPE] == "timeout"
    assert tools[2].attributes[sc.ERROR_TYPE] == "exit_code_1"
    assert r.verification.agent_last_run_failed == 1 and r.verification.agent_last_run_passed == 2
    assert r.reasoning.self_correction_count == 2  # "wait", "actually"
    assert r.infra.exit_reason == "cost_limit"
    assert r.tokens.cost_usd == 3.02 and r.tokens.input_tokens_total is None
    assert r.treatment.attempt1_tool_cap is None  # step_limit 0: no cap
    # No timestamps at all: synthesized, and marked.
    assert all(s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) is True for s in spans)


def test_v1_uncaught_exception_is_an_error(tmp_path: Path) -> None:
    data = v1([reply("```bash\nls\n```")], "RuntimeError", model_stats={"api_calls": 1})
    spans = load(write(tmp_path, data))
    r = record(spans)
    assert r.behavior.tool_call_count == 1  # cut off before its observation
    assert r.infra.exit_reason == "error" and r.infra.final_failure_mode == "RuntimeError"
    assert of_type(spans, "attempt")[0].attributes[sc.ERROR_TYPE] == "RuntimeError"


@pytest.mark.parametrize(
    ("status", "kwargs", "reason"),
    [
        ("Submitted", {}, "submitted"),
        ("LimitsExceeded", {"api_calls": 250, "step_limit": 250}, "max_turns"),
        (
            "LimitsExceeded",
            {"api_calls": 9, "step_limit": 250, "cost": 3.1, "cost_limit": 3.0},
            "cost_limit",
        ),
        ("LimitsExceeded", {"api_calls": 9}, None),
        ("TimeExceeded", {}, "timeout"),
        ("RepeatedFormatError", {}, "error"),
        ("ContextWindowExceededError", {}, "context_overflow"),
        ("UserInterruption", {}, "user_stopped"),
        ("KeyboardInterrupt", {}, "interrupted"),
        ("DockerError", {}, "error"),
        ("", {}, None),
        (None, {}, None),
    ],
)
def test_exit_status_mapping(
    status: str | None, kwargs: dict[str, Any], reason: str | None
) -> None:
    assert mini_swe_agent.exit_reason(status, **kwargs) == reason


def test_bad_messages_are_reported(tmp_path: Path) -> None:
    data = v1([reply("```bash\nls\n```"), observation(0, "a\n"), "junk"], "Submitted")  # type: ignore[list-item]
    problems: list[ImportProblem] = []
    (spans,) = mini_swe_agent.read(write(tmp_path, data), problems.append)
    assert [p.message for p in problems] == ["message 4 is not an object; skipped"]
    r = record(spans)
    assert r.behavior.tool_call_count == 1
    assert r.behavior.touched_files == []  # submitted an empty patch
    assert r.task_id == "x__x-1"  # no instance_id: the file name


# ------------------------------------------------------------------------- broken files


@needs_data
def test_truncated_file_names_the_file_and_line(tmp_path: Path) -> None:
    text = DJANGO.read_text()
    cut = tmp_path / DJANGO.name
    cut.write_text(text[: int(len(text) * 0.7)])
    with pytest.raises(TrajectoryError) as err:
        list(mini_swe_agent.read(cut, lambda p: None))
    assert err.value.problem.path == str(cut)
    assert err.value.problem.line == text[: int(len(text) * 0.7)].count("\n") + 1
    assert "truncated JSON" in str(err.value)
    result = import_file(cut)
    assert result.format == "mini-swe-agent" and result.trajectories == []
    assert [p.path for p in result.problems] == [str(cut)]


@needs_data
def test_corrupted_file_names_the_file_and_line(tmp_path: Path) -> None:
    lines = DJANGO.read_text().splitlines(keepends=True)
    lines[40] = lines[40].rstrip("\n") + " }\n"
    bad = tmp_path / DJANGO.name
    bad.write_text("".join(lines))
    with pytest.raises(TrajectoryError) as err:
        list(mini_swe_agent.read(bad, lambda p: None))
    assert err.value.problem.line == 41
    assert str(err.value).startswith(f"{bad}:41: malformed JSON")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"[]", "no 'messages' list"),
        (b'{"info": {}, "messages": {}}', "no 'messages' list"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.traj.json"
    path.write_bytes(content)
    with pytest.raises(TrajectoryError) as err:
        list(mini_swe_agent.read(path, lambda p: None))
    assert err.value.problem.path == str(path)
    assert message in err.value.problem.message


def test_parallel_calls_keep_file_order_wherever_the_file_lives(tmp_path: Path) -> None:
    # Span ids derive from the file's path; calls sharing a timestamp must not be ordered by them.
    sequences = set()
    for name in ("a", "yy2", "zzz3", "q4", "another-directory"):
        folder = tmp_path / name
        folder.mkdir()
        copy = folder / TOOLCALL.name
        copy.write_bytes(TOOLCALL.read_bytes())
        spans = load(copy)
        first_two = of_type(spans, "tool")[:2]
        assert first_two[0].start_ns < first_two[1].start_ns
        sequences.add(tuple(record(spans).behavior.tool_category_sequence or ()))
    assert sequences == {("search", "read", "search", "shell", "test", "submit")}
