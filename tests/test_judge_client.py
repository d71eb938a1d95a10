"""The model client against real HTTP servers on loopback that misbehave on purpose: 429 with
Retry-After, 500s, a server that refuses JSON-schema output, context overflows, garbage."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path
from typing import Any

import pytest

from agentsignals._judge.cache import JudgeCache
from agentsignals._judge.client import (
    ClientConfig,
    ContextOverflow,
    ModelClient,
    ModelError,
    retry_after_seconds,
)
from agentsignals._judge.engine import Judge, JudgeSettings
from agentsignals._judge.rubrics import OutputField, parse_rubric, rubric_prompt
from judge_support import LoopbackServer, Reply, chat_reply

SCHEMA = {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}
MESSAGES = [{"role": "user", "content": "hi"}]


def _client(url: str, sleeps: list[float], **kw: Any) -> ModelClient:
    config = ClientConfig(base_url=f"{url}/v1", backoff_s=0.01, max_backoff_s=0.05, **kw)
    return ModelClient(config, sleep=sleeps.append, seed=1)


def test_429_is_retried_after_the_time_the_server_asks_for() -> None:
    sleeps: list[float] = []
    script = [
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "2"}),
        Reply(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "1500"}),
        chat_reply('{"x": true}'),
    ]
    with LoopbackServer(script) as server:
        result = _client(server.url, sleeps).chat("m", MESSAGES, schema=SCHEMA)
    assert result.text == '{"x": true}'
    assert server.statuses == [429, 429, 200]
    assert sleeps[0] >= 2.0 and sleeps[1] >= 1.5  # the server's wish, not our shorter backoff
    assert result.mode == "json_schema"
    assert server.requests[0]["body"]["response_format"]["type"] == "json_schema"


def test_5xx_are_retried_with_backoff_then_give_a_clear_error() -> None:
    sleeps: list[float] = []
    script = [Reply(500, {"error": {"message": "boom"}}), Reply(503, "unavailable"),
              chat_reply('{"x": false}')]  # fmt: skip
    with LoopbackServer(script) as server:
        assert _client(server.url, sleeps).chat("m", MESSAGES, schema=SCHEMA).text == '{"x": false}'
    assert server.statuses == [500, 503, 200] and len(sleeps) == 2
    with (
        LoopbackServer([Reply(502, "bad gateway")] * 4) as server,
        pytest.raises(ModelError, match="HTTP 502: bad gateway after 4 tries"),
    ):
        _client(server.url, [], retries=3).chat("m", MESSAGES, schema=SCHEMA)
    assert len(server.requests) == 4


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.format_datetime(
        email.utils.localtime().fromtimestamp(time.time() + 30, tz=None).astimezone()
    )
    assert 25 <= (retry_after_seconds({"retry-after": when}) or 0) <= 31


def test_a_server_that_refuses_json_schema_gets_the_next_format_and_keeps_it() -> None:
    # llama-cpp-python's server answers 500 to {"type": "json_schema"} and accepts
    # {"type": "json_object", "schema": ...}: the client steps down once and remembers.
    def refuse_json_schema(request: dict[str, Any]) -> Reply:
        fmt = request["body"].get("response_format", {})
        if fmt.get("type") == "json_schema":
            return Reply(500, {"error": {"message": "Unsupported response_format json_schema"}})
        assert fmt == {"type": "json_object", "schema": SCHEMA}
        return chat_reply('{"x": true}')

    with LoopbackServer(default=refuse_json_schema) as server:
        client = _client(server.url, [])
        first = client.chat("m", MESSAGES, schema=SCHEMA)
        second = client.chat("m", MESSAGES, schema=SCHEMA)
    assert first.mode == second.mode == "json_object_schema"
    assert [r["body"]["response_format"]["type"] for r in server.requests] == [
        "json_schema", "json_object", "json_object",
    ]  # fmt: skip
    assert client.stats.downgrades and "json_schema refused" in client.stats.downgrades[0]


def test_a_context_overflow_is_not_retried() -> None:
    sleeps: list[float] = []
    # llama.cpp says it with a 500, vLLM and OpenAI with a 400.
    for status, message in (
        (500, "Context size has been exceeded."),
        (400, "This model's maximum context length is 8192 tokens"),
    ):
        reply = Reply(status, {"error": {"message": message}})
        with LoopbackServer([reply]) as server, pytest.raises(ContextOverflow):
            _client(server.url, sleeps).chat("m", MESSAGES, schema=SCHEMA)
        assert len(server.requests) == 1
    assert sleeps == []


def test_an_unreachable_server_is_a_model_error_not_a_crash() -> None:
    with LoopbackServer() as server:
        url = server.url
    with pytest.raises(ModelError, match="no answer after 2 tries"):
        _client(url, [], retries=1).chat("m", MESSAGES, schema=SCHEMA)


def test_anthropic_messages_with_a_forced_tool_call() -> None:
    def messages(request: dict[str, Any]) -> Reply:
        body = request["body"]
        assert request["path"] == "/v1/messages"
        assert request["headers"]["x-api-key"] == "k" and "anthropic-version" in request["headers"]
        assert body["system"] == "be brief" and body["messages"][0]["role"] == "user"
        assert body["tool_choice"] == {"type": "tool", "name": "answer"}
        assert body["tools"][0]["input_schema"] == SCHEMA
        return Reply(200, {"model": "claude-x", "content": [
            {"type": "tool_use", "id": "t", "name": "answer", "input": {"x": True}}],
            "usage": {"input_tokens": 12, "output_tokens": 3}})  # fmt: skip

    with LoopbackServer(default=messages) as server:
        config = ClientConfig(base_url=server.url, api_key="k", provider="anthropic")
        result = ModelClient(config).chat(
            "claude-x",
            [{"role": "system", "content": "be brief"}, *MESSAGES],
            schema=SCHEMA,
        )
    assert json.loads(result.text) == {"x": True}
    assert (result.input_tokens, result.output_tokens, result.mode) == (12, 3, "tool_use")


def test_embeddings_in_order_and_from_base64() -> None:
    import base64
    import struct

    def embed(request: dict[str, Any]) -> Reply:
        texts = request["body"]["input"]
        data = [
            {"index": i, "embedding": base64.b64encode(struct.pack("<2f", i, 1.0)).decode()}
            for i in range(len(texts))
        ]
        return Reply(200, {"data": list(reversed(data))})

    with LoopbackServer(default=embed) as server:
        vectors = _client(server.url, []).embed("e", ["a", "b", "c"], batch=2)
    assert vectors == [[0.0, 1.0], [1.0, 1.0], [0.0, 1.0]]


RUBRIC = parse_rubric(
    {"id": "tiny", "procedure": "Say whether the agent ran tests.", "explanation_chars": 60,
     "fields": {"match": {"type": "boolean"}}},
    "test",
)  # fmt: skip


def test_a_garbage_answer_gets_one_re_ask_then_an_honest_failure(tmp_path: Any) -> None:
    # The model ignores the format twice: the field is could_not_judge with the reason.
    garbage = [chat_reply("I think yes, probably."), chat_reply("Yes!! The agent did.")]
    with LoopbackServer(garbage) as server:
        judge = Judge(
            JudgeSettings(model="m", client=ClientConfig(base_url=f"{server.url}/v1"),
                          context_tokens=4000),
            cache=JudgeCache(tmp_path / "c.sqlite"),
        )  # fmt: skip
        from agentsignals._judge.run import read_spans
        from agentsignals._judge.transcript import from_spans, group_by_attempt
        from judge_support import agent_in_subprocess

        spans, _ = read_spans(agent_in_subprocess(tmp_path / "o", tmp_path / "w"))
        (group,) = group_by_attempt(spans).values()
        result = judge.judge_rubric(from_spans(group), RUBRIC)
    field = result.fields["match"]
    assert field.value is None and field.status == "could_not_judge"
    assert field.reason == (
        "no part could be judged (unparseable answer after one re-ask: the answer holds no "
        "JSON object)"
    )
    assert len(server.requests) == 2
    reask = server.requests[1]["body"]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "I think yes, probably."}
    assert "could not be used: the answer holds no JSON object" in reask[-1]["content"]
    assert judge.usage.reasks == 1 and judge.usage.unparseable == 1


def test_the_prompt_carries_the_rubric_and_the_schema_is_sent() -> None:
    prompt = rubric_prompt(RUBRIC, "## Task\nt\n\n## Steps S0-S0 (the whole run)\n[S0] x")
    assert prompt.schema["properties"]["explanation"]["maxLength"] == 60
    assert OutputField(name="match", type="boolean").json_schema() == {"type": "boolean"}
    with LoopbackServer([chat_reply('{"explanation": "no", "match": false}')]) as server:
        _client(server.url, []).chat(
            "m", prompt.messages, schema=prompt.schema, schema_name=prompt.schema_name
        )
    sent = server.requests[0]["body"]
    assert sent["response_format"]["json_schema"]["schema"] == prompt.schema
    assert sent["messages"][1]["content"].endswith("- match: true or false.")


def test_results_go_into_the_given_records_and_select_failed_attempts(tmp_path: Path) -> None:
    import msgspec

    from agentsignals import features
    from agentsignals._features.record import JudgeField
    from judge_support import agent_in_subprocess, read_jsonl, run_cli, schema_answer

    traces = tmp_path / "traces"
    for task in ("t-1", "t-2"):
        agent_in_subprocess(traces / task, tmp_path / "work", task_id=task)
    records = {r.task_id: r for r in features.extract(traces).attempts}
    failed = msgspec.structs.replace(
        records["t-1"],
        verification=msgspec.structs.replace(records["t-1"].verification, reward=0.0),
        judge={"earlier": {"flag": JudgeField(value=True, model="other")}},
    )
    path = tmp_path / "verified.jsonl"
    path.write_bytes(msgspec.json.encode(failed) + b"\n")  # t-2 has no record here
    out = tmp_path / "judged.jsonl"
    rubric = tmp_path / "r.yaml"
    rubric.write_text("id: ran_tests\nprocedure: p\nfields: {match: {type: boolean}}\n")
    with LoopbackServer(default=schema_answer) as server:
        done = run_cli(
            "judge", "run", str(traces), "--records", str(path), "--rubric", str(rubric),
            "--first-wrong-step", "all_at_once", "--model", "m", "--base-url",
            f"{server.url}/v1", "--no-cache", "--no-progress", "-o", str(out),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 traced attempts have no record in --records and were not judged" in done.stderr
    (record,) = read_jsonl(out)
    assert record["attempt_id"] == failed.attempt_id
    assert record["judge"]["earlier"]["flag"]["value"] is True  # kept
    assert record["judge"]["ran_tests"]["match"]["value"] is True
    fws = record["judge"]["first_wrong_step"]
    assert fws["index"]["value"] == 0 and fws["category"]["value"] == "wrong_localization"
    assert len(server.requests) == 2  # one rubric call, one attribution call; t-2 not judged
