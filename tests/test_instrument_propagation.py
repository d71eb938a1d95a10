"""Context across threads, executors, asyncio tasks and subprocesses."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import agentsignals
from agentsignals import propagate
from agentsignals import semconv as sc
from agentsignals.testing import CapturedSpans, attributes


def _tool_parents(captured: CapturedSpans) -> list[str | None]:
    return [
        (p.name if (p := captured.parent_of(t)) is not None else None)
        for t in captured.spans_of_type("tool")
    ]


def test_plain_threads_lose_context_and_the_helpers_keep_it(captured: CapturedSpans) -> None:
    def work() -> None:
        with agentsignals.tool("read_file"):
            pass

    with agentsignals.attempt(), agentsignals.turn():
        plain = threading.Thread(target=work)
        plain.start()
        plain.join()
        helper = propagate.Thread(target=work)
        helper.start()
        helper.join()
        wrapped = threading.Thread(target=propagate.wrap(work))
        wrapped.start()
        wrapped.join()
    assert _tool_parents(captured) == [None, "turn 0", "turn 0"]
    # The helpers carry identity too: the tool knows its attempt and turn.
    helped = attributes(captured.spans_of_type("tool")[1])
    assert helped[sc.AGENT_SIGNALS_TURN_INDEX] == 0
    assert sc.AGENT_SIGNALS_ATTEMPT_ID in helped


def test_executors(captured: CapturedSpans) -> None:
    def work(i: int) -> int:
        with agentsignals.tool("grep"):
            return i

    with agentsignals.attempt(), agentsignals.turn():
        with propagate.ThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(work, range(3))) == [0, 1, 2]
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as plain_pool:
            assert plain_pool.submit(propagate.wrap(work), 7).result() == 7
    assert _tool_parents(captured) == ["turn 0"] * 4


async def test_asyncio_tasks_inherit_context(captured: CapturedSpans) -> None:
    async def work() -> None:
        with agentsignals.tool("fetch"):
            await asyncio.sleep(0)

    with agentsignals.attempt(), agentsignals.turn():
        await asyncio.gather(work(), work(), asyncio.create_task(work()))
    assert _tool_parents(captured) == ["turn 0"] * 3


def test_subprocess_env_carries_traceparent_and_identity(captured: CapturedSpans) -> None:
    with agentsignals.trial("task-1") as trial, agentsignals.attempt() as attempt:
        with agentsignals.turn():
            pass
        with agentsignals.tool("bash") as tool:
            env = propagate.subprocess_env({"PATH": os.environ.get("PATH", "")})
            tool_ctx = tool.span.get_span_context()
    version, trace_id, span_id, flags = env["TRACEPARENT"].split("-")
    assert (version, flags) == ("00", "01")
    assert int(trace_id, 16) == tool_ctx.trace_id and int(span_id, 16) == tool_ctx.span_id
    baggage = dict(item.split("=", 1) for item in env["BAGGAGE"].split(","))
    assert baggage[sc.AGENT_SIGNALS_TRIAL_ID] == trial.id
    assert baggage[sc.AGENT_SIGNALS_ATTEMPT_ID] == attempt.id
    assert baggage[sc.AGENT_SIGNALS_TURN_INDEX] == "0"
    assert "PATH" in env


CHILD = textwrap.dedent(
    """
    import json, os, sys
    import agentsignals
    agentsignals.configure(output_dir=sys.argv[1], batch=False)
    with agentsignals.tool("child_tool") as t:
        pass
    agentsignals.shutdown()
    """
)


def _read_spans(folder: Path) -> list[dict[str, object]]:
    spans = []
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            for rs in json.loads(line)["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    spans.extend(ss["spans"])
    return spans


def _attr(span: dict[str, object], key: str) -> object:
    for kv in span["attributes"]:  # type: ignore[union-attr]
        if kv["key"] == key:
            value = kv["value"]
            return next(iter(value.values()))
    return None


def test_child_process_joins_the_parent_trace(captured: CapturedSpans, tmp_path: Path) -> None:
    env_base = {k: v for k, v in os.environ.items() if k not in ("TRACEPARENT", "BAGGAGE")}
    with agentsignals.trial("task-9") as trial, agentsignals.attempt() as attempt:
        with agentsignals.turn(), agentsignals.turn():
            pass
        with agentsignals.tool("bash") as tool:
            subprocess.run(
                [sys.executable, "-c", CHILD, str(tmp_path)],
                env=propagate.subprocess_env(env_base),
                check=True,
            )
            parent_ctx = tool.span.get_span_context()
    [child] = _read_spans(tmp_path)
    assert child["traceId"] == format(parent_ctx.trace_id, "032x")
    assert child["parentSpanId"] == format(parent_ctx.span_id, "016x")
    assert _attr(child, sc.AGENT_SIGNALS_TRIAL_ID) == trial.id
    assert _attr(child, sc.AGENT_SIGNALS_ATTEMPT_ID) == attempt.id
    assert _attr(child, sc.AGENT_SIGNALS_TURN_INDEX) == "1"


def test_opt_in_subprocess_patch(captured: CapturedSpans, tmp_path: Path) -> None:
    probe = [sys.executable, "-c", "import os; print(os.environ.get('TRACEPARENT', '-'))"]
    propagate.patch_subprocess()
    try:
        outside = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
        with agentsignals.attempt(), agentsignals.tool("bash") as tool:
            inside = subprocess.run(
                probe, capture_output=True, text=True, check=True
            ).stdout.strip()
            explicit_env = {"PATH": os.environ["PATH"]}
            with_env = subprocess.run(
                probe, capture_output=True, text=True, check=True, env=explicit_env
            ).stdout.strip()
            span_id = format(tool.span.get_span_context().span_id, "016x")
    finally:
        propagate.unpatch_subprocess()
    assert outside == "-"
    assert inside.split("-")[2] == span_id
    assert with_env.split("-")[2] == span_id
    assert explicit_env == {"PATH": os.environ["PATH"]}  # the caller's dict is not mutated
    after = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    assert after == "-"
