"""The judge end to end against a real small model (SmolLM2-135M in llama.cpp's server, started
on a free loopback port) on trajectories produced live by a scripted agent on real git
repositories. A 135M model's verdicts are nonsense: these tests check the mechanics and the
honesty of the output (valid values or an explicit could_not_judge, citations that are span ids
of the trace, results on records and spans, the cache, resume, retries), never the wisdom."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentsignals import semconv as sc
from agentsignals._features.record import AttemptRecord, JudgeField, Verification
from agentsignals._judge.attribution import CATEGORIES
from agentsignals._judge.cache import JudgeCache
from agentsignals._judge.client import ClientConfig
from agentsignals._judge.engine import Judge, JudgeSettings
from agentsignals._judge.rubrics import load_rubric
from agentsignals._judge.run import read_spans
from agentsignals._judge.transcript import chunk_transcript, from_spans, group_by_attempt
from judge_support import (
    CHAT_MODEL,
    EMBED_MODEL,
    FAST,
    TINY_RUBRIC,
    LoopbackServer,
    Reply,
    agent_in_subprocess,
    embeddings_server,
    free_port,
    llama_server,
    missing_models,
    read_jsonl,
    run_cli,
)

pytestmark = pytest.mark.skipif(missing_models() is not None, reason=str(missing_models()))


@pytest.fixture(scope="module")
def llm() -> Iterator[str]:
    with llama_server(context=4096) as url:
        yield url


@pytest.fixture(scope="module")
def rubric_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rubric") / "ran_tests.yaml"
    path.write_text(TINY_RUBRIC)
    return path


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agent")
    return agent_in_subprocess(root / "out", root / "work")


def _judge_cli(*args: str, base_url: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "judge", "run", *args, "--model", CHAT_MODEL, "--base-url", base_url,
        "--cache", str(cache), *FAST,
    )  # fmt: skip


def _spans_by_id(folder: Path) -> dict[str, Any]:
    spans, _ = read_spans(folder)
    return {s.span_id: s for s in spans}


def test_judge_run_writes_records_and_spans(
    llm: str, traces: Path, rubric_file: Path, tmp_path: Path
) -> None:
    out, spans_out, summary = tmp_path / "judged.jsonl", tmp_path / "jspans", tmp_path / "s.json"
    cache = tmp_path / "cache.sqlite"
    done = _judge_cli(
        str(traces), "--rubric", str(rubric_file), "--first-wrong-step", "all_at_once",
        "--all-attempts", "-o", str(out), "--spans-out", str(spans_out),
        "--summary", str(summary), base_url=llm, cache=cache,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (record,) = read_jsonl(out)
    trace = _spans_by_id(traces)
    attempt_span = next(
        s for s in trace.values() if s.attributes.get(sc.AGENT_SIGNALS_SPAN_TYPE) == "attempt"
    )
    assert record["span_id"] == attempt_span.span_id
    assert record["behavior"]["turn_count"] == 5  # the feature record, with judge fields added
    ran = record["judge"]["ran_tests"]["match"]
    # A grammar-constrained answer: always a valid value here; the metadata says who judged.
    assert ran["status"] == "ok" and isinstance(ran["value"], bool)
    assert ran["model"] == CHAT_MODEL and ran["rubric_version"] == "1"
    assert ran["samples"] == 1 and ran["chunks"] == ran["chunks_judged"] == 1
    assert ran["temperature"] == 0.0 and ran["seed"] == 0
    assert set(ran["citations"]) <= set(trace)  # citations are span ids of this trace
    fws = record["judge"]["first_wrong_step"]
    assert set(fws) == {
        "index", "span_id", "category", "reason", "relative_position", "phase", "step_phases",
    }  # fmt: skip
    assert fws["index"]["status"] == "ok" and fws["index"]["method"] == "all_at_once"
    index = fws["index"]["value"]
    assert 0 <= index < 10
    step_span = trace[fws["span_id"]["value"]]
    assert step_span.attributes[sc.AGENT_SIGNALS_SPAN_TYPE] in ("turn", "tool")
    assert fws["category"]["value"] in CATEGORIES
    assert fws["relative_position"]["value"] == pytest.approx(index / 9, abs=1e-4)
    # The phase of every step the index counts in (turns have no declared phase here).
    phases = fws["step_phases"]["value"]
    assert phases == ["", "explore", "", "localize", "", "implement", "", "verify", "", "verify"]
    assert fws["phase"]["value"] == (phases[index] or None)
    assert fws["span_id"]["value"] in fws["index"]["citations"]
    # The judge spans: one per result, in the attempt's trace, where they belong.
    judge_spans = _spans_by_id(spans_out)
    by_rubric = {s.attributes[sc.AGENT_SIGNALS_JUDGE_RUBRIC]: s for s in judge_spans.values()}
    assert set(by_rubric) == {"ran_tests", "first_wrong_step"}
    rubric_span, fws_span = by_rubric["ran_tests"], by_rubric["first_wrong_step"]
    assert rubric_span.trace_id == attempt_span.trace_id
    assert rubric_span.parent_span_id == attempt_span.span_id
    assert fws_span.parent_span_id == fws["span_id"]["value"]
    assert fws_span.attributes[sc.AGENT_SIGNALS_JUDGE_STEP] == index
    assert sc.AGENT_SIGNALS_ATTEMPT_ID not in rubric_span.attributes
    (event,) = rubric_span.events
    assert event.name == "gen_ai.evaluation.result"
    assert event.attributes[sc.GEN_AI_EVALUATION_NAME] == "judge.ran_tests.match"
    assert event.attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] == str(ran["value"]).lower()
    assert event.attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE] == float(ran["value"])
    assert {e.attributes[sc.GEN_AI_EVALUATION_NAME] for e in fws_span.events} == {
        f"judge.first_wrong_step.{n}" for n in fws
    }
    # Feature extraction over the traces with the judge spans beside them is unchanged.
    from agentsignals import features

    alone = features.extract(traces).attempts
    together = features.extract([traces, spans_out]).attempts
    assert [features.flatten(r) for r in together] == [features.flatten(r) for r in alone]
    # Constrained output was used, and the judge's own use is reported.
    with sqlite3.connect(cache) as db:
        assert {m for (m,) in db.execute("SELECT DISTINCT mode FROM calls")} == {"json_schema"}
    usage = json.loads(summary.read_text())["usage"]
    assert usage["model_calls"] >= 2 and usage["cache_hits"] == 0
    assert usage["input_tokens"] > 500 and usage["output_tokens"] > 0

    # A re-run costs no model call: the server is gone and the answers are identical.
    dead = f"http://127.0.0.1:{free_port()}/v1"
    again, summary2 = tmp_path / "again.jsonl", tmp_path / "s2.json"
    done = _judge_cli(
        str(traces), "--rubric", str(rubric_file), "--first-wrong-step", "all_at_once",
        "--all-attempts", "-o", str(again), "--summary", str(summary2),
        base_url=dead, cache=cache,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_jsonl(again) == read_jsonl(out)
    usage2 = json.loads(summary2.read_text())["usage"]
    assert usage2["model_calls"] == 0
    assert usage2["cache_hits"] == usage["model_calls"]
    assert usage2["cached_input_tokens"] == usage["input_tokens"]


def test_the_noticed_fault_rubric_on_a_real_model(llm: str, tmp_path: Path) -> None:
    # A live run broken mid-way (a failing test appears after the test run, then the agent
    # submits) and a clean one, judged with the built-in rubrics: the fault's rubric runs on
    # the faulted attempt only, its prompt names the fault, and its verdict (whatever a 135M
    # model says) lands in recovery.noticed_judge without touching the trace's evidence.
    plan = {"faults": [{"kind": "add_failing_test", "trigger": "after_step", "step": 4}]}
    faulted = agent_in_subprocess(
        tmp_path / "f", tmp_path / "fw", task_id="faulted-1",
        env={"AGENTSIGNALS_FAULTS": json.dumps(plan)},
    )  # fmt: skip
    clean = agent_in_subprocess(tmp_path / "c", tmp_path / "cw", task_id="clean-1")
    out, spans_out = tmp_path / "judged.jsonl", tmp_path / "jspans"
    with LoopbackServer(upstream=llm) as proxy:
        done = _judge_cli(
            str(faulted), str(clean), "--rubric", "noticed_fault", "-o", str(out),
            "--spans-out", str(spans_out), base_url=f"{proxy.url}/v1",
            cache=tmp_path / "cache.sqlite",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (request,) = [r for r in proxy.requests if r["path"] == "/v1/chat/completions"]
    prompt = "\n".join(m["content"] for m in request["body"]["messages"])
    assert "## Fault injected" in prompt and "tests/test_regression_guard.py" in prompt
    assert "## Outcome" not in prompt
    by_task = {r["task_id"]: r for r in read_jsonl(out)}
    assert "noticed_fault" not in (by_task["clean-1"].get("judge") or {})
    field = by_task["faulted-1"]["judge"]["noticed_fault"]["noticed"]
    rec = by_task["faulted-1"]["recovery"]
    assert rec["noticed_in_trace"] is False  # the agent submitted right after the fault
    if field["status"] == "ok":
        assert isinstance(field["value"], bool) and field["model"] == CHAT_MODEL
        assert set(field["citations"]) <= set(_spans_by_id(faulted))
        assert rec["noticed_judge"] is field["value"]
        assert rec["noticed"] is field["value"]
        assert rec["noticed_how"] == ("judge" if field["value"] else None)
    else:  # an honest could_not_judge: no verdict, the trace's value stands
        assert field["value"] is None and field["reason"]
        assert rec["noticed_judge"] is None and rec["noticed"] is False
    # The verdict is on the attempt's trace too, as an evaluation event.
    (judge_span,) = _spans_by_id(spans_out).values()
    (event,) = judge_span.events
    assert event.attributes[sc.GEN_AI_EVALUATION_NAME] == "judge.noticed_fault.noticed"


def test_a_long_run_is_split_when_the_server_says_it_does_not_fit(
    rubric_file: Path, tmp_path: Path
) -> None:
    # The judge is told the context is 4096 tokens; the server has 1024. The first request is
    # refused, the judge splits the transcript smaller until the parts fit, and says so.
    traces = agent_in_subprocess(tmp_path / "out", tmp_path / "work", long_rounds=8)
    (group,) = group_by_attempt(read_spans(traces)[0]).values()
    transcript = from_spans(group)
    assert len(transcript.render()) > 6000
    with llama_server(context=1024) as url:
        judge = Judge(
            JudgeSettings(model=CHAT_MODEL, client=ClientConfig(base_url=url),
                          context_tokens=4096, max_tokens=60, explanation_chars=40),
            cache=JudgeCache(tmp_path / "c.sqlite"),
        )  # fmt: skip
        result = judge.judge_rubric(transcript, load_rubric(rubric_file))
    field = result.fields["match"]
    assert result.usage.rechunked >= 1
    assert field.chunks > 1
    if field.status == "ok":
        assert isinstance(field.value, bool)
        # A part that saw tests run is enough for "any"; otherwise every part was judged.
        assert field.value is True or field.chunks_judged == field.chunks
    else:
        assert field.value is None and field.reason


def test_429_and_500_from_the_server_are_retried(
    llm: str, traces: Path, rubric_file: Path, tmp_path: Path
) -> None:
    script = [
        Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"}),
        Reply(500, {"error": {"message": "internal error"}}),
    ]
    sleeps: list[float] = []
    with LoopbackServer(script, upstream=llm) as proxy:
        from agentsignals._judge.client import ModelClient

        config = ClientConfig(base_url=f"{proxy.url}/v1", backoff_s=0.05)
        judge = Judge(
            JudgeSettings(model=CHAT_MODEL, client=config, context_tokens=4096,
                          max_tokens=60, explanation_chars=40),
            client=ModelClient(config, sleep=lambda s: (sleeps.append(s), time.sleep(s))[0]),
        )  # fmt: skip
        (group,) = group_by_attempt(read_spans(traces)[0]).values()
        result = judge.judge_rubric(from_spans(group), load_rubric(rubric_file))
    assert proxy.statuses[:3] == [429, 500, 200]
    assert sleeps[0] >= 1.0
    assert result.fields["match"].status == "ok"


def test_a_killed_run_resumes_where_it_stopped(llm: str, rubric_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    for task in ("t-1", "t-2", "t-3"):
        agent_in_subprocess(folder / task, tmp_path / "work", task_id=task)
    cache = tmp_path / "cache.sqlite"
    out = tmp_path / "judged.jsonl"
    args = [
        str(Path(sys.executable).parent / "agentsignals"), "judge", "run", str(folder),
        "--rubric", str(rubric_file), "--model", CHAT_MODEL, "--base-url", llm,
        "--concurrency", "1", "--cache", str(cache), "-o", str(out), *FAST,
    ]  # fmt: skip
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    cached = 0
    while time.monotonic() < deadline and first.poll() is None:
        if cache.exists():
            try:
                with sqlite3.connect(cache) as db:
                    cached = db.execute("SELECT count(*) FROM calls").fetchone()[0]
            except sqlite3.OperationalError:  # the run is creating the file right now
                cached = 0
            if cached >= 1:
                break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert cached >= 1
    assert not out.exists() or out.read_text() == ""  # nothing half-written
    with sqlite3.connect(cache) as db:
        before = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    with LoopbackServer(upstream=llm) as counter:
        summary = tmp_path / "s.json"
        done = _judge_cli(
            str(folder), "--rubric", str(rubric_file), "-o", str(out), "--summary", str(summary),
            "--concurrency", "1", base_url=f"{counter.url}/v1", cache=cache,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(cache) as db:
        after = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    calls = [r for r in counter.requests if r["path"] == "/v1/chat/completions"]
    usage = json.loads(summary.read_text())["usage"]
    # Only what the killed run had not received was asked again.
    assert len(calls) == usage["model_calls"] == after - before
    assert usage["cache_hits"] == before
    records = read_jsonl(out)
    assert len(records) == 3
    assert all(r["judge"]["ran_tests"]["match"]["status"] == "ok" for r in records)


def test_the_who_and_when_harness_runs_a_real_model(
    llm: str, shared_data: Path, tmp_path: Path
) -> None:
    folder = shared_data / "judge" / "who-and-when" / "Algorithm-Generated"
    shortest = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_size)[:2]
    out, table = tmp_path / "eval.json", tmp_path / "table.md"
    done = run_cli(
        "judge", "eval", "--who-and-when", *map(str, shortest), "--mode", "all_at_once",
        "--model", CHAT_MODEL, "--base-url", llm, "--cache", str(tmp_path / "c.sqlite"),
        "-o", str(out), "--table", str(table), *FAST,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    (method,) = document["methods"]
    assert method["logs"] == 2 and method["method"] == f"all_at_once ({CHAT_MODEL})"
    assert [b["method"] for b in document["baselines"]] == [
        "random (expected)", "position only (leave-one-out median)",
    ]  # fmt: skip
    labels = {p.name: json.loads(p.read_text()) for p in shortest}
    for prediction in document["predictions"][method["method"]]:
        log = labels[prediction["log"]]
        assert prediction["gold_step"] == int(log["mistake_step"])
        assert prediction["steps"] == len(log["history"])
        if prediction["step"] is not None:
            assert 0 <= prediction["step"] < prediction["steps"]
            assert prediction["agent"] in {m["name"] for m in log["history"]}
    exact = sum(p["step"] == p["gold_step"] for p in document["predictions"][method["method"]])
    assert method["step_accuracy"]["successes"] == exact
    rows = table.read_text().splitlines()
    assert rows[0].startswith("| method |") and len(rows) == 5


def test_chunk_count_matches_the_budget_the_judge_computes(
    llm: str, rubric_file: Path, tmp_path: Path
) -> None:
    # The judge's chunking, seen from outside: with the server's real context the number of
    # parts is what chunk_transcript gives for the judge's budget.
    traces = agent_in_subprocess(tmp_path / "out", tmp_path / "work", long_rounds=4)
    (group,) = group_by_attempt(read_spans(traces)[0]).values()
    transcript = from_spans(group)
    rubric = load_rubric(rubric_file)
    judge = Judge(
        JudgeSettings(model=CHAT_MODEL, client=ClientConfig(base_url=llm), max_tokens=60,
                      explanation_chars=40, context_tokens=1800),
        cache=JudgeCache(tmp_path / "c.sqlite"),
    )  # fmt: skip
    import dataclasses

    from agentsignals._judge.rubrics import rubric_prompt

    short = dataclasses.replace(rubric, explanation_chars=40)
    budget = judge.transcript_budget(rubric_prompt(short, ""))
    expected = chunk_transcript(transcript, budget)
    assert len(expected) >= 2
    result = judge.judge_rubric(transcript, rubric)
    field = result.fields["match"]
    assert result.usage.rechunked == 0
    assert field.chunks == len(expected)
    assert result.usage.model_calls >= len(expected)


# ------------------------------------------------------------------------ failure clusters

LOOPS = [
    "Loops between editing the same function and failing the same test.",
    "Keeps editing one function and rerunning the same failing test without changing approach.",
    "Repeats the same edit and the same failing test run again and again.",
]
UNTESTED = [
    "Never runs the tests and submits an untested patch.",
    "Submits the patch without running any test to check it.",
    "Declares success and submits without validating the change with tests.",
]


@pytest.fixture(scope="module")
def embedder() -> Iterator[str]:
    with embeddings_server() as url:
        yield url


def _record(attempt_id: str, reward: float, summary: str | None) -> AttemptRecord:
    judge = None
    if summary is not None:
        judge = {"failure_summary": {"summary": JudgeField(value=summary, model="m")}}
    return AttemptRecord(
        attempt_id=attempt_id, verification=Verification(reward=reward), judge=judge
    )


def _write(path: Path, records: list[AttemptRecord]) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    return path


def test_failed_attempts_are_clustered_with_stable_ids(
    llm: str, embedder: str, tmp_path: Path
) -> None:
    records = [_record(f"a{i}", 0.0, t) for i, t in enumerate(LOOPS + UNTESTED)]
    records.append(_record("resolved", 1.0, "Fixes the bug and runs the tests."))
    records.append(_record("unjudged", 0.0, None))
    taxonomy, cache = tmp_path / "taxonomy.json", tmp_path / "c.sqlite"
    common = [
        "--taxonomy", str(taxonomy), "--embed-model", EMBED_MODEL, "--embed-base-url", embedder,
        "--model", CHAT_MODEL, "--base-url", llm, "--cache", str(cache), *FAST,
    ]  # fmt: skip
    out = tmp_path / "clustered.jsonl"
    done = run_cli("judge", "cluster", str(_write(tmp_path / "r.jsonl", records)), "--k", "2",
                   "-o", str(out), *common)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 failed attempts have no failure summary" in done.stderr
    document = json.loads(taxonomy.read_text())
    assert document["format"] == "agentsignals.judge.taxonomy/1"
    assert document["embed_model"] == EMBED_MODEL and document["namer_model"] == CHAT_MODEL
    groups = {c["id"]: set(c["members"]) for c in document["clusters"]}
    assert sorted(groups.values(), key=sorted) == [{"a0", "a1", "a2"}, {"a3", "a4", "a5"}]
    assert set(groups) == {"F01", "F02"}
    names = {c["id"]: c["name"] for c in document["clusters"]}
    assert all(names.values())  # named by the model (or marked unnamed with the reason)
    clustered = {r["attempt_id"]: r for r in read_jsonl(out)}
    for cluster_id, members in groups.items():
        for member in members:
            assert clustered[member]["cluster_id"] == cluster_id
            assert clustered[member]["cluster_name"] == names[cluster_id]
    assert clustered["resolved"]["cluster_id"] is None  # only failed attempts
    assert clustered["unjudged"]["cluster_id"] is None  # no text: not guessed

    # New failed attempts join the existing clusters: the ids do not move.
    new = [_record("b0", 0.0, "Edits the same line again and again while the same test fails."),
           _record("b1", 0.0, "Submits straight away, the tests were never run.")]  # fmt: skip
    out2 = tmp_path / "new.jsonl"
    done = run_cli("judge", "cluster", str(_write(tmp_path / "new_in.jsonl", new)),
                   "-o", str(out2), *common)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assigned = {r["attempt_id"]: r["cluster_id"] for r in read_jsonl(out2)}
    loops_id = next(i for i, m in groups.items() if "a0" in m)
    untested_id = next(i for i, m in groups.items() if "a3" in m)
    assert assigned == {"b0": loops_id, "b1": untested_id}
    after = {c["id"]: set(c["members"]) for c in json.loads(taxonomy.read_text())["clusters"]}
    assert after == {loops_id: groups[loops_id] | {"b0"}, untested_id: groups[untested_id] | {"b1"}}

    # Clustering again keeps the ids (and names) of clusters that did not change.
    everything = _write(tmp_path / "all.jsonl", records + new)
    done = run_cli("judge", "cluster", str(everything), "--k", "2", "--recluster",
                   "-o", str(tmp_path / "re.jsonl"), *common)  # fmt: skip
    assert done.returncode == 0, done.stderr
    again = json.loads(taxonomy.read_text())["clusters"]
    assert {c["id"]: set(c["members"]) for c in again} == after
    assert {c["id"]: c["name"] for c in again} == names
    assert "0 model calls" in done.stderr  # names kept, embeddings cached
