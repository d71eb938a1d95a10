"""The built-in ``noticed_fault`` rubric: judged only on attempts with an injected fault, told
what the fault was and where the agent met it (its question), never the outcome; its verdict
joins the recovery signals apart from the trace's own evidence.

The scripted agent runs live on a real git repository in its own process, with the fault plan
from ``AGENTSIGNALS_FAULTS``; the judge is the real CLI over real HTTP against a loopback
server answering the schema (a real small model is in test_judge_e2e.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentsignals._features.record import JudgeField, Recovery
from agentsignals._features.recovery import with_judge
from agentsignals._judge.rubrics import (
    BUILTIN_RUBRICS,
    FAULT_RUBRIC,
    builtin_rubric,
    resolve_rubrics,
)
from agentsignals._judge.run import fault_of, read_spans
from agentsignals._judge.transcript import from_spans, group_by_attempt
from judge_support import (
    LoopbackServer,
    agent_in_subprocess,
    chat_reply,
    read_jsonl,
    run_cli,
    schema_answer,
)

# After the 4th call (the test run) a failing test appears; the 5th call submits: nothing in
# the trace shows the agent saw it.
LATE_TEST = json.dumps(
    {
        "version": 1,
        "faults": [
            {"id": "late-test", "kind": "add_failing_test", "trigger": "after_step", "step": 4}
        ],
    }
)
# After the edit (3rd call) the file the agent read is cut in half; the 4th call runs the
# tests: evidence in the trace (reran_tests).
CUT_AFTER_EDIT = json.dumps(
    {"version": 1, "faults": [{"kind": "truncate_file", "trigger": "after_first_edit"}]}
)


def test_the_rubric_is_built_in_and_only_for_faulted_attempts() -> None:
    rubric = builtin_rubric(FAULT_RUBRIC)
    assert rubric.applies_to == "faulted" and rubric.sees_fault and not rubric.sees_outcome
    assert [f.name for f in rubric.fields] == ["noticed"]
    assert rubric.fields[0].type == "boolean" and rubric.fields[0].reducer == "any"
    assert rubric.procedure.splitlines()[1].startswith("Start with observability.")
    assert rubric.procedure.splitlines()[-1].startswith("If none apply.")
    names = [r.id for r in resolve_rubrics(["builtin"])]
    assert names == [*BUILTIN_RUBRICS, FAULT_RUBRIC]


def _judge(
    *paths: Path, tmp_path: Path, answer: Any, records: Path | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out = tmp_path / "judged.jsonl"
    extra = ["--records", str(records)] if records is not None else []
    with LoopbackServer(default=answer) as model:
        done = run_cli(
            "judge", "run", *map(str, paths), "--rubric", "builtin", *extra,
            "--model", "m", "--base-url", model.url + "/v1",
            "--cache", str(tmp_path / "cache.sqlite"), "--no-progress", "-o", str(out),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        requests = list(model.requests)
    return read_jsonl(out), requests


def _prompt(request: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in request["body"]["messages"])


def test_judge_only_notice_is_kept_apart_from_the_trace(tmp_path: Path) -> None:
    faulted = agent_in_subprocess(
        tmp_path / "f" / "out", tmp_path / "f" / "work", task_id="task-faulted",
        env={"AGENTSIGNALS_FAULTS": LATE_TEST},
    )  # fmt: skip
    clean = agent_in_subprocess(
        tmp_path / "c" / "out", tmp_path / "c" / "work", task_id="task-clean"
    )
    # The fault as the judge reads it, from the attempt span's event.
    spans, problems = read_spans(faulted)
    assert not problems
    (group,) = group_by_attempt(spans).values()
    fault = fault_of(group)
    assert fault is not None and fault.kind == "add_failing_test" and fault.step == 4
    assert "test_regression_guard.py" in fault.description
    transcript = from_spans(group)
    tests_run = next(s for s in transcript.steps if s.tool_index == 3)
    assert tests_run.tool_name == "run_tests"
    assert f"It took effect right after [{tests_run.label}]." in fault.text(transcript)
    assert fault_of(next(iter(group_by_attempt(read_spans(clean)[0]).values()))) is None

    # Records with a verified outcome: the judge's selection may read it, its prompt may not.
    features = run_cli("features", str(faulted), str(clean), "-o", str(tmp_path / "r.jsonl"))
    assert features.returncode == 0, features.stderr
    rows = read_jsonl(tmp_path / "r.jsonl")
    for row in rows:
        row["verification"]["reward"] = 0.0
        row["verification"]["patch_outcome_label"] = "wrong_patch"
    (tmp_path / "v.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    records, requests = _judge(
        faulted, clean, tmp_path=tmp_path, answer=schema_answer, records=tmp_path / "v.jsonl"
    )
    by_task = {r["task_id"]: r for r in records}
    faulted_rec, clean_rec = by_task["task-faulted"], by_task["task-clean"]
    # Six behaviours on both attempts, the fault rubric on the faulted one only.
    assert set(clean_rec["judge"]) == set(BUILTIN_RUBRICS)
    assert set(faulted_rec["judge"]) == {*BUILTIN_RUBRICS, FAULT_RUBRIC}
    assert len(requests) == 2 * len(BUILTIN_RUBRICS) + 1
    fault_prompts = [r for r in requests if r["body"]["response_format"]["json_schema"]["name"]
                     == FAULT_RUBRIC]  # fmt: skip
    (prompt,) = map(_prompt, fault_prompts)
    assert "## Fault injected" in prompt and fault.description in prompt
    assert f"It took effect right after [{tests_run.label}]." in prompt
    assert "## Outcome" not in prompt and "wrong_patch" not in prompt and "reward" not in prompt
    # The other rubrics stay blind to the fault.
    for request in requests:
        if request not in fault_prompts:
            text = _prompt(request)
            assert "Fault injected" not in text and "test_regression_guard" not in text

    judged = faulted_rec["judge"][FAULT_RUBRIC]["noticed"]
    assert judged["status"] == "ok" and judged["value"] is True  # the loopback says yes
    rec = faulted_rec["recovery"]
    assert rec["fault_kind"] == "add_failing_test"
    assert rec["noticed_in_trace"] is False  # the agent submitted next: no evidence
    assert rec["noticed_judge"] is True
    assert rec["noticed"] is True and rec["noticed_how"] == "judge"
    # The judge names no step the trace could count from.
    assert rec["noticed_step"] is None and rec["steps_to_notice"] is None
    assert rec["tokens_to_notice"] is None
    assert clean_rec["recovery"]["fault_injected"] is False
    assert clean_rec["recovery"]["noticed_judge"] is None

    # A judge that says no: the trace's value stands, nothing is attributed to the judge.
    def says_no(request: dict[str, Any]) -> Any:
        schema = request["body"]["response_format"]["json_schema"]["schema"]
        answer = {k: False if v.get("type") == "boolean" else "See [S1]." for k, v in
                  schema["properties"].items()}  # fmt: skip
        return chat_reply(json.dumps(answer))

    (tmp_path / "no").mkdir()
    records, _ = _judge(faulted, tmp_path=tmp_path / "no", answer=says_no)
    (rec_no,) = [r["recovery"] for r in records]
    assert rec_no["noticed_judge"] is False
    assert rec_no["noticed"] is False and rec_no["noticed_how"] is None
    assert rec_no["noticed_in_trace"] is False


def test_evidence_in_the_trace_is_never_overruled(tmp_path: Path) -> None:
    faulted = agent_in_subprocess(
        tmp_path / "out", tmp_path / "work", task_id="task-cut",
        env={"AGENTSIGNALS_FAULTS": CUT_AFTER_EDIT},
    )  # fmt: skip

    def says_no(request: dict[str, Any]) -> Any:
        return chat_reply(json.dumps({"explanation": "Nothing after [S6].", "noticed": False}))

    spans, _ = read_spans(faulted)
    (group,) = group_by_attempt(spans).values()
    fault = fault_of(group)
    assert fault is not None and fault.kind == "truncate_file"
    assert fault.files == ("textkit/stats.py",)
    out = tmp_path / "judged.jsonl"
    with LoopbackServer(default=says_no) as model:
        done = run_cli(
            "judge", "run", str(faulted), "--rubric", FAULT_RUBRIC, "--model", "m",
            "--base-url", model.url + "/v1", "--cache", str(tmp_path / "c.sqlite"),
            "--no-progress", "-o", str(out),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert len(model.requests) == 1
    (record,) = read_jsonl(out)
    rec = record["recovery"]
    assert rec["noticed_in_trace"] is True and rec["noticed_how"] == "reran_tests"
    assert rec["noticed_judge"] is False  # disagreement is visible, not resolved away
    assert rec["noticed"] is True and rec["steps_to_notice"] == 0


def _faulted(**kw: Any) -> Recovery:
    return Recovery(fault_injected=True, fault_kind="tool_error", **kw)


@pytest.mark.parametrize(
    ("trace", "judge", "noticed", "how", "judge_value"),
    [
        (False, JudgeField(value=True), True, "judge", True),
        (False, JudgeField(value=False), False, None, False),
        (False, JudgeField(value=None, status="could_not_judge", reason="x"), False, None, None),
        (False, None, False, None, None),
        (True, JudgeField(value=False), True, "retried_call", False),
        (True, JudgeField(value=True), True, "retried_call", True),
    ],
)
def test_with_judge(
    trace: bool, judge: JudgeField | None, noticed: bool, how: str | None, judge_value: Any
) -> None:
    rec = _faulted(
        noticed=trace, noticed_in_trace=trace, noticed_how="retried_call" if trace else None
    )
    out = with_judge(rec, judge)
    assert (out.noticed, out.noticed_how, out.noticed_judge) == (noticed, how, judge_value)
    assert out.noticed_in_trace is trace
    assert rec.noticed_judge is None  # a new struct
    # Judged again (a re-run replaces the rubric's result): starts from the trace's value.
    again = with_judge(out, JudgeField(value=False))
    assert again.noticed is trace and again.noticed_judge is False
    assert again.noticed_how == ("retried_call" if trace else None)


def test_with_judge_leaves_unfaulted_and_old_records() -> None:
    assert with_judge(Recovery(fault_injected=False), JudgeField(value=True)) == Recovery(
        fault_injected=False
    )
    # A record written before noticed_in_trace existed: its noticed is the trace's.
    old = msgspec.structs.replace(_faulted(noticed=False), noticed_in_trace=None)
    out = with_judge(old, JudgeField(value=True))
    assert out.noticed_in_trace is False and out.noticed_how == "judge"
