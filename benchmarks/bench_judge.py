"""The judge's own cost: its overhead next to the model's time, and a fully cached re-run.

Trajectories are made in process with content capture on (agentsignals.testing.capture_spans,
a scripted loop whose tools return file-sized text), so they carry what a live capture writes.

1. Overhead with a real local model (SmolLM2-135M in llama.cpp's server from MODELS_VENV, one
   thread; see ../shared/models.md): the judge runs one small rubric on short and on long
   trajectories (long ones are chunked); the time inside the HTTP call to the model is split
   from everything else (rendering, chunking, the cache, parsing, votes). Goal: overhead under
   1% of model time.
2. A fully cached re-run over 1,000 trajectories: the cache is filled through an instant local
   fake server (the answers do not matter), then the same run is timed again from the cache
   alone (the fake server is shut down first). Goal: seconds.
3. The pieces alone: spans -> transcript, chunking, answer parsing, a cache hit.

    .venv/bin/python benchmarks/bench_judge.py                 # all, ~3-6 min with the model
    .venv/bin/python benchmarks/bench_judge.py --no-model      # parts 2 and 3 only
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import agentsignals
from agentsignals._judge.cache import JudgeCache
from agentsignals._judge.client import ClientConfig
from agentsignals._judge.engine import Judge, JudgeSettings
from agentsignals._judge.parse import parse_answer
from agentsignals._judge.rubrics import parse_rubric
from agentsignals._judge.run import judge_spans_in_memory
from agentsignals._judge.transcript import (
    chunk_transcript,
    from_spans,
    group_by_attempt,
)
from agentsignals._spans.decode import from_readable_spans
from agentsignals._spans.model import Span
from agentsignals.testing import capture_spans

RUBRIC = parse_rubric(
    {
        "id": "ran_tests",
        "procedure": "Label match when the agent runs the tests at least once.",
        "explanation_chars": 60,
        "fields": {"match": {"type": "boolean"}},
    },
    "bench",
)
FILE = "".join(f"def function_{i}(x):\n    return x + {i}\n\n" for i in range(40))


def make_spans(trajectories: int, turns: int, *, start: int = 0) -> list[Span]:
    """Content-captured spans of `trajectories` scripted attempts of `turns` turns each."""
    with capture_spans(capture_content=True, deterministic=False) as captured:
        for n in range(start, start + trajectories):
            with agentsignals.trial(f"task-{n}"), agentsignals.attempt(agent_name="bench"):
                history: list[dict[str, Any]] = [
                    {"role": "user", "parts": [{"type": "text", "content": f"Fix bug {n}."}]}
                ]
                for t in range(turns):
                    with agentsignals.turn() as turn:
                        out = [{"role": "assistant", "parts": [
                            {"type": "reasoning", "content": f"Step {t}: look at module_{t}.py."},
                            {"type": "text", "content": f"Reading module_{t}.py."}]}]  # fmt: skip
                        turn.record_messages(input=history[-3:], output=out)
                    with agentsignals.tool(
                        "read_file", arguments={"path": f"module_{t}.py"}
                    ) as tool:
                        tool.record_result(FILE[: 400 + 37 * (t % 40)])
        spans = from_readable_spans(captured.spans)
    return spans


def bench_pieces(spans: list[Span], long_spans: list[Span]) -> dict[str, Any]:
    groups = group_by_attempt(spans)
    start = time.perf_counter()
    ts = [from_spans(groups[a]) for a in sorted(groups)]
    render = (time.perf_counter() - start) / len(ts)
    (long_group,) = group_by_attempt(long_spans).values()
    start = time.perf_counter()
    long_t = from_spans(long_group)
    render_long = time.perf_counter() - start
    start = time.perf_counter()
    chunks = chunk_transcript(long_t, 1500)
    chunk_long = time.perf_counter() - start
    answer = '{"explanation": "The agent reads files [S3] and never runs tests.", "match": false}'
    start = time.perf_counter()
    for _ in range(2000):
        parse_answer(answer, RUBRIC.fields)
    parse = (time.perf_counter() - start) / 2000
    with tempfile.TemporaryDirectory() as tmp:
        cache = JudgeCache(Path(tmp) / "c.sqlite")
        cache.put("k", model="m", rubric="r", response=answer, input_tokens=1, output_tokens=1,
                  cost_usd=None, mode="json_schema")  # fmt: skip
        start = time.perf_counter()
        for _ in range(2000):
            cache.get("k")
        hit = (time.perf_counter() - start) / 2000
        cache.close()
    return {
        "render_short_ms": round(render * 1e3, 3),
        "short_steps": len(ts[0].steps),
        "render_long_ms": round(render_long * 1e3, 2),
        "long_steps": len(long_t.steps),
        "long_chars": len(long_t.render()),
        "chunk_long_ms": round(chunk_long * 1e3, 2),
        "long_chunks_at_1500_tokens": len(chunks),
        "parse_us": round(parse * 1e6, 1),
        "cache_hit_us": round(hit * 1e6, 1),
    }


def bench_cached_rerun(n: int, spans: list[Span]) -> dict[str, Any]:
    from judge_support import LoopbackServer, chat_reply

    answer = '{"explanation": "It reads files [S1].", "match": false}'
    with tempfile.TemporaryDirectory() as tmp:
        cache_path = Path(tmp) / "c.sqlite"
        with LoopbackServer(default=lambda request: chat_reply(answer)) as server:
            settings = JudgeSettings(
                model="bench", client=ClientConfig(base_url=f"{server.url}/v1"),
                context_tokens=8000, concurrency=4,
            )  # fmt: skip
            judge = Judge(settings, cache=JudgeCache(cache_path))
            start = time.perf_counter()
            first = judge_spans_in_memory(spans, rubrics=[RUBRIC], judge=judge)
            fill = time.perf_counter() - start
            calls = first.usage.model_calls
            judge.cache.close()  # type: ignore[union-attr]
        # The server is gone: every answer must come from the cache.
        judge = Judge(settings, cache=JudgeCache(cache_path))
        start = time.perf_counter()
        second = judge_spans_in_memory(spans, rubrics=[RUBRIC], judge=judge)
        cached = time.perf_counter() - start
        judge.cache.close()  # type: ignore[union-attr]
    assert second.usage.model_calls == 0 and second.usage.cache_hits == calls
    same = [r.judge for r in first.records] == [r.judge for r in second.records]
    return {
        "trajectories": n,
        "fill_s_instant_server": round(fill, 2),
        "calls": calls,
        "cached_rerun_s": round(cached, 2),
        "cached_ms_per_trajectory": round(cached / n * 1e3, 2),
        "identical_results": same,
    }


def bench_model(short: list[Span], long_spans: list[Span]) -> dict[str, Any] | str:
    from judge_support import llama_server, missing_models

    why = missing_models()
    if why is not None:
        return f"skipped: {why}"
    rows = []
    with llama_server(context=4096) as url, tempfile.TemporaryDirectory() as tmp:
        settings = JudgeSettings(
            model="smollm2", client=ClientConfig(base_url=url), max_tokens=60,
            explanation_chars=60, concurrency=1,
        )  # fmt: skip
        judge = Judge(settings, cache=JudgeCache(Path(tmp) / "c.sqlite"))
        model_time = 0.0
        chat = judge.client.chat

        def timed_chat(*args: Any, **kwargs: Any) -> Any:
            nonlocal model_time
            start = time.perf_counter()
            try:
                return chat(*args, **kwargs)
            finally:
                model_time += time.perf_counter() - start

        judge.client.chat = timed_chat  # type: ignore[method-assign]
        judge.context_tokens  # ask the server once, before timing  # noqa: B018
        for label, spans in (("short", short), ("long", long_spans)):
            groups = group_by_attempt(spans)
            for attempt_id in sorted(groups):
                model_time = 0.0
                # Render from spans and judge: everything the judge does per trajectory.
                start = time.perf_counter()
                t = from_spans(groups[attempt_id])
                result = judge.judge_rubric(t, RUBRIC)
                total = time.perf_counter() - start
                rows.append({
                    "trajectory": label,
                    "steps": len(t.steps),
                    "chunks": result.fields["match"].chunks,
                    "calls": result.usage.model_calls,
                    "total_s": round(total, 3),
                    "model_s": round(model_time, 3),
                    "overhead_ms": round((total - model_time) * 1e3, 2),
                    "overhead_pct": round(100 * (total - model_time) / model_time, 3),
                })  # fmt: skip
    return {"rows": rows, "median_overhead_pct": statistics.median(r["overhead_pct"] for r in rows)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trajectories", type=int, default=1000)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--model-only", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    if not args.model_only:
        print(f"making {args.trajectories} trajectories of 10 turns, one of 200...", flush=True)
        spans = make_spans(args.trajectories, 10)
        long_spans = make_spans(1, 200, start=10**6)
        out["pieces"] = bench_pieces(spans, long_spans)
        print(json.dumps(out["pieces"], indent=1), flush=True)
        out["cached_rerun"] = bench_cached_rerun(args.trajectories, spans)
        print(json.dumps(out["cached_rerun"], indent=1), flush=True)
    if not args.no_model:
        short = make_spans(3, 10, start=10**7)
        # A long run that needs several chunks at the server's 4096 tokens (the 200-turn one
        # would take ~60 calls of a 135M model on a shared core).
        out["model"] = bench_model(short, make_spans(1, 40, start=10**8))
        print(json.dumps(out["model"], indent=1), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
