"""Overhead of the framework integrations per model call and per tool call, side by side with the
framework's own OpenInference instrumentor, measured in one process (issue #15).

Each framework's real call path runs against an in-process model, so no network time hides the
instrumentation cost:

- DSPy: `dspy.Predict` with `DummyLM` (a turn per predictor call), and `dspy.Tool` calls.
- LangChain/LangGraph: `GenericFakeChatModel.invoke` (a turn per call), and `BaseTool.invoke`.
- OpenAI SDK: `chat.completions.create` through an `httpx.MockTransport` (a turn per call).

Scenarios, interleaved round-robin: `bare` (no instrumentation), `agentsignals` (our
integration), `openinference` (the framework's OpenInference instrumentor), `both`. Every scenario
runs inside `agentsignals.trial()`/`attempt()` (our integrations record only inside an attempt)
on one TracerProvider whose pipeline ends in a counting null exporter behind a
BatchSpanProcessor. The report gives the median µs per call and the overhead over `bare`.

    .venv/bin/python benchmarks/bench_integrations.py            # ~1 min
    .venv/bin/python benchmarks/bench_integrations.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

os.environ.setdefault("OTEL_BSP_MAX_QUEUE_SIZE", "1000000")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import agentsignals
from agentsignals.integrations import instrument, uninstrument


class NullExporter(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


Case = tuple[str, str, Callable[[], None]]  # (framework, unit, one call)


# ------------------------------------------------------------------------------- workloads


def dspy_cases() -> tuple[list[Case], Any]:
    import dspy
    from dspy.utils import DummyLM
    from openinference.instrumentation.dspy import DSPyInstrumentor

    lm = DummyLM([{"answer": "4"}] * 1_000_000)
    dspy.configure(lm=lm)
    predict = dspy.Predict("question -> answer")

    def bash(command: str) -> str:
        return "ok"

    tool = dspy.Tool(bash)
    cases: list[Case] = [
        ("dspy", "model call (Predict + DummyLM)", lambda: predict(question="2+2?")),
        ("dspy", "tool call (dspy.Tool)", lambda: tool(command="cat x.py")),
    ]
    return cases, DSPyInstrumentor()


def langchain_cases() -> tuple[list[Case], Any]:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from openinference.instrumentation.langchain import LangChainInstrumentor

    def messages() -> Iterator[AIMessage]:
        while True:
            yield AIMessage(
                content="ok",
                usage_metadata={"input_tokens": 100, "output_tokens": 5, "total_tokens": 105},
            )

    model = GenericFakeChatModel(messages=messages())

    @tool
    def bash(command: str) -> str:
        """Run a shell command."""
        return "ok"

    cases: list[Case] = [
        ("langgraph", "model call (chat model invoke)", lambda: model.invoke("hi")),
        ("langgraph", "tool call (BaseTool.invoke)", lambda: bash.invoke({"command": "ls"})),
    ]
    return cases, LangChainInstrumentor()


def openai_cases() -> tuple[list[Case], Any]:
    import httpx
    import openai
    from openinference.instrumentation.openai import OpenAIInstrumentor

    body = json.dumps(
        {
            "id": "c", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105},
        }
    ).encode()  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    client = openai.OpenAI(
        api_key="x",
        base_url="http://127.0.0.1:9/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    messages = [{"role": "user", "content": "hi"}]
    cases: list[Case] = [
        (
            "openai",
            "model call (chat.completions.create)",
            lambda: client.chat.completions.create(model="gpt-4o-mini", messages=messages),
        ),
    ]
    return cases, OpenAIInstrumentor()


WORKLOADS = {"dspy": dspy_cases, "langgraph": langchain_cases, "openai": openai_cases}


# ------------------------------------------------------------------------------- scenarios


@contextmanager
def scenario(name: str, framework: str, oi: Any, provider: TracerProvider) -> Iterator[None]:
    ours = name in ("agentsignals", "both")
    theirs = name in ("openinference", "both")
    if ours:
        instrument(framework, workspace=None) if framework != "openai" else instrument("openai")
    if theirs:
        oi.instrument(tracer_provider=provider)
    try:
        with agentsignals.trial("bench"), agentsignals.attempt():
            yield
    finally:
        if theirs:
            oi.uninstrument()
        if ours:
            uninstrument(framework)


def time_case(call: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args()
    repeats, calls = (2, 50) if args.quick else (args.repeats, args.calls)

    provider = TracerProvider()
    null = NullExporter()
    agentsignals.configure(tracer_provider=provider, exporters=[null], batch=True)
    names = ["bare", "agentsignals", "openinference", "both"]
    results: dict[tuple[str, str, str], list[float]] = {}
    started = time.time()
    for framework, make in WORKLOADS.items():
        try:
            cases, oi = make()
        except ImportError as e:
            print(f"skip {framework}: {e}", file=sys.stderr)
            continue
        for _, _, call in cases:  # warm up every path once
            for name in names:
                with scenario(name, framework, oi, provider):
                    for _ in range(5):
                        call()
        for _ in range(repeats):
            for name in names:
                with scenario(name, framework, oi, provider):
                    for fw, unit, call in cases:
                        results.setdefault((fw, unit, name), []).append(time_case(call, calls))
    agentsignals.force_flush()

    print(f"# bench_integrations: {repeats} repeats × {calls} calls, "
          f"{time.time() - started:.0f} s, {null.count} spans exported\n")  # fmt: skip
    print("| framework | unit | bare µs | + agentsignals µs | + OpenInference µs | + both µs |")
    print("|---|---|---|---|---|---|")
    units = sorted(
        {(fw, unit) for fw, unit, _ in results}, key=lambda k: list(WORKLOADS).index(k[0])
    )
    for fw, unit in units:
        med = {n: statistics.median(results[(fw, unit, n)]) for n in names}
        base = med["bare"]
        cells = [f"{med['bare']:.0f}"] + [
            f"{med[n] - base:+.0f} ({med[n] / base:.2f}×)" for n in names[1:]
        ]
        print(f"| {fw} | {unit} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"|".join(k): v for k, v in results.items()}, f, indent=1)
    agentsignals.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
