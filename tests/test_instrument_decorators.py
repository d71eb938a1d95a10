"""The decorator matrix: bare and with arguments; sync, async, generators and async generators;
methods, classmethods and staticmethods in either decorator order; signatures preserved; context
never leaked."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import agentsignals
from agentsignals import semconv as sc
from agentsignals.testing import CapturedSpans, attributes


@agentsignals.trace_tool
def read_file(path: str, *, limit: int = 10) -> str:
    """Read a file."""
    return f"contents of {path}"


@agentsignals.trace_tool(category="edit")
def patch_it(path: str) -> None:
    return None


@agentsignals.trace_tool("bash")
def run_shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, capture_output=True, text=True, check=False)


@agentsignals.trace_tool
async def fetch(url: str) -> str:
    await asyncio.sleep(0)
    return url.upper()


@agentsignals.trace_tool
def grep_lines(pattern: str) -> Iterator[str]:
    for i in range(3):
        with agentsignals.tool("inner_read"):
            pass
        yield f"{pattern}:{i}"
    return None


@agentsignals.trace_tool
async def stream(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


class Agent:
    @agentsignals.trace_tool
    def method(self, x: int) -> int:
        return x + 1

    @agentsignals.trace_tool
    @classmethod
    def above_classmethod(cls, x: int) -> str:
        return f"{cls.__name__}:{x}"

    @classmethod
    @agentsignals.trace_tool
    def below_classmethod(cls, x: int) -> str:
        return f"{cls.__name__}:{x}"

    @agentsignals.trace_tool
    @staticmethod
    def above_staticmethod(x: int) -> int:
        return x * 2

    @staticmethod
    @agentsignals.trace_tool
    def below_staticmethod(x: int) -> int:
        return x * 3


def _tool_names(captured: CapturedSpans) -> list[str]:
    return [attributes(s)[sc.GEN_AI_TOOL_NAME] for s in captured.spans_of_type("tool")]


def test_bare_named_and_optioned_forms(captured: CapturedSpans) -> None:
    assert read_file("a.py") == "contents of a.py"
    assert patch_it("a.py") is None
    assert run_shell("exit 3").returncode == 3
    spans = captured.spans_of_type("tool")
    assert _tool_names(captured) == ["read_file", "patch_it", "bash"]
    assert [attributes(s)[sc.AGENT_SIGNALS_TOOL_CATEGORY] for s in spans] == [
        "read",
        "edit",
        "shell",
    ]
    assert attributes(spans[0])[sc.AGENT_SIGNALS_TOOL_OUTPUT_BYTES] == len("contents of a.py")
    # A CompletedProcess result gives the exit code; non-zero marks the call failed.
    assert attributes(spans[2])[sc.PROCESS_EXIT_CODE] == 3
    assert spans[2].status.status_code is StatusCode.ERROR


def test_shell_category_refined_by_the_command(captured: CapturedSpans) -> None:
    run_shell("python -m pytest -q --co >/dev/null 2>&1 || true")
    run_shell("grep -rn needle . || true")
    run_shell("sed -n 1,5p /dev/null")
    categories = [attributes(s)[sc.AGENT_SIGNALS_TOOL_CATEGORY] for s in captured.spans]
    assert categories == ["test", "search", "read"]


def test_signatures_and_kinds_preserved() -> None:
    assert inspect.signature(read_file) == inspect.signature(read_file.__wrapped__)
    assert list(inspect.signature(read_file).parameters) == ["path", "limit"]
    assert read_file.__name__ == "read_file"
    assert read_file.__doc__ == "Read a file."
    assert inspect.iscoroutinefunction(fetch)
    assert inspect.isgeneratorfunction(grep_lines)
    assert inspect.isasyncgenfunction(stream)
    assert not inspect.iscoroutinefunction(read_file)
    assert not inspect.isgeneratorfunction(read_file)


def test_methods_classmethods_staticmethods_in_either_order(captured: CapturedSpans) -> None:
    agent = Agent()
    assert agent.method(1) == 2
    assert Agent.above_classmethod(1) == "Agent:1"
    assert Agent.below_classmethod(2) == "Agent:2"
    assert agent.above_classmethod(3) == "Agent:3"
    assert Agent.above_staticmethod(2) == 4
    assert Agent.below_staticmethod(2) == 6
    assert agent.below_staticmethod(1) == 3
    assert _tool_names(captured) == [
        "method",
        "above_classmethod",
        "below_classmethod",
        "above_classmethod",
        "above_staticmethod",
        "below_staticmethod",
        "below_staticmethod",
    ]


def test_method_arguments_captured_without_self(captured_content: CapturedSpans) -> None:
    Agent().method(41)
    Agent.above_classmethod(5)
    Agent.above_staticmethod(6)
    args = [attributes(s)[sc.GEN_AI_TOOL_CALL_ARGUMENTS] for s in captured_content.spans]
    assert args == ['{"x":41}', '{"x":5}', '{"x":6}']


async def test_async_function(captured: CapturedSpans) -> None:
    with agentsignals.attempt():
        assert await fetch("a") == "A"
    tool = captured.spans_of_type("tool")[0]
    assert captured.parent_of(tool).name == "invoke_agent"


def test_generator_span_covers_the_iteration_and_parents_children(captured: CapturedSpans) -> None:
    with agentsignals.attempt():
        assert list(grep_lines("x")) == ["x:0", "x:1", "x:2"]
    outer = captured.named("execute_tool grep_lines")[0]
    inners = captured.named("execute_tool inner_read")
    assert len(inners) == 3
    assert all(
        captured.parent_of(s) is not None and captured.parent_of(s).name == outer.name
        for s in inners
    )
    assert outer.start_time < inners[0].start_time and inners[-1].end_time < outer.end_time
    assert captured.parent_of(outer).name == "invoke_agent"


def test_generator_early_break_ends_span_without_leaking_context(captured: CapturedSpans) -> None:
    before = trace.get_current_span()
    with agentsignals.attempt():
        attempt_span = trace.get_current_span()
        for item in grep_lines("y"):
            # Between items the consumer's context is intact: no leaked tool span.
            assert trace.get_current_span() is attempt_span
            assert item == "y:0"
            break
        assert trace.get_current_span() is attempt_span
    assert trace.get_current_span() is before
    outer = captured.named("execute_tool grep_lines")[0]
    assert outer.end_time is not None
    assert outer.status.status_code is StatusCode.UNSET  # an early close is not an error


def test_generator_close_and_exception(captured: CapturedSpans) -> None:
    gen = grep_lines("z")
    assert next(gen) == "z:0"
    gen.close()
    gen2 = grep_lines("w")
    next(gen2)
    with pytest.raises(ValueError, match="bad item"):
        gen2.throw(ValueError("bad item"))
    closed, failed = captured.named("execute_tool grep_lines")
    assert closed.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert attributes(failed)[sc.ERROR_TYPE] == "ValueError"


def test_generator_send_and_return_value(captured: CapturedSpans) -> None:
    @agentsignals.trace_tool
    def echo() -> Iterator[int]:
        total = 0
        while total < 10:
            got = yield total
            total += got or 1
        return total

    gen = echo()
    assert next(gen) == 0
    assert gen.send(4) == 4
    assert gen.send(5) == 9
    with pytest.raises(StopIteration) as stop:
        gen.send(5)
    assert stop.value.value == 14
    assert len(captured.named("execute_tool echo")) == 1


async def test_async_generator_full_break_and_cancel(captured: CapturedSpans) -> None:
    assert [i async for i in stream(3)] == [0, 1, 2]
    async for i in stream(5):
        if i == 1:
            break
    agen = stream(5)
    await agen.__anext__()
    await agen.aclose()

    # An abandoned async generator is closed by the event loop's finalizer, as without
    # instrumentation: give the loop a turn to run it.
    for _ in range(3):
        await asyncio.sleep(0)

    @agentsignals.trace_tool
    async def slow_stream() -> AsyncIterator[int]:
        while True:
            await asyncio.sleep(0.01)
            yield 1

    async def consume() -> None:
        async for _ in slow_stream():
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    spans = captured.named("execute_tool stream")
    assert len(spans) == 3
    assert all(s.end_time is not None for s in spans)
    cancelled = captured.named("execute_tool slow_stream")
    assert len(cancelled) == 1
    assert attributes(cancelled[0])[sc.ERROR_TYPE] == "CancelledError"


def test_trace_trial_attempt_turn_decorators(captured: CapturedSpans) -> None:
    @agentsignals.trace_turn(model="m")
    def think() -> str:
        agentsignals.current_turn().record_usage(input_tokens=3)
        return "plan"

    @agentsignals.trace_attempt(agent_type="demo")
    def run_attempt() -> str:
        return think()

    @agentsignals.trace_trial
    def solve(instance_id: str) -> list[str]:
        return [run_attempt(), run_attempt()]

    assert solve("astropy__astropy-12907") == ["plan", "plan"]
    trial = captured.spans_of_type("trial")[0]
    assert trial.name == "trial astropy__astropy-12907"
    attempts = captured.spans_of_type("attempt")
    assert [attributes(a)[sc.AGENT_SIGNALS_ATTEMPT_INDEX] for a in attempts] == [0, 1]
    assert all(attributes(a)[sc.AGENT_SIGNALS_TREATMENT_AGENT_TYPE] == "demo" for a in attempts)
    turns = captured.spans_of_type("turn")
    assert [attributes(t)[sc.GEN_AI_USAGE_INPUT_TOKENS] for t in turns] == [3, 3]


def test_decorated_function_exceptions_and_signals_pass_through(captured: CapturedSpans) -> None:
    @agentsignals.trace_tool
    def explode(kind: str) -> None:
        if kind == "value":
            raise ValueError("nope")
        raise KeyboardInterrupt

    with pytest.raises(ValueError, match="nope"):
        explode("value")
    with pytest.raises(KeyboardInterrupt):
        explode("interrupt")
    value_span, interrupt_span = captured.spans
    assert value_span.status.status_code is StatusCode.ERROR
    assert attributes(interrupt_span)[sc.ERROR_TYPE] == "KeyboardInterrupt"


def test_decorating_before_configuring_works(tmp_path: object) -> None:
    # Decorated at import time of this module, long before any capture or configure().
    code = (
        "import agentsignals\n"
        "@agentsignals.trace_tool\n"
        "def t(): return 1\n"
        "from agentsignals.testing import capture_spans\n"
        "with capture_spans() as c:\n"
        "    t()\n"
        "print(len(c.spans))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
