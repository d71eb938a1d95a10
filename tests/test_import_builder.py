"""The shared import machinery: the trajectory builder, shell-edit detection from command text,
and encoding typed spans back to OTLP (JSON and protobuf) without losing anything."""

from __future__ import annotations

import itertools

import pytest

from agentsignals import features
from agentsignals import semconv as sc
from agentsignals._classify.tools import shell_edit_targets
from agentsignals._import.builder import TrajectoryBuilder, patch_stats
from agentsignals._spans.decode import decode_otlp_json, decode_otlp_protobuf
from agentsignals._spans.encode import encode_otlp_json, encode_otlp_protobuf

PATCH = """diff --git a/src/a.py b/src/a.py
--- a/src/a.py
+++ b/src/a.py
@@ -1,3 +1,3 @@
 x = 1
-y = 2
+y = 3
 z = 4
diff --git a/src/new.py b/src/new.py
new file mode 100644
--- /dev/null
+++ b/src/new.py
@@ -0,0 +1,2 @@
+print(1)
+print(2)
"""


def build(*, with_times: bool) -> list:
    t0 = 1_700_000_000_000_000_000 if with_times else None
    traj = TrajectoryBuilder(
        source_format="test", source_path="/x/run.traj", task_id="pkg__pkg-1", start_ns=t0
    )
    attempt = traj.attempt(agent_type="demo", model_id="m")
    step = (lambda i: t0 + i * 1_000_000_000) if with_times else (lambda i: None)
    turn = attempt.turn(reasoning="1. look\n2. fix", start_ns=step(1), end_ns=step(2))
    attempt.tool(
        "bash",
        turn=turn,
        command="grep -rn foo src",
        result="src/a.py:1:foo",
        start_ns=step(2),
        end_ns=step(3),
    )
    attempt.turn(start_ns=step(3), end_ns=step(4))
    attempt.tool("bash", command="sed -i 's/2/3/' src/a.py", start_ns=step(4), end_ns=step(5))
    attempt.tool(
        "bash",
        command="cat > src/new.py <<'EOF'\nprint(1)\nprint(2)\nEOF",
        start_ns=step(5),
        end_ns=step(6),
    )
    attempt.tool(
        "str_replace_editor", arguments={"command": "view", "path": "src/a.py"}, files=["src/a.py"]
    )
    attempt.tool(
        "bash", command="python -m pytest -q", result="1 failed, 2 passed in 0.1s", exit_code=1
    )
    sub = traj.attempt(parent=attempt, agent_type="subagent")
    sub.turn()
    sub.tool("Read", files=["README.md"])
    sub.end(exit_reason="submitted")
    attempt.end(
        exit_reason="submitted",
        submission=PATCH,
        input_tokens=5000,
        output_tokens=300,
        cost_usd=0.12,
    )
    return traj.finish()


def test_builder_spans_become_the_features_they_describe() -> None:
    spans = build(with_times=True)
    result = features.from_spans(spans)
    main = next(r for r in result.attempts if r.parent_attempt_id is None)
    sub = next(r for r in result.attempts if r.parent_attempt_id is not None)
    b = main.behavior
    assert b.turn_count == 2
    assert b.tool_sequence == ["bash", "bash", "bash", "str_replace_editor", "bash"]
    assert b.tool_category_sequence == ["search", "shell", "shell", "read", "test"]
    assert (b.edit_calls, b.shell_edit_calls, b.bash_mediated_edits) == (0, 2, True)
    assert b.touched_files == ["src/a.py", "src/new.py"]  # from the submitted patch
    assert [(f.path, f.lines_added, f.lines_removed) for f in b.touched_file_lines or []] == [
        ("src/a.py", 1, 1),
        ("src/new.py", 2, 0),
    ]
    assert b.validated_after_last_edit is True
    # Totals only: not spread over turns, so there is no growth curve.
    assert (main.tokens.input_tokens_total, main.tokens.output_tokens_total) == (5000, 300)
    assert main.tokens.cost_usd == pytest.approx(0.12)
    assert main.tokens.context_growth_curve is None
    assert main.reasoning.plan_steps_detected == 2
    assert main.verification.agent_last_run_failed == 1
    [trial] = result.trials
    assert trial.attempt_count == 1
    assert trial.first_attempt is not None and trial.first_attempt.attempt_id == main.attempt_id
    assert trial.retries == [] and [s.attempt_id for s in trial.subagents] == [sub.attempt_id]
    # Spans with the file's own times are not marked; those whose times were made up are.
    own = [s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_ATTEMPT_ID) == main.attempt_id]
    timed = [spans[0]] + [s for s in own if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "turn"]
    timed += [s for s in own if s.attributes.get(sc.GEN_AI_TOOL_NAME) == "bash"][:3]
    assert len(timed) == 6
    assert all(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME not in s.attributes for s in timed)
    untimed = [s for s in spans if s.attributes.get(sc.GEN_AI_TOOL_NAME) == "str_replace_editor"]
    assert untimed[0].attributes[sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME] is True


