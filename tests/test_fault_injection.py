# ruff: noqa: E501  (the table of entry points reads best one call per line)
"""Fault injection on the in-process side: try to break the host, leak a secret, lose a record.

Each test counts what the issue counts (host failures, hangs, leaks, lost records) and asserts
zero. Hostile arguments go through every public entry point; exporters hang or raise; secrets
of every common shape go through every channel an exporter of ours writes (span attributes,
events, exception events, status messages, other instrumentors' spans, the file store, OTLP over
loopback). Hangs and exits run in subprocesses with a hard timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import agentsignals
from agentsignals import propagate
from agentsignals._export.file import iter_export_requests
from agentsignals._instrument import args as args_module
from agentsignals.testing import capture_spans

# ------------------------------------------------------------------------ hostile arguments


class Hostile:
    """str(), repr(), bool(), iteration, hashing: everything raises."""

    def __str__(self) -> str:
        raise RuntimeError("str explodes")

    def __repr__(self) -> str:
        raise RuntimeError("repr explodes")

    def __bool__(self) -> bool:
        raise RuntimeError("bool explodes")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iter explodes")

    def __float__(self) -> float:
        raise RuntimeError("float explodes")

    def __index__(self) -> int:
        raise RuntimeError("index explodes")


H = Hostile()
BAD = [None, H, "0.12$", "30s", 42, -1, 10**30, float("nan"), float("inf"), b"\xff", [H], {H: 1}]


def _calls() -> list[tuple[str, Callable[[Any], Any]]]:
    """Every public entry point, each taking one hostile value in one argument."""

    def in_turn(f: Callable[[agentsignals.TurnHandle], Any]) -> Callable[[Any], Any]:
        def run(v: Any) -> Any:
            with agentsignals.trial("t"), agentsignals.attempt(), agentsignals.turn() as t:
                f(t)

        return run

    def in_tool(f: Callable[[agentsignals.ToolHandle], Any]) -> Callable[[Any], Any]:
        def run(v: Any) -> Any:
            with agentsignals.attempt(), agentsignals.tool("bash") as t:
                f(t)

        return run

    def in_attempt(f: Callable[[agentsignals.AttemptHandle], Any]) -> Callable[[Any], Any]:
        def run(v: Any) -> Any:
            with agentsignals.attempt() as a:
                f(a)

        return run

    calls: list[tuple[str, Callable[[Any], Any]]] = []
    for v in BAD:

        def bind(v: Any = v) -> list[tuple[str, Callable[[Any], Any]]]:
            return [
                ("trial(task_id)", lambda _: agentsignals.trial(v).__enter__().__exit__(None, None, None)),
                ("trial(kwargs)", lambda _: _cm(agentsignals.trial("t", trial_id=v, dataset=v, run_id=v, attributes=v))),
                ("attempt(kwargs)", lambda _: _cm(agentsignals.attempt(v, agent_type=v, model_id=v, dataset=v, attempt1_tool_cap=v, retry_tool_cap=v, concurrency=v, timeout_s=v, agent_name=v, provider=v, conversation_id=v, attempt_id=v, attributes=v))),
                ("turn(kwargs)", lambda _: _cm(agentsignals.turn(model=v, provider=v, phase=v, attributes=v))),
                ("tool(kwargs)", lambda _: _cm(agentsignals.tool(v, category=v, call_id=v, arguments=v, files=v, tool_type=v, attributes=v))),
                ("turn.record_cost", in_turn(lambda t: t.record_cost(v))),
                ("turn.record_usage", in_turn(lambda t: t.record_usage(input_tokens=v, output_tokens=v, cache_read_tokens=v, cache_write_tokens=v, reasoning_tokens=v))),
                ("turn.record_model", in_turn(lambda t: t.record_model(request=v, response=v, provider=v, finish_reasons=v))),
                ("turn.set_phase", in_turn(lambda t: t.set_phase(v))),
                ("turn.record_reasoning", in_turn(lambda t: t.record_reasoning(v))),
                ("turn.record_messages", in_turn(lambda t: t.record_messages(input=v, output=v))),
                ("turn.set_attribute", in_turn(lambda t: (t.set_attribute(H, v), t.set_attribute("agent_signals.turn.phase", [H, v])))),
                ("attempt.set_exit_reason", in_attempt(lambda a: a.set_exit_reason(v))),
                ("attempt.set_treatment", in_attempt(lambda a: a.set_treatment(agent_type=v, model_id=v, dataset=v, attempt1_tool_cap=v, retry_tool_cap=v, concurrency=v, timeout_s=v))),
                ("attempt.set_modes", in_attempt(lambda a: a.set_modes(localization_mode=v, recovery_mode=v, final_failure_mode=v))),
                ("attempt.record_outcome", in_attempt(lambda a: a.record_outcome(resolved=v, reward=v, label=v, fail_to_pass=v, fail_to_fail=v, pass_to_pass=v, pass_to_fail=v, patch_applies=v, unverifiable_reason=v, source=v))),
                ("tool.set_files", in_tool(lambda t: t.set_files(v))),
                ("tool.set_category", in_tool(lambda t: t.set_category(v))),
                ("tool.set_exit_code", in_tool(lambda t: t.set_exit_code(v, failed=v))),
                ("tool.set_error", in_tool(lambda t: t.set_error(v, v))),
                ("tool.record_result", in_tool(lambda t: t.record_result(v, exit_code=v))),
                ("tool.record_arguments", in_tool(lambda t: t.record_arguments(v))),
                ("tool.record_test_report", in_tool(lambda t: t.record_test_report(v))),
                ("trace_tool(attributes)", lambda _: agentsignals.trace_tool(category=v, tool_type=v, attributes=v)(lambda x: x)(v)),
                ("trace_trial", lambda _: agentsignals.trace_trial(task_id=v, dataset=v, attributes=v)(lambda task_id: task_id)(v)),
                ("trace_attempt", lambda _: agentsignals.trace_attempt(timeout_s=v, concurrency=v, attributes=v)(lambda: 1)()),
                ("trace_turn", lambda _: agentsignals.trace_turn(model=v, phase=v, attributes=v)(lambda: 1)()),
                ("propagate.inject_env", lambda _: propagate.inject_env(v)),
                ("propagate.subprocess_env", lambda _: propagate.subprocess_env(v)),
                ("propagate.context_from_environ", lambda _: propagate.context_from_environ(v)),
                ("force_flush", lambda _: agentsignals.force_flush(v)),
            ]  # fmt: skip

        calls += bind()
    return calls


def _cm(handle: Any) -> None:
    with handle:
        pass


@pytest.mark.parametrize("capture", [False, True])
def test_hostile_arguments_never_reach_the_agent(capture: bool) -> None:
    """Every entry point with every bad value: zero exceptions into the caller, and the bad
    values are dropped with a log line rather than raised (this suite raises on internal
    errors, so a conversion done outside its guard would fail here)."""
    host_failures: list[str] = []
    before = args_module.reported_count()
    with capture_spans(capture_content=capture) as captured:
        for name, call in _calls():
            try:
                call(None)
            except Exception as exc:  # a host failure
                host_failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert host_failures == []
    assert args_module.reported_count() > before  # they were noticed, not silently kept
    assert captured.spans  # and instrumentation still recorded the calls


def test_the_issue_examples_are_dropped_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level("DEBUG", logger="agentsignals"),
        capture_spans() as captured,
        agentsignals.attempt() as a,
    ):
        a.set_treatment(timeout_s="30s", concurrency="4")
        with agentsignals.turn(attributes=42) as turn:  # type: ignore[arg-type]
            turn.record_cost(None)  # type: ignore[arg-type]
            turn.record_cost("0.12$")  # type: ignore[arg-type]
            turn.record_cost("0.25")  # type: ignore[arg-type]
        with agentsignals.tool("bash") as tool:
            tool.set_files(None)  # type: ignore[arg-type]
    turn_span = captured.spans_of_type("turn")[0]
    attempt_span = captured.spans_of_type("attempt")[0]
    assert turn_span.attributes["agent_signals.usage.cost_usd"] == 0.25  # type: ignore[index]
    assert attempt_span.attributes["agent_signals.treatment.concurrency"] == 4  # type: ignore[index]
    assert "agent_signals.treatment.timeout_s" not in (attempt_span.attributes or {})
    lines = [r.getMessage() for r in caplog.records]
    for where in ("turn.record_cost(usd=)", "attempt.set_treatment(timeout_s=)", "turn(attributes=)",
                  "tool.set_files(files=)"):  # fmt: skip
        assert sum(where in line for line in lines) >= 1, where
    assert not any("Traceback" in line or "0.12$" in line for line in lines)  # never the value


def test_a_huge_turn_index_in_baggage_does_not_hang_the_child(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import agentsignals, time
        from agentsignals.testing import capture_spans
        t0 = time.monotonic()
        with capture_spans() as c:
            with agentsignals.trial("child"), agentsignals.turn() as t:
                pass
        print(round(time.monotonic() - t0, 3), t.index)
        """
    )
    env = dict(os.environ)
    env.update(
        TRACEPARENT="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        BAGGAGE="agent_signals.trial.id=t1,agent_signals.attempt.id=a1,"
        "agent_signals.attempt.index=0,agent_signals.turn.index=" + "9" * 18,
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    seconds, index = proc.stdout.split()
    assert float(seconds) < 10
    assert int(index) == 0  # the absurd index was ignored, not looped over


# ------------------------------------------------------------------ hanging and raising


HANGING_AGENT = """
import os, sys, threading, time
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
import agentsignals

class Hanging(SpanExporter):
    def export(self, spans):
        threading.Event().wait()  # forever
        return SpanExportResult.SUCCESS
    def shutdown(self):
        threading.Event().wait()

agentsignals.configure(exporters=[Hanging(), "file"], batch={batch},
                       output_dir=os.environ["OUT"])
t0 = time.monotonic()
with agentsignals.trial("t"), agentsignals.attempt(), agentsignals.tool("bash") as tool:
    tool.record_result("ok")
body = time.monotonic() - t0
t0 = time.monotonic()
flushed = agentsignals.force_flush(timeout_millis=300)
print(round(body, 3), round(time.monotonic() - t0, 3), flushed, flush=True)
"""


@pytest.mark.parametrize("batch", [True, False])
def test_a_hanging_exporter_never_hangs_the_agent_or_its_exit(tmp_path: Path, batch: bool) -> None:
    """export() and shutdown() never return: the agent's calls, force_flush(timeout_millis)
    and the exit are all bounded (OTEL_BSP_EXPORT_TIMEOUT), and the file store keeps every
    span (zero lost records)."""
    env = dict(os.environ, OUT=str(tmp_path), OTEL_BSP_EXPORT_TIMEOUT="1000")
    env.pop("AGENTSIGNALS_RAISE_INTERNAL_ERRORS", None)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", HANGING_AGENT.format(batch=batch)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    total = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    body, flush_s, flushed = proc.stdout.split()
    assert float(body) < 5  # batch=False exports inline: bounded by the 1 s export timeout
    assert float(flush_s) < 3
    # Batched spans wait behind the stuck export, so the flush reports failure; exported inline,
    # nothing is left to flush.
    assert flushed == ("False" if batch else "True")
    assert total < 30  # exit bounded (one export-timeout deadline), not forever
    names = {
        s["name"]
        for r in iter_export_requests(tmp_path / "traces")
        for rs in r["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    }
    assert names == {"trial t", "invoke_agent", "execute_tool bash"}


def test_raising_exporters_never_reach_the_agent(fresh_otel: None, tmp_path: Path) -> None:
    class Raising(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            raise RuntimeError("export exploded")

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            raise RuntimeError("flush exploded")

        def shutdown(self) -> None:
            raise RuntimeError("shutdown exploded")

    for batch in (False, True):
        agentsignals.configure(exporters=[Raising(), "file"], batch=batch, output_dir=tmp_path)
        with agentsignals.trial("t"), agentsignals.attempt(), agentsignals.tool("x"):
            pass
        agentsignals.force_flush(timeout_millis=2000)
        agentsignals.shutdown()
    spans = [
        s
        for r in iter_export_requests(tmp_path / "traces")
        for rs in r["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert len(spans) == 6  # both runs, every span: the file store lost nothing


def test_a_dead_otlp_endpoint_costs_no_wait_at_exit_and_no_record(tmp_path: Path) -> None:
    """OTLP to a port nobody listens on: exit does not sit through the retry schedule, and
    the local store (on by default beside OTLP) has every span."""
    code = textwrap.dedent(
        """
        import atexit, sys, time
        END = [0.0]
        # Registered first, so it runs last: the time exit took after the script ended.
        atexit.register(lambda: sys.stderr.write(f"EXIT_PHASE {time.monotonic() - END[0]}\\n"))
        import agentsignals
        agentsignals.configure()
        for i in range(3):
            with agentsignals.trial(f"t{i}"), agentsignals.attempt():
                pass
        END[0] = time.monotonic()
        """
    )
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.pop("AGENTSIGNALS_OUTPUT_DIR", None)  # the default folder, in the working directory
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    tmp_path = tmp_path / "agentsignals-output"
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Measured inside the child, from the end of the script: start-up under load does not count.
    phase = [ln for ln in proc.stderr.splitlines() if ln.startswith("EXIT_PHASE ")]
    assert phase, proc.stderr[-2000:]
    assert float(phase[-1].split()[1]) < 6, proc.stderr[-2000:]  # was ~8 s of retries
    names = sorted(
        s["name"]
        for r in iter_export_requests(tmp_path / "traces")
        for rs in r["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    )
    assert names.count("invoke_agent") == 3 and names.count("trial t0") == 1
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"


# ---------------------------------------------------------------------------- secrets

# One of every common shape. Each must vanish from everything an exporter of ours writes.
SECRETS = {
    "openai": "sk-proj-" + "AbCdEfGh12" * 4,
    "anthropic": "sk-ant-api03-" + "Zy9Xw8Vu7T" * 4,
    "stripe": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "huggingface": "hf_" + "QwErTyUiOpAsDfGhJkLzXcVbNm12345678",
    "github": "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2,
    "gitlab": "glpat-" + "xY7_zz9QwErTyUiOp1234",
    "aws_key_id": "AKIA" + "IOSFODNN7EXAMPL2",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "slack": "xoxb-" + "123456789012-abcdefghijkl",
    "google": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF",
    "basic": "dXNlcjpodW50ZXIyaHVudGVyMg==",
    "url_password": "Pg-Sup3r-S3cret",
    "mongo_password": "M0ng0P4ssw0rd",
    "redis_password": "R3d1sP4ss",
    "db_pass": "hunter2-db-pass",
    "hf_env": "hf_envtoken" + "A1b2C3d4E5f6G7h8I9j0",
    "pgp_body": "lQOYBGXyZ0sBCADc9kF3aXNlY3JldGtleW1hdGVyaWFs",
    "rsa_body": "MIIEowIBAAKCAQEA7bq2SaRcR9nBUwYdPlEmIaAW",
    "json_password": "correct horse battery staple",
}


def _secret_text() -> str:
    s = SECRETS
    return textwrap.dedent(
        f"""
        export OPENAI_API_KEY={s["openai"]}
        ANTHROPIC_API_KEY={s["anthropic"]}
        stripe.api_key = "{s["stripe"]}"
        HF_TOKEN={s["hf_env"]} and {s["huggingface"]}
        git push https://{s["github"]}@github.com/a/b {s["gitlab"]}
        aws configure set aws_access_key_id {s["aws_key_id"]}
        aws configure set aws_secret_access_key {s["aws_secret"]}
        SLACK={s["slack"]} GOOGLE={s["google"]} token: {s["jwt"]}
        curl -H "Authorization: Basic {s["basic"]}" https://x
        postgres://app:{s["url_password"]}@db:5432/prod
        mongodb+srv://user:{s["mongo_password"]}@cluster0.example.net/db
        redis://:{s["redis_password"]}@localhost:6379/0
        DB_PASS={s["db_pass"]}
        -----BEGIN PGP PRIVATE KEY BLOCK-----
        {s["pgp_body"]}
        -----END PGP PRIVATE KEY BLOCK-----
        -----BEGIN RSA PRIVATE KEY-----
        {s["rsa_body"]}
        -----END RSA PRIVATE KEY-----
        {{"password": "{s["json_password"]}"}}
        """
    )


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(self.rfile.read(n))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _leaks(blob: bytes | str) -> list[str]:
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    return [name for name, secret in SECRETS.items() if secret in text]


@pytest.mark.parametrize("capture", [False, True])
def test_secrets_never_leave_through_any_channel(
    fresh_otel: None, tmp_path: Path, capture: bool
) -> None:
    """Every shape through every channel: attributes, events, exception events, status
    messages, tool errors, another instrumentor's spans; written by the file store, OTLP over
    loopback and the console exporter. Zero leaks, every span still exported."""
    text = _secret_text()
    _Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        agentsignals.configure(
            exporters=["file", "otlp"],
            endpoint=f"http://127.0.0.1:{server.server_port}",
            output_dir=tmp_path,
            capture_content=capture,
            batch=False,
        )
        from opentelemetry import trace

        other = trace.get_tracer("openinference.instrumentation.openai")
        with agentsignals.trial("t"), agentsignals.attempt() as attempt:
            with agentsignals.turn() as turn:
                turn.record_messages(input=[{"role": "user", "content": text}])
                turn.record_reasoning(text)
                with other.start_as_current_span(
                    "ChatCompletion " + SECRETS["openai"],
                    attributes={"input.value": text, "llm.input_messages.0.message.content": text,
                                "openinference.span.kind": "LLM", "tags": [text, "x"]},
                ) as span:  # fmt: skip
                    span.add_event("prompt", {"content": text})
                    span.set_status(trace.Status(trace.StatusCode.ERROR, text))
            with agentsignals.tool("bash", arguments={"command": text, "env": {"DB_PASS": "hunter2-db-pass"}}) as tool:  # fmt: skip
                tool.record_result(text, exit_code=1)
                tool.set_error("HTTPError", text)
            try:
                with agentsignals.tool("http"):
                    raise ConnectionError(text)
            except ConnectionError:
                pass
            attempt.set_exit_reason("error")
        assert agentsignals.force_flush()
        agentsignals.shutdown()
    finally:
        server.shutdown()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "traces").glob("*.jsonl"))
    sent = b"".join(_Receiver.bodies)
    assert _leaks(stored) == []
    assert _leaks(sent) == []
    names = [
        s["name"]
        for r in iter_export_requests(tmp_path / "traces")
        for rs in r["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    # Nothing withheld: every span is there, the other instrumentor's name redacted too.
    assert sorted(names) == [
        "ChatCompletion [REDACTED:api_key]", "execute_tool bash", "execute_tool http",
        "invoke_agent", "trial t", "turn 0",
    ]  # fmt: skip
    assert b"[REDACTED:" in stored and b"[REDACTED:" in sent
    # What is not a secret survives redaction.
    assert b"cluster0.example.net" in stored and b"aws configure set" in stored


def test_secrets_in_dict_arguments_survive_no_json_escaping(captured_content: Any) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
    with agentsignals.tool("write", arguments={"content": key, "cfg": {"password": 'p"w\n1'}}):
        pass
    value = captured_content.spans[0].attributes["gen_ai.tool.call.arguments"]
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in value and 'p\\"w' not in value
    assert json.loads(value)["cfg"]["password"] == "[REDACTED:credential]"


def test_capture_off_tool_errors_are_redacted_at_the_source(captured: Any) -> None:
    """With capture off, the message a tool gives set_error and an exception's message and
    stack trace are redacted on the span itself, so a host's own exporter (Phoenix, say)
    sees no secret either."""
    with agentsignals.tool("bash") as tool:
        tool.set_error("AuthError", f"401 for token {SECRETS['github']}")
    try:
        with agentsignals.tool("http"):
            raise PermissionError(f"DB_PASS={SECRETS['db_pass']}")
    except PermissionError:
        pass
    blob = json.dumps(
        [
            [dict(s.attributes or {}), s.status.description]
            + [dict(e.attributes or {}) for e in s.events]
            for s in captured.spans
        ]
    )
    assert _leaks(blob) == []
    assert "[REDACTED:github_token]" in blob and "[REDACTED:credential]" in blob
