"""The judge end to end on real trajectories imported with `agentsignals import --content`,
against the real small model (SmolLM2-135M in llama.cpp's server on a free loopback port):
rendering of several formats, a long SWE-agent run from the corpus (read as stored, gzip) split
into chunks, constrained output, a cached re-run with zero model calls, a killed run resumed,
answers that are garbage, 429 and 500 from the server. A 135M model's verdicts are nonsense:
these tests check the mechanics and the honesty of the output. Few, short model calls."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsignals._judge.cache import JudgeCache
from agentsignals._judge.client import ClientConfig, ModelClient
from agentsignals._judge.engine import Judge, JudgeSettings
from agentsignals._judge.rubrics import load_rubric, rubric_prompt
from agentsignals._judge.run import read_spans
from agentsignals._judge.transcript import (
    Transcript,
    chunk_transcript,
    from_spans,
    group_by_attempt,
)
from judge_support import (
    CHAT_MODEL,
    FAST,
    TINY_RUBRIC,
    LoopbackServer,
    Reply,
    chat_reply,
    free_port,
    llama_server,
    missing_models,
    read_jsonl,
    run_cli,
    schema_answer,
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


# Short real files of five formats (each a few hundred to a thousand characters rendered).
SMALL = [
    "claude-code/short.jsonl",
    "openhands/basic_interactions.json",
    "inspect-ai/log_read_sample.json",
    "codex/redacted-session-01.jsonl",
    "pi/redacted-session-01.jsonl",
]
CORPUS_SWE = "corpus/lgetter__swe-agent-trajectory-analysis/20250511_sweagent_lm_32b/trajs"
LONG_RUN = f"{CORPUS_SWE}/matplotlib__matplotlib-25479/matplotlib__matplotlib-25479.traj.gz"
SHORT_RUN = f"{CORPUS_SWE}/sympy__sympy-23950/sympy__sympy-23950.traj.gz"


def _import(out: Path, *sources: Path) -> Path:
    """`agentsignals import --content`, as a user runs it."""
    done = run_cli("import", *map(str, sources), "--content", "-o", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def small(shared_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported") / "small.jsonl"
    return _import(out, *(shared_data_dir / name for name in SMALL))


@pytest.fixture(scope="module")
def shared_data_dir() -> Path:
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real agent data not found at {SHARED_DATA} (../shared/data is absent)")
    return SHARED_DATA


def _transcripts(path: Path) -> list[Transcript]:
    spans, problems = read_spans(path)
    assert not problems
    return [from_spans(g) for g in group_by_attempt(spans).values()]


def _judge_cli(*args: str, base_url: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "judge", "run", *args, "--model", CHAT_MODEL, "--base-url", base_url,
        "--cache", str(cache), *FAST,
    )  # fmt: skip


def _judge(base_url: str, cache: Path | None = None, **settings: Any) -> Judge:
    config = ClientConfig(base_url=base_url, backoff_s=0.05)
    return Judge(
        JudgeSettings(model=CHAT_MODEL, client=config, max_tokens=60, explanation_chars=40,
                      **settings),
        cache=JudgeCache(cache) if cache is not None else None,
    )  # fmt: skip


# ------------------------------------------------------------------ records, spans, cache


def test_imported_runs_of_five_formats_are_judged_then_cached(
    llm: str, small: Path, rubric_file: Path, tmp_path: Path
) -> None:
    transcripts = _transcripts(small)
    assert len(transcripts) == len(SMALL)
    assert all(t.has_content and t.task for t in transcripts)
    out, spans_out, summary = tmp_path / "judged.jsonl", tmp_path / "jspans", tmp_path / "s.json"
    cache = tmp_path / "cache.sqlite"
    done = _judge_cli(
        str(small), "--rubric", str(rubric_file), "--first-wrong-step", "all_at_once",
        "--all-attempts", "-o", str(out), "--spans-out", str(spans_out),
        "--summary", str(summary), "--concurrency", "1", base_url=llm, cache=cache,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = read_jsonl(out)
    assert len(records) == len(SMALL)
    spans, _ = read_spans(small)
    span_ids = {s.span_id for s in spans}
    for record in records:
        ran = record["judge"]["ran_tests"]["match"]
        # A grammar-constrained answer is a valid value (or says why there is none).
        if ran["status"] == "ok":
            assert isinstance(ran["value"], bool)
        else:
            assert ran["value"] is None and ran["reason"]
        assert ran["model"] == CHAT_MODEL and ran["chunks"] == 1
        assert set(ran["citations"]) <= span_ids
        fws = record["judge"]["first_wrong_step"]
        if fws["index"]["status"] == "ok":
            assert fws["span_id"]["value"] in span_ids
    with sqlite3.connect(cache) as db:
        assert {m for (m,) in db.execute("SELECT DISTINCT mode FROM calls")} == {"json_schema"}
    judge_spans, _ = read_spans(spans_out)
    traces = {s.trace_id for s in spans}
    assert judge_spans and {s.trace_id for s in judge_spans} <= traces
    events = [e for s in judge_spans for e in s.events]
    assert {e.name for e in events} == {"gen_ai.evaluation.result"}
    usage = json.loads(summary.read_text())["usage"]
    assert usage["model_calls"] >= 2 * len(SMALL) and usage["cache_hits"] == 0

    # The same settings again: every answer from the cache, no model call (the server is gone).
    dead = f"http://127.0.0.1:{free_port()}/v1"
    again, summary2 = tmp_path / "again.jsonl", tmp_path / "s2.json"
    done = _judge_cli(
        str(small), "--rubric", str(rubric_file), "--first-wrong-step", "all_at_once",
        "--all-attempts", "-o", str(again), "--summary", str(summary2), "--concurrency", "1",
        base_url=dead, cache=cache,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_jsonl(again) == records
    usage2 = json.loads(summary2.read_text())["usage"]
    assert usage2["model_calls"] == 0 and usage2["cache_hits"] == usage["model_calls"]


def test_a_killed_run_on_imported_traces_resumes(
    llm: str, small: Path, rubric_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache.sqlite"
    out = tmp_path / "judged.jsonl"
    # The first run's server answers (through the real model) one call, then hangs: the run is
    # killed while it waits, whatever the machine's load.
    answered = threading.Event()
    release = threading.Event()

    def one_then_hang(request: dict[str, Any]) -> Reply:
        if not answered.is_set():
            answered.set()
            return hanging._forward(
                "POST", request["path"], json.dumps(request["body"]).encode(), {}
            )
        release.wait(120)
        return Reply(503, {"error": {"message": "gone"}})

    with LoopbackServer(upstream=llm, default=one_then_hang) as hanging:
        args = [
            str(Path(sys.executable).parent / "agentsignals"), "judge", "run", str(small),
            "--rubric", str(rubric_file), "--model", CHAT_MODEL,
            "--base-url", f"{hanging.url}/v1", "--concurrency", "1", "--cache", str(cache),
            "-o", str(out), *FAST,
        ]  # fmt: skip
        first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        cached = 0
        while time.monotonic() < deadline and first.poll() is None:
            if cache.exists():
                try:
                    with sqlite3.connect(cache) as db:
                        cached = db.execute("SELECT count(*) FROM calls").fetchone()[0]
                except sqlite3.OperationalError:  # being created right now
                    cached = 0
                if cached >= 1:
                    break
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        release.set()
    assert cached == 1
    assert not out.exists() or out.read_text() == ""  # nothing half-written
    with sqlite3.connect(cache) as db:
        before = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    assert before == 1
    with LoopbackServer(upstream=llm) as counter:
        summary = tmp_path / "s.json"
        done = _judge_cli(
            str(small), "--rubric", str(rubric_file), "-o", str(out), "--summary", str(summary),
            "--concurrency", "1", base_url=f"{counter.url}/v1", cache=cache,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = [r for r in counter.requests if r["path"] == "/v1/chat/completions"]
    usage = json.loads(summary.read_text())["usage"]
    assert len(calls) == usage["model_calls"] == len(SMALL) - before
    assert usage["cache_hits"] == before
    assert len(read_jsonl(out)) == len(SMALL)


# ------------------------------------------------------------------------- long runs


def test_a_long_swe_agent_run_from_the_corpus_is_judged_in_parts(
    shared_data_dir: Path, rubric_file: Path, tmp_path: Path
) -> None:
    # matplotlib-25479 (SWE-agent-LM-32B, exit_cost after 76 calls): 151 steps, about 140k
    # characters rendered. The server is a real HTTP server answering schema-valid JSON (the
    # real model would take minutes over all the parts): every request is seen.
    traces = _import(tmp_path / "long.jsonl", shared_data_dir / LONG_RUN)
    (transcript,) = _transcripts(traces)
    assert len(transcript.steps) > 100 and len(transcript.render()) > 100_000
    assert transcript.task and "matplotlib" in transcript.task.lower()
    rubric = load_rubric(rubric_file)
    with LoopbackServer(default=schema_answer) as server:
        judge = _judge(f"{server.url}/v1", context_tokens=8192)
        budget = judge.transcript_budget(rubric_prompt(_short(rubric), ""))
        expected = chunk_transcript(transcript, budget)
        result = judge.judge_rubric(transcript, rubric)
    field = result.fields["match"]
    asked = [r["body"]["messages"][-1]["content"] for r in server.requests]
    assert len(expected) >= 8 and len(asked) == len(expected) == field.chunks
    assert field.chunks_judged == field.chunks and field.status == "ok"
    assert field.value is True  # "any" over parts that each said true
    task_head = transcript.task[:200]
    seen: list[str] = []
    for i, (chunk, prompt) in enumerate(zip(expected, asked, strict=True)):
        assert chunk.text in prompt  # the part as chunk_transcript renders it
        assert "## Task" in prompt and task_head in prompt  # the issue in every part
        assert ("## Earlier steps" in prompt) == (i > 0)  # and a summary of what came before
        assert f"(part {i + 1} of {len(expected)})" in prompt
        seen.extend(chunk.step_labels)
    assert seen == [s.label for s in transcript.steps]  # every step in exactly one part
    # "See [S1]." in every answer: the citation is the span id of step S1.
    assert field.citations == [transcript.steps[1].span_id]


def _short(rubric: Any) -> Any:
    import dataclasses

    return dataclasses.replace(rubric, explanation_chars=40)


def test_a_corpus_run_split_for_the_real_model(
    llm: str, shared_data_dir: Path, rubric_file: Path, tmp_path: Path
) -> None:
    # sympy-23950 (resolved, 14 steps, about 8k characters): a small context makes parts the
    # real model answers one by one.
    traces = _import(tmp_path / "short.jsonl", shared_data_dir / SHORT_RUN)
    (transcript,) = _transcripts(traces)
    rubric = load_rubric(rubric_file)
    judge = _judge(llm, tmp_path / "c.sqlite", context_tokens=1800)
    expected = chunk_transcript(
        transcript, judge.transcript_budget(rubric_prompt(_short(rubric), ""))
    )
    assert 2 <= len(expected) <= 5
    result = judge.judge_rubric(transcript, rubric)
    field = result.fields["match"]
    assert result.usage.rechunked == 0
    assert field.chunks == len(expected)
    assert result.usage.model_calls >= len(expected)
    if field.status == "ok":
        assert isinstance(field.value, bool)
        assert field.value is True or field.chunks_judged == field.chunks
        step_ids = {s.span_id for s in transcript.steps}
        assert set(field.citations) <= step_ids
    else:
        assert field.value is None and field.reason


# ------------------------------------------------------------ garbage, 429 and 500


def test_garbage_answers_are_reasked_once_then_reported(
    llm: str, small: Path, rubric_file: Path
) -> None:
    (transcript,) = [t for t in _transcripts(small) if "phx.server" in (t.task or "")]
    rubric = load_rubric(rubric_file)
    garbage = chat_reply("Honestly the agent did a great job, 10/10 would hire!!")
    # Always garbage: one re-ask, then the field says it could not be judged, and why.
    with LoopbackServer(default=lambda _request: garbage) as server:
        result = _judge(f"{server.url}/v1").judge_rubric(transcript, rubric)
    field = result.fields["match"]
    assert field.status == "could_not_judge" and field.value is None
    assert field.reason is not None and "unparseable answer after one re-ask" in field.reason
    assert len(server.requests) == 2 and result.usage.reasks == 1
    reask = server.requests[1]["body"]["messages"]
    assert reask[-2] == {
        "role": "assistant",
        "content": garbage.body["choices"][0]["message"]["content"],
    }
    assert reask[-1]["content"].startswith("That answer could not be used:")
    # Garbage once, then the real model answers the re-ask (under its grammar).
    with LoopbackServer([garbage], upstream=llm) as server:
        result = _judge(f"{server.url}/v1").judge_rubric(transcript, rubric)
    field = result.fields["match"]
    assert len(server.requests) == 2 and result.usage.reasks == 1
    assert field.status == "ok" and isinstance(field.value, bool)


def test_429_and_500_on_imported_traces_are_retried(
    llm: str, small: Path, rubric_file: Path
) -> None:
    (transcript,) = [t for t in _transcripts(small) if t.task == "what's 1+1?"]
    script = [
        Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"}),
        Reply(500, {"error": {"message": "internal error"}}),
    ]
    sleeps: list[float] = []
    with LoopbackServer(script, upstream=llm) as proxy:
        config = ClientConfig(base_url=f"{proxy.url}/v1", backoff_s=0.05)
        judge = Judge(
            JudgeSettings(
                model=CHAT_MODEL,
                client=config,
                max_tokens=60,
                explanation_chars=40,
                context_tokens=4096,
            ),
            client=ModelClient(config, sleep=lambda s: (sleeps.append(s), time.sleep(s))[0]),
        )
        result = judge.judge_rubric(transcript, load_rubric(rubric_file))
    assert proxy.statuses[:3] == [429, 500, 200]
    assert sleeps[0] >= 1.0  # Retry-After honoured
    assert result.fields["match"].status == "ok"


def test_the_import_without_content_is_not_judged_silently(
    shared_data_dir: Path, rubric_file: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.jsonl"
    done = run_cli("import", str(shared_data_dir / SMALL[0]), "-o", str(plain), "--no-progress")
    assert done.returncode == 0, done.stderr
    (transcript,) = _transcripts(plain)
    with LoopbackServer(default=schema_answer) as server:
        result = _judge(f"{server.url}/v1").judge_rubric(transcript, load_rubric(rubric_file))
    field = result.fields["match"]
    assert field.status == "could_not_judge" and field.value is None
    assert field.reason is not None and "import --content" in field.reason
    assert server.requests == []  # no model call for a transcript with nothing in it