def test_missing_times_are_synthesized_in_order_and_marked() -> None:
    spans = build(with_times=False)
    assert all(s.attributes.get(sc.AGENT_SIGNALS_IMPORT_SYNTHETIC_TIME) is True for s in spans)
    tools = sorted(
        (s for s in spans if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "tool"),
        key=lambda s: s.start_ns,
    )
    assert [s.attributes[sc.GEN_AI_TOOL_NAME] for s in tools][:3] == ["bash", "bash", "bash"]
    assert all(a.end_ns <= b.start_ns for a, b in itertools.pairwise(tools))


def test_importing_twice_gives_the_same_ids() -> None:
    first, second = build(with_times=True), build(with_times=True)
    assert [(s.trace_id, s.span_id) for s in first] == [(s.trace_id, s.span_id) for s in second]
    assert len({s.span_id for s in first}) == len(first)


def test_timeouts_and_shared_timestamps() -> None:
    t0 = 1_700_000_000_000_000_000
    traj = TrajectoryBuilder(source_format="test", source_path="/x/r", task_id="t", start_ns=t0)
    attempt = traj.attempt()
    attempt.turn(start_ns=t0)
    # Parallel calls of one reply share its timestamp; the file's order is kept.
    attempt.tool("bash", command="sleep 999", error="timeout", start_ns=t0)
    attempt.tool("bash", command="ls", error="exit_code_2", start_ns=t0)
    attempt.tool("bash", command="make", error="CommandFailed", timed_out=True, start_ns=t0)
    attempt.end()
    tools = [s for s in traj.finish() if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "tool"]
    assert [s.start_ns - t0 for s in tools] == [0, 1, 2]
    assert all(s.end_ns >= s.start_ns for s in tools)
    assert [s.attributes.get(sc.AGENT_SIGNALS_TOOL_TIMED_OUT) for s in tools] == [True, None, True]


def test_encoding_round_trips_through_json_and_protobuf() -> None:
    spans = build(with_times=True)
    assert decode_otlp_json(encode_otlp_json(spans)) == spans
    assert decode_otlp_protobuf(encode_otlp_protobuf(spans)) == spans


def test_patch_stats() -> None:
    assert patch_stats(PATCH) == [("src/a.py", 1, 1), ("src/new.py", 2, 0)]
    assert patch_stats("") == []


@pytest.mark.parametrize(
    ("command", "targets"),
    [
        ("sed -i 's/a/b/' src/x.py", ["src/x.py"]),
        ("sed -i -e s/a/b/ a.py b.py", ["a.py", "b.py"]),
        ("sed -i.bak 's/a/b/' a.py", ["a.py"]),
        ("perl -pi -e 's/a/b/' z.py", ["z.py"]),
        ("cat > new.py <<'EOF'\nprint(1) > not_a_file\nEOF", ["new.py"]),
        ("echo hi >> log.txt 2>/dev/null", ["log.txt"]),
        ("cat a.py | tee c.py", ["c.py"]),
        ("rm -f a.py && touch b.py", ["a.py", "b.py"]),
        ("grep -rn foo . > /dev/null", []),
        ("sed -n '1,5p' a.py", []),
        ("python -m pytest -q 2>&1 | tail", []),
        ("ls -la", []),
    ],
)
def test_shell_edit_targets(command: str, targets: list[str]) -> None:
    assert shell_edit_targets(command) == targets
