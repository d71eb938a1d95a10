"""The session pipeline with the real semantic pass: a real Claude Code session imported with
its content, the real local embedding server (../shared/models.md), the session record's
model-based fields filled through the hook, and a re-run that embeds nothing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsignals import features
from agentsignals._import.run import import_file

sys.path.insert(0, str(Path(__file__).parent))
from judge_support import EMBED_MODEL, embeddings_server, missing_models


@pytest.fixture(scope="module")
def embed_url() -> Iterator[str]:
    if missing_models() is not None:
        pytest.skip(str(missing_models()))
    with embeddings_server() as url:
        yield url


def test_semantic_fields_of_a_real_session(shared_data: Path, embed_url: str) -> None:
    from agentsignals._features.embedding import CachedEmbedder
    from agentsignals._judge.client import ClientConfig, ModelClient
    from agentsignals._judge.session import HttpEmbedder

    result = import_file(shared_data / "claude-code" / "tool_heavy.jsonl", content=True)
    spans = [s for t in result.trajectories for s in t]
    embedder = CachedEmbedder(
        HttpEmbedder(ModelClient(ClientConfig(base_url=embed_url)), EMBED_MODEL)
    )
    (session,) = features.from_spans(spans, embedder=embedder).sessions
    dyn = session.dynamics
    assert session.semantic_source == "agentsignals._features.session_semantic"
    # Two user messages: CP of the first against itself is 0, the second is a real distance.
    assert dyn.cp_curve is not None and len(dyn.cp_curve) == 2 and dyn.cp_curve[0] == 0.0
    assert dyn.cp_curve[1] is not None and 0.0 < dyn.cp_curve[1] < 1.0
    assert dyn.max_cp == max(dyn.cp_curve)
    # One value per agent turn; turns that wrote no text (tool calls only) are None.
    hedging = session.user.agent_hedging_curve or []
    assert dyn.intent_coherence_curve is not None and len(dyn.intent_coherence_curve) == 4
    assert [v is None for v in dyn.intent_coherence_curve] == [h is None for h in hedging]
    assert dyn.embedding_repetition_rate is not None
    # Judge signals need a session judge: still null, and the attribution says so.
    assert session.anticipation.task_paraphrase_accuracy is None
    assert session.anticipation.session_attribution_missing == [
        "anticipation.prompt_underspecification"
    ]
    sent = embedder.embedded
    assert sent > 0
    (again,) = features.from_spans(spans, embedder=embedder).sessions
    assert embedder.embedded == sent  # the re-run embedded nothing
    assert again.dynamics.cp_curve == dyn.cp_curve
