"""Rubrics (YAML, the six built-ins), the tolerant answer parser, votes and reducers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsignals._judge.engine import Answer, reduce_field, vote
from agentsignals._judge.parse import ParseError, extract_json, parse_answer
from agentsignals._judge.rubrics import (
    BUILTIN_RUBRICS,
    OutputField,
    RubricError,
    builtin_rubric,
    builtin_rubric_ids,
    load_rubric,
    resolve_rubrics,
    rubric_prompt,
)
from agentsignals._judge.transcript import Chunk
from judge_support import run_cli

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_34664b12ffc2440c.txt"

TINY = """\
id: touched_tests
version: "2"
title: Touched tests
procedure: |
  Label match when the agent edits a test file.
fields:
  match: {type: boolean, description: the agent edited a test file}
  how: {type: enum, values: [edit_tool, shell, none]}
  files: {type: list, max_items: 3, description: test files edited}
"""


def test_the_six_built_ins_and_the_failure_summary_load() -> None:
    assert builtin_rubric_ids()[:6] == list(BUILTIN_RUBRICS)
    assert "failure_summary" in builtin_rubric_ids()
    for rubric_id in builtin_rubric_ids():
        rubric = builtin_rubric(rubric_id)
        assert rubric.id == rubric_id
        assert len(rubric.examples) in (1, 2)
        if rubric_id in BUILTIN_RUBRICS:  # a decision procedure, step by step
            assert rubric.procedure.count("\n") >= 5
            assert rubric.procedure.splitlines()[1].startswith("Start with observability.")
            assert rubric.procedure.splitlines()[-1].startswith("If none apply.")
        schema = rubric.json_schema()
        assert next(iter(schema["properties"])) == "explanation"  # the reason before the verdict
        assert schema["required"] == list(schema["properties"])
    # builtin: the six behaviours, and noticed_fault (judged only on attempts with a fault)
    assert resolve_rubrics(["builtin"]) == [
        builtin_rubric(r) for r in (*BUILTIN_RUBRICS, "noticed_fault")
    ]
    drift = builtin_rubric("memory_drift")
    assert drift.fields[0].name == "match" and drift.fields[0].reduce == "any"
    assert drift.sees_outcome is False and drift.applies_to == "all"


def test_memory_drift_is_the_write_ups_procedure_verbatim() -> None:
    if not SEED.exists():
        pytest.skip(f"the seed write-up is not at {SEED}")
    text = SEED.read_text(encoding="utf-8")
    start = text.index("State tracking means")
    end = text.index("4.2 LLM-Judge Pipeline")
    seed_lines = [line.strip() for line in text[start:end].splitlines() if line.strip()]
    ours = [line.strip() for line in builtin_rubric("memory_drift").procedure.splitlines()]
    assert ours == seed_lines


def test_a_users_rubric_works_without_code(tmp_path: Path) -> None:
    path = tmp_path / "touched_tests.yaml"
    path.write_text(TINY)
    rubric = load_rubric(path)
    assert rubric.version == "2"
    assert [(f.name, f.type, f.reduce) for f in rubric.fields] == [
        ("match", "boolean", "any"),
        ("how", "enum", "majority"),
        ("files", "list", "union"),
    ]
    prompt = rubric_prompt(rubric, "## Task\nx\n## Steps\n[S0] ...", 2, 3)
    user = prompt.messages[1]["content"]
    assert "part 2 of 3" in user and "Label match when the agent edits a test file." in user
    assert '- how: one of "edit_tool", "shell", "none".' in user
    assert prompt.schema["properties"]["files"] == {
        "type": "array", "items": {"type": "string"}, "maxItems": 3,
    }  # fmt: skip
    # The key changes with the text even without a version bump (the cache stays honest).
    path.write_text(TINY.replace("a test file.", "a test file or fixture."))
    assert load_rubric(path).key != rubric.key
    done = run_cli("judge", "rubrics", "--check", str(path))
    assert done.returncode == 0 and "ok: touched_tests v2" in done.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x\nprocedure: p\n", "missing 'fields'"),
        ("id: x\nprocedure: p\nfields: {m: {type: bool}}\n", "has type 'bool'"),
        ("id: x\nprocedure: p\nfields: {m: {type: enum}}\n", "needs values"),
        ("id: x\nprocedure: p\nfields: {m: {type: string, reduce: any}}\n", "needs a boolean"),
        ("id: x\nprocedure: p\nfields: {explanation: {type: string}}\n", "is reserved"),
        ("id: first_wrong_step\nprocedure: p\nfields: {m: {type: boolean}}\n", "reserved"),
        ("id: x\nprocedure: p\nfields: {m: {type: boolean}}\nexamples: [{situation: s, "
         "answer: {other: 1}}]\n", "lacks m"),
        ("id: x\nprocedure: [unclosed\n", "not valid YAML at line"),
    ],
)  # fmt: skip
def test_a_bad_rubric_is_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RubricError, match=message) as info:
        load_rubric(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    done = run_cli("judge", "rubrics", "--check", str(path))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_an_unknown_builtin_names_the_known_ones() -> None:
    with pytest.raises(RubricError, match="memory_drift, overconfidence"):
        resolve_rubrics(["memory_drfit"])


# ------------------------------------------------------------------------------- parsing

FIELDS = (
    OutputField(name="match", type="boolean"),
    OutputField(name="label", type="enum", values=("match", "no match")),
    OutputField(name="count", type="integer", minimum=0, maximum=10),
)


@pytest.mark.parametrize(
    "reply",
    [
        '{"explanation": "at [S3]", "match": true, "label": "match", "count": 2}',
        'Sure! ```json\n{"explanation": "at [S3]", "match": true, "label": "match", "count": 2}'
        "\n```",
        'My answer is {"explanation": "at [S3]", "match": true, "label": "match", "count": 2} ok',
        "{'explanation': 'at [S3]', 'match': True, 'label': 'match', 'count': 2}",
        '{"explanation": "at [S3]", "match": "yes", "label": "Match", "count": "2",}',
        '{"explanation": "at [S3]", "Match": true, "label": "MATCH", "count": 2.0',
    ],
)
def test_the_parser_reads_what_small_models_write(reply: str) -> None:
    assert parse_answer(reply, FIELDS) == {
        "match": True, "label": "match", "count": 2, "explanation": "at [S3]",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("", "empty"),
        ("I think the agent drifted.", "no JSON object"),
        ('{"explanation": "x", "label": "match", "count": 1}', "lacks the key 'match'"),
        ('{"explanation": "x", "match": "maybe", "label": "match", "count": 1}', "true or false"),
        ('{"explanation": "x", "match": true, "label": "perhaps", "count": 1}', "one of match"),
        ('{"explanation": "x", "match": true, "label": "match", "count": 11}', "<= 10"),
    ],
)
def test_what_cannot_be_read_is_an_error_never_a_guess(reply: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        parse_answer(reply, FIELDS)


def test_braces_inside_strings_do_not_confuse_the_extractor() -> None:
    assert extract_json('x {"a": "}{", "b": {"c": 1}} y') == {"a": "}{", "b": {"c": 1}}


# -------------------------------------------------------------------------- votes, reduce

CHUNKS = [Chunk(i, 3, i, i, "") for i in range(3)]


def _answer(match: bool, label: str = "match") -> Answer:
    return Answer({"match": match, "label": label, "count": 1}, explanation=f"{match}")


def test_samples_are_combined_by_majority_with_the_agreement_kept() -> None:
    verdict = vote(FIELDS, [_answer(True), _answer(False), _answer(True)], [], CHUNKS[0])
    assert verdict.values == {"match": True, "label": "match", "count": 1}
    assert verdict.agreement["match"] == pytest.approx(2 / 3)
    assert verdict.samples == 3
    failed = vote(FIELDS, [], ["model error: x", "model error: x"], CHUNKS[0])
    assert failed.values is None and failed.error == "model error: x"


def test_reducers_report_a_value_only_when_the_missing_parts_could_not_change_it() -> None:
    match, label = FIELDS[0], FIELDS[1]
    yes = vote(FIELDS, [_answer(True)], [], CHUNKS[0])
    no = vote(FIELDS, [_answer(False, "no match")], [], CHUNKS[1])
    lost = vote(FIELDS, [], ["unparseable answer after one re-ask: x"], CHUNKS[2])
    # any: one part that saw it is enough, whatever the others said.
    assert reduce_field(match, [no, yes, lost])[0] is True
    # any: all parts said no, but one part was not judged: the answer is unknown.
    value, _, reason = reduce_field(match, [no, no, lost])
    assert value is None and reason is not None and "1 of 3 parts could not be judged" in reason
    assert reduce_field(match, [no, no])[0] is False
    # majority: 2 to 1 stands only if no part is missing.
    assert reduce_field(label, [no, no, yes])[0] == "no match"
    assert reduce_field(label, [no, yes, lost])[2] is not None
    all_field = OutputField(name="match", type="boolean", reduce="all")
    assert reduce_field(all_field, [yes, no, lost])[0] is False
    assert reduce_field(all_field, [yes, yes, lost])[0] is None
    assert reduce_field(match, [lost])[2] == (
        "no part could be judged (unparseable answer after one re-ask: x)"
    )
    union = OutputField(name="files", type="list", reduce="union")
    a = vote((union,), [Answer({"files": ["a", "b"]})], [], CHUNKS[0])
    b = vote((union,), [Answer({"files": ["b", "c"]})], [], CHUNKS[1])
    assert reduce_field(union, [a, b])[0] == ["a", "b", "c"]
    json.dumps(reduce_field(union, [a, b])[0])
