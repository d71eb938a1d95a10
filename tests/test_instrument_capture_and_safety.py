"""Content capture (opt-in, budgeted, redacted) and the never-break-the-host guarantees."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentsignals
from agentsignals import semconv as sc
from agentsignals._instrument import capture
from agentsignals.testing import CapturedSpans, attributes, capture_spans

CONTENT_KEYS = {
    sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    sc.GEN_AI_TOOL_CALL_RESULT,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.GEN_AI_INPUT_MESSAGES,
    sc.PROCESS_COMMAND_LINE,
}


def _agent_step() -> None:
    with agentsignals.attempt(), agentsignals.turn() as turn:
        turn.record_reasoning("I will run the tests")
        turn.record_messages(input=[{"role": "user", "parts": []}])
        with agentsignals.tool("bash", arguments={"command": "pytest -x"}) as tool:
            tool.record_result("1 passed", exit_code=0)


def test_metadata_only_by_default(captured: CapturedSpans) -> None:
    _agent_step()
    for span in captured.spans:
        assert not CONTENT_KEYS & set(attributes(span))


def test_capture_on_records_arguments_results_reasoning_and_command(
    captured_content: CapturedSpans,
) -> None:
    _agent_step()
    tool = attributes(captured_content.spans_of_type("tool")[0])
    assert tool[sc.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"command":"pytest -x"}'
    assert tool[sc.GEN_AI_TOOL_CALL_RESULT] == "1 passed"
    assert tool[sc.PROCESS_COMMAND_LINE] == "pytest -x"
    turn = attributes(captured_content.spans_of_type("turn")[0])
    assert '"type":"reasoning"' in turn[sc.GEN_AI_OUTPUT_MESSAGES]
    assert "I will run the tests" in turn[sc.GEN_AI_OUTPUT_MESSAGES]


def test_capture_via_the_otel_genai_variable(
    monkeypatch: pytest.MonkeyPatch, fresh_otel: None
) -> None:
    from agentsignals._settings import capture_mode

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT")
    assert capture_mode(None) == (True, True, True)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")
    assert capture_mode(None) == (True, False, True)
    assert capture_mode(False) == (False, True, False)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "NO_CONTENT")
    assert capture_mode(None) == (False, True, False)
    assert capture_mode(True) == (True, True, False)


def test_event_only_capture_puts_content_on_events(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentsignals._instrument.runtime import RUNTIME, Settings

    with capture_spans(capture_content=True) as captured:
        RUNTIME.settings = Settings(
            capture_content=True, capture_to_span=False, capture_to_events=True
        )
        with agentsignals.tool("bash") as tool:
            tool.record_result("out")
    span = captured.spans[0]
    assert sc.GEN_AI_TOOL_CALL_RESULT not in attributes(span)
    [event] = span.events
    assert event.name == "agent_signals.content"
    assert dict(event.attributes) == {
        sc.AGENT_SIGNALS_CONTENT_KEY: sc.GEN_AI_TOOL_CALL_RESULT,
        sc.AGENT_SIGNALS_CONTENT_VALUE: "out",
    }


OUTPUT = [
    {
        "role": "assistant",
        "parts": [
            {"type": "text", "content": "Running the tests."},
            {"type": "tool_call", "name": "bash", "arguments": {"command": "pytest -x"}},
        ],
    }
]


def _reasoning_and_output(turn: agentsignals.TurnHandle, reasoning_first: bool) -> None:
    if reasoning_first:
        turn.record_reasoning("The divisor is off by one.")
        turn.record_messages(output=OUTPUT)
    else:
        turn.record_messages(output=OUTPUT)
        turn.record_reasoning("The divisor is off by one.")


@pytest.mark.parametrize("reasoning_first", [True, False], ids=["reasoning-first", "output-first"])
def test_reasoning_and_output_messages_are_one_value(
    captured_content: CapturedSpans, reasoning_first: bool
) -> None:
    # Both write gen_ai.output.messages: with span-only capture the later used to overwrite
    # the other. The reasoning is a part of the output message, where GenAI puts it.
    with agentsignals.attempt(), agentsignals.turn() as turn:
        _reasoning_and_output(turn, reasoning_first)
    value = attributes(captured_content.spans_of_type("turn")[0])[sc.GEN_AI_OUTPUT_MESSAGES]
    assert json.loads(value) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "The divisor is off by one."},
                *OUTPUT[0]["parts"],
            ],
        }
    ]


@pytest.mark.parametrize("reasoning_first", [True, False], ids=["reasoning-first", "output-first"])
def test_reasoning_and_output_as_one_event(reasoning_first: bool) -> None:
    from agentsignals._instrument.runtime import RUNTIME, Settings

    with capture_spans(capture_content=True) as captured:
        RUNTIME.settings = Settings(
            capture_content=True, capture_to_span=False, capture_to_events=True
        )
        with agentsignals.attempt(), agentsignals.turn() as turn:
            _reasoning_and_output(turn, reasoning_first)
    span = captured.spans_of_type("turn")[0]
    values = [dict(e.attributes or {}) for e in span.events if e.name == "agent_signals.content"]
    [event] = [v for v in values if v[sc.AGENT_SIGNALS_CONTENT_KEY] == sc.GEN_AI_OUTPUT_MESSAGES]
    parts = json.loads(str(event[sc.AGENT_SIGNALS_CONTENT_VALUE]))[0]["parts"]
    assert [p["type"] for p in parts] == ["reasoning", "text", "tool_call"]


def test_reasoning_already_in_the_output_is_not_repeated(captured_content: CapturedSpans) -> None:
    output = [{"role": "assistant", "parts": [{"type": "reasoning", "content": "Hmm."},
                                              {"type": "text", "content": "Done."}]}]  # fmt: skip
    with agentsignals.attempt(), agentsignals.turn() as turn:
        turn.record_reasoning("Hmm.")
        turn.record_messages(output=output)
    with agentsignals.attempt(), agentsignals.turn() as turn:
        turn.record_reasoning("Only thinking.")
    first, second = (
        json.loads(attributes(s)[sc.GEN_AI_OUTPUT_MESSAGES])
        for s in captured_content.spans_of_type("turn")
    )
    assert first == output
    assert second == [
        {"role": "assistant", "parts": [{"type": "reasoning", "content": "Only thinking."}]}
    ]


def test_large_values_keep_head_and_tail_with_size_and_hash() -> None:
    big = "HEAD" + "x" * 5_000_000 + "TAIL"
    with capture_spans(capture_content=True, max_value_bytes=4096, max_span_bytes=6000) as captured:
        with agentsignals.tool("read_file") as tool:
            tool.record_result(big)
        with agentsignals.tool("search_docs") as tool:
            tool.record_arguments({"query": "q" + "a" * 3000})  # 3 kB: fits
            tool.record_result("B" * 5000)  # the span has ~3 kB of budget left
    first, second = (attributes(s) for s in captured.spans)
    result = first[sc.GEN_AI_TOOL_CALL_RESULT]
    assert result.startswith("HEAD") and result.endswith("TAIL")
    assert len(result.encode()) <= 4096
    assert f"{len(big)} bytes" in result
    assert first[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS] == [sc.GEN_AI_TOOL_CALL_RESULT]
    assert first[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_ORIGINAL_BYTES] == [len(big)]
    assert first[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_SHA256] == [
        hashlib.sha256(big.encode()).hexdigest()
    ]
    assert len(second[sc.GEN_AI_TOOL_CALL_ARGUMENTS]) > 3000  # untouched
    assert second[sc.AGENT_SIGNALS_CONTENT_TRUNCATED_KEYS] == [sc.GEN_AI_TOOL_CALL_RESULT]
    total = sum(len(str(v).encode()) for k, v in second.items() if k in CONTENT_KEYS)
    assert total <= 6000


SECRETS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "a1B2c3D4e5" * 4,
    "api_key": "sk-ant-api03-" + "Z9y8X7w6V5" * 4,
    "slack_token": "xoxb-1234567890-abcdefghij",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",  # noqa: E501
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_builtin_secret_patterns_never_echo_the_match(kind: str) -> None:
    secret = SECRETS[kind]
    with capture_spans(capture_content=True) as captured, agentsignals.tool("bash") as tool:
        tool.record_result(f"config dump: value={secret} done")
    attrs = attributes(captured.spans[0])
    text = attrs[sc.GEN_AI_TOOL_CALL_RESULT]
    assert secret not in text
    assert (secret[-6:] not in text and secret[:8] not in text) or kind == "aws_access_key_id"
    assert "[REDACTED:" in text
    assert attrs[sc.AGENT_SIGNALS_CONTENT_REDACTIONS] >= 1


def test_credentials_and_private_keys_redacted() -> None:
    text = textwrap.dedent(
        """
        DB_PASSWORD=hunter2hunter2
        Authorization: Bearer abcdefghijklmnop0123456789
        -----BEGIN RSA PRIVATE KEY-----
        MIIEowIBAAKCAQEA7
        -----END RSA PRIVATE KEY-----
        """
    )
    with capture_spans(capture_content=True) as captured:  # noqa: SIM117
        with agentsignals.tool("read_file") as tool:
            tool.record_result(text)
    out = attributes(captured.spans[0])[sc.GEN_AI_TOOL_CALL_RESULT]
    for leaked in ("hunter2hunter2", "abcdefghijklmnop0123456789", "MIIEowIBAAKCAQEA7"):
        assert leaked not in out
    assert "DB_PASSWORD=[REDACTED:credential]" in out


def _redact_reference(text: str) -> tuple[str, int]:
    """Every rule searched over the whole text, no keywords: what `redact_secrets` must equal
    (rules in order, a match overlapping an earlier rule's accepted match skipped)."""
    from agentsignals._instrument import redact

    spans: list[tuple[int, int, str]] = []
    for rule in redact.RULES:
        if rule.requires and rule.requires not in redact._folded(text):
            continue
        pos = 0
        while pos <= len(text):
            m = rule.pattern.search(text, pos)
            if m is None:
                break
            pos = m.start() + 1
            begin, end = m.span()
            if end == begin or any(b < end and begin < e for b, e, _ in spans):
                continue
            replacement = redact._replacement(rule, m)
            if replacement is not None:
                spans.append((begin, end, replacement))
    out, done = [], 0
    for begin, end, replacement in sorted(spans):
        out += [text[done:begin], replacement]
        done = end
    return "".join([*out, text[done:]]), len(spans)


def test_keywords_never_change_what_is_redacted() -> None:
    """Each rule runs only where one of its keywords is; on texts built from the rules' own
    pieces, case variants included (long s, Kelvin sign, Turkish i), the result equals searching
    every rule everywhere."""
    pieces = [
        *SECRETS.values(), "DB_PASSWORD=hunter2hunter2", "Api-Key: 'abcdef123456'",
        "x.auth_token = \"tok3n-tok3n\"", "BEARER abcdefghijklmnop0123456789",
        "pa\u017f\u017fword=hunter22", "PRIVATE_\u212aEY=abcdefgh", "PR\u0130VATE_KEY=abcdefgh",
        "pr\u0131vate-key=abcdefgh", "-----BEGIN PRIVATE KEY-----\nxyz\n-----END PRIVATE KEY-----",
        "secret", "sk-", "eyJ", "AKIA", "ghp_", "xoxb-", "AIza" + "b" * 35, " ", "\n", "=",
        "def f(api, access, auth):", "return private_value", "123456", "'", "\"",
        "secret_password", "x.api-key", "--password", ".secret", "my-", "_", ".", "-", ":", "a1",
        "Passwd", "APIKEY", "auth_token", "access-key", "[REDACTED:api_key]", "x", "9",
        "ASIA" + "Q" * 16, "gho_" + "z" * 30, "github_pat_" + "y" * 22, "xoxp-" + "1" * 10,
        "eyJ" + "a" * 8 + "." + "b" * 8 + "." + "c" * 8, "Bearer ", "sk-proj-", "a" * 20,
        "://", "user:", "@", "postgres://u:pw@h", "Basic ", "dXNlcjpwYXNz", "Authorization: ",
        "machine m login l ", "password ", "Cookie: ", "sk_live_", "hf_", "Q~", "abc1",
        "DB_PASS", "PASS", "passed", "tokens", "token", "_KEY", "key", "--token ", "-u ",
        "aws_secret_access_key ", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "\\\"", "\\n",
        "machine",
    ]  # fmt: skip
    rng = random.Random(7)
    filler = "x = 1\n" * 50
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        for variant in (text, filler + text, text + filler):
            assert capture.redact_secrets(variant) == _redact_reference(variant), variant
    # Sanity: the case-folding cases really are secrets to the rules.
    for text in ("pa\u017f\u017fword=hunter22", "PR\u0130VATE_KEY=abcdefgh"):
        assert capture.redact_secrets(filler + text)[1] == 1


def test_user_redaction_hook_and_failing_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    def hook(key: str, text: str) -> str | None:
        if "internal" in text:
            return None
        return text.replace("acme", "<customer>")

    with capture_spans(capture_content=True, redact=hook) as captured:
        with agentsignals.tool("bash") as tool:
            tool.record_result("deploy to acme")
        with agentsignals.tool("bash") as tool:
            tool.record_result("internal only")
    first, second = captured.spans
    assert attributes(first)[sc.GEN_AI_TOOL_CALL_RESULT] == "deploy to <customer>"
    assert sc.GEN_AI_TOOL_CALL_RESULT not in attributes(second)

    def broken(key: str, text: str) -> str:
        raise RuntimeError("hook bug")

    monkeypatch.setenv("AGENTSIGNALS_RAISE_INTERNAL_ERRORS", "0")
    with capture_spans(capture_content=True, redact=broken) as captured:  # noqa: SIM117
        with agentsignals.tool("bash") as tool:
            tool.record_result("secret-ish")
    # A failing hook drops the value rather than risk leaking it; the agent carries on.
    assert sc.GEN_AI_TOOL_CALL_RESULT not in attributes(captured.spans[0])


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("repr explodes")

    def __str__(self) -> str:
        raise RuntimeError("str explodes")


def test_hostile_arguments_never_break_the_call(captured_content: CapturedSpans) -> None:
    @agentsignals.trace_tool
    def tool_with_hostile(obj: object) -> object:
        return obj

    hostile = Hostile()
    assert tool_with_hostile(hostile) is hostile
    attrs = attributes(captured_content.spans[0])
    assert "unrepresentable Hostile" in attrs[sc.GEN_AI_TOOL_CALL_ARGUMENTS]


def test_internal_errors_are_swallowed_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, captured: CapturedSpans
) -> None:
    from agentsignals._instrument import runtime

    monkeypatch.setenv("AGENTSIGNALS_RAISE_INTERNAL_ERRORS", "0")

    class BrokenTracer:
        def start_span(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("tracer is broken")

    monkeypatch.setattr(runtime.RUNTIME, "tracer", BrokenTracer())

    @agentsignals.trace_tool
    def add(a: int, b: int) -> int:
        return a + b

    with caplog.at_level(logging.WARNING, logger="agentsignals"):
        assert add(2, 3) == 5  # the agent's return value survives
        with agentsignals.attempt() as attempt, agentsignals.tool("bash") as tool:
            tool.record_result("x", exit_code=1)
            attempt.set_exit_reason("submitted")
    assert "tracer is broken" in caplog.text
    assert "the agent is unaffected" in caplog.text


def test_a_broken_exporter_never_raises_into_the_agent(fresh_otel: None, tmp_path: object) -> None:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Exploding(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            raise OSError("disk on fire")

    agentsignals.configure(exporters=[Exploding()], batch=False)
    with agentsignals.attempt(), agentsignals.tool("bash") as tool:
        tool.record_result("fine")
    assert agentsignals.force_flush() is True


def test_nothing_is_written_to_stdout() -> None:
    code = textwrap.dedent(
        """
        import os, agentsignals
        os.environ["AGENTSIGNALS_RAISE_INTERNAL_ERRORS"] = "0"
        agentsignals.configure(exporters=["console"], capture_content=True, batch=False,
                               output_dir=os.environ["OUT"])
        @agentsignals.trace_tool
        def bash(command): return "ok"
        with agentsignals.trial("t"), agentsignals.attempt(), agentsignals.turn() as t:
            t.record_reasoning("thinking")
            bash("ls")
        agentsignals.shutdown()
        """
    )
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "OUT": out},
            check=True,
        )
    assert result.stdout == ""
    assert "execute_tool bash" in result.stderr  # the console exporter writes to stderr


def test_a_completed_process_result_is_what_it_showed(
    captured_content: CapturedSpans, tmp_path: Path
) -> None:
    # unittest reports on stderr: a tool returning the CompletedProcess of a run with the
    # streams captured apart records both, and the outcome is parsed from them.
    test_file = tmp_path / "test_x.py"
    test_file.write_text(
        "import unittest\n\nclass T(unittest.TestCase):\n"
        "    def test_ok(self):\n        print('out')\n"
        "    def test_bad(self):\n        self.assertEqual(1, 2)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "unittest", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout == "out\n" and "FAILED (failures=1)" in done.stderr
    with agentsignals.attempt(), agentsignals.tool("run_tests", category="test") as tool:
        tool.record_result(done)
    span = attributes(captured_content.spans_of_type("tool")[0])
    assert span[sc.GEN_AI_TOOL_CALL_RESULT] == done.stdout + done.stderr
    assert span[sc.PROCESS_EXIT_CODE] == 1
    assert span[sc.AGENT_SIGNALS_TEST_PASSED_COUNT] == 1
    assert span[sc.AGENT_SIGNALS_TEST_FAILED_COUNT] == 1
