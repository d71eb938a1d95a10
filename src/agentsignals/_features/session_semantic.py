"""The model-based product-session signals: the inventory's embedding `dynamics.*` and the
judge's `anticipation.*` / `dynamics.*`, as pure functions over a session's text.

:func:`semantic_signals` takes a :class:`SessionText` (what the session said, in order), an
:class:`~agentsignals._features.embedding.Embedder` or None, and a :class:`SessionJudge` or
None, and returns the inventory's names as keys (``dynamics.cp_curve``, ...). A signal whose
model was not given is None, never guessed. The feature layer imports no model client: the
embedder and the judge come in as protocols (the judge's implementation is
``agentsignals._judge.session``).

Definitions (the inventory's, with its thresholds as named settings in
:class:`SemanticSettings`):

- ``dynamics.cp_curve``: for every user turn N, 1 - cosine(embed(user turn 0), embed(user
  turn N)); entry 0 is 0. A blank user turn has None.
- ``dynamics.max_cp``: the curve's maximum. ``dynamics.drift_onset_turn``: the first user turn
  whose CP > ``cp_moderate`` (0.2), None when none is.
- ``dynamics.intent_coherence_curve``: cosine(embed(task), embed(agent turn N)) for every
  agent turn (the task is ``SessionText.task``, else the first user turn); None for a turn
  that wrote no text (tool calls only).
- ``dynamics.cp_curve_compactions`` / ``dynamics.intent_coherence_compactions``: where the
  context was compacted, as indices into each curve (the marks on the curves).
- ``dynamics.embedding_repetition_rate``: tool calls whose (name + canonical arguments)
  embedding has cosine > ``near_duplicate`` (0.95) to an earlier call, over all calls.
- ``dynamics.plan_ged``: graph edit distance (networkx) between the plan graph of the first
  reasoning block that writes a plan and that of the last one (a plan graph: its steps in
  order, a node per step, an edge from each step to the next); two steps are the same node
  when their embeddings' cosine >= ``plan_node_match``. None with fewer than two planning
  blocks, or plans longer than ``plan_max_steps``.

Thresholds are tied to the embedder: models spread cosine differently (with e5, unrelated
texts still score 0.7-0.8), so calibrate them per model on labelled pairs.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec

from agentsignals._features.embedding import Embedder

__all__ = [
    "EMBEDDING_SIGNALS",
    "JUDGE_SIGNALS",
    "SemanticSettings",
    "SessionJudge",
    "SessionText",
    "calibrate_distance",
    "plan_ged",
    "plan_steps",
    "semantic_signals",
]

_log = logging.getLogger("agentsignals.features")


class SessionText(msgspec.Struct, frozen=True, kw_only=True):
    """What a product session said, in order: the model-based signals' input.

    ``compaction_turns``: indices of user turns after which a compaction happened (marks on
    ``cp_curve``). ``compaction_agent_turns``: the first agent turn that worked from each
    compaction's summary (marks on ``intent_coherence_curve``; ``user.compaction_events[]
    .turn_index``). ``tool_calls``: one string per call, the tool name and its canonical
    arguments (sorted-key JSON), in order. ``reasoning``: the agent's reasoning blocks in
    order (plans for ``plan_ged``). ``agent_turn_user`` (for each agent turn, the user turn it
    answers) and ``call_turns`` (for each tool call, its agent turn) let the judge read the
    session interleaved, as it happened; without them it reads each kind in its own block.
    """

    task: str | None
    user_turns: list[str]
    agent_turns: list[str]
    compaction_turns: list[int] = []
    tool_calls: list[str] = []
    reasoning: list[str] = []
    compaction_agent_turns: list[int] = []
    agent_turn_user: list[int] | None = None
    call_turns: list[int] | None = None


@dataclass(frozen=True)
class SemanticSettings:
    """Every threshold of the embedding signals, by name (the inventory's values). They hold
    for the embedder they were calibrated on: set them per model."""

    # dynamics.drift_onset_turn: the first user turn with CP above this (the inventory's
    # "moderate"; it calls > 0.45 severe, which the session labels use).
    cp_moderate: float = 0.2
    # dynamics.embedding_repetition_rate: a call is a near-duplicate of an earlier one above
    # this cosine.
    near_duplicate: float = 0.95
    # dynamics.plan_ged: two plan steps are the same node at or above this cosine.
    plan_node_match: float = 0.9
    # dynamics.plan_ged: plans with more steps than this are not compared (exact graph edit
    # distance is exponential in the node count); the signal is None then.
    plan_max_steps: int = 12
    # dynamics.plan_ged: seconds networkx may search; past it the value is None (an upper
    # bound is not the distance).
    plan_ged_timeout_s: float = 5.0
    # Characters of one text sent to the embedder (small embedding models read 512 tokens,
    # about 2,000 characters, and ignore the rest; a file written by a tool call can be MBs).
    max_text_chars: int = 4000


DEFAULT_SETTINGS: Final = SemanticSettings()

EMBEDDING_SIGNALS: Final = (
    "dynamics.cp_curve",
    "dynamics.max_cp",
    "dynamics.drift_onset_turn",
    "dynamics.cp_curve_compactions",
    "dynamics.intent_coherence_curve",
    "dynamics.intent_coherence_compactions",
    "dynamics.embedding_repetition_rate",
    "dynamics.plan_ged",
)
"""The keys the embedder fills (None without one)."""

JUDGE_SIGNALS: Final = (
    "anticipation.task_paraphrase_accuracy",
    "anticipation.plan_optimality",
    "anticipation.clarification_sought",
    "anticipation.prompt_underspecification",
    "anticipation.instruction_adherence",
    "anticipation.goal_alignment_at_close",
    "anticipation.conflation_turn",
    "dynamics.assumption_lock_turn",
    "dynamics.gd_inaction",
    "dynamics.gd_actions",
)
"""The keys a :class:`SessionJudge` fills (None without one)."""


class SessionJudge(Protocol):
    """Reads a session with an LLM judge and returns values for (some of) ``JUDGE_SIGNALS``;
    a value it could not judge is None. It never sees the session's outcome."""

    def judge_session(self, inputs: SessionText) -> dict[str, object]: ...


def semantic_signals(
    inputs: SessionText,
    embedder: Embedder | None,
    judge: SessionJudge | None = None,
    *,
    settings: SemanticSettings = DEFAULT_SETTINGS,
) -> dict[str, object]:
    """Every model-based session signal under its inventory name (see the module docstring).

    Without an embedder the embedding signals are None; without a judge the judge signals
    are None. A model that fails (server down, bad answer) is logged in one line and its
    signals are None: one session's failure never loses the others."""
    out: dict[str, object] = dict.fromkeys((*EMBEDDING_SIGNALS, *JUDGE_SIGNALS))
    if embedder is not None:
        try:
            out.update(_embedding_signals(inputs, embedder, settings))
        except Exception as exc:  # a model server is outside our control
            _log.warning("session embedding signals not computed: %s", _one_line(exc))
    if judge is not None:
        try:
            values = judge.judge_session(inputs)
        except Exception as exc:
            _log.warning("session judge signals not computed: %s", _one_line(exc))
        else:
            out.update({k: v for k, v in values.items() if k in JUDGE_SIGNALS})
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


# ------------------------------------------------------------------------------ embeddings


def _embedding_signals(
    inputs: SessionText, embedder: Embedder, settings: SemanticSettings
) -> dict[str, object]:
    """Embeds every distinct text of the session in one call (the embedder batches and
    caches), then computes the curves."""
    np = _np()
    task = inputs.task if inputs.task and inputs.task.strip() else None
    if task is None and inputs.user_turns and inputs.user_turns[0].strip():
        task = inputs.user_turns[0]
    first, last = _planning_blocks(inputs.reasoning)
    plans = [plan_steps(first), plan_steps(last)] if first is not None and last is not None else []
    texts: dict[str, None] = {}
    for text in (*inputs.user_turns, *inputs.agent_turns, *inputs.tool_calls):
        if text.strip():
            texts.setdefault(text)
    if task is not None:
        texts.setdefault(task)
    for plan in plans:
        for step in plan:
            texts.setdefault(step)
    order = list(texts)
    limit = settings.max_text_chars
    sent = [t[:limit] for t in order]
    vectors = _unit(np.asarray(embedder.embed(sent), dtype=float)) if order else None
    index = {text: i for i, text in enumerate(order)}

    def vec(text: str) -> Any:
        assert vectors is not None
        return vectors[index[text]]

    out: dict[str, object] = {}
    # Context pollution against the first user turn.
    users = inputs.user_turns
    if users and users[0].strip():
        anchor = vec(users[0])
        curve: list[float | None] = [
            _clean(1.0 - float(anchor @ vec(t))) if t.strip() else None for t in users
        ]
        curve[0] = 0.0
        known = [c for c in curve if c is not None]
        out["dynamics.cp_curve"] = curve
        out["dynamics.max_cp"] = max(known)
        out["dynamics.drift_onset_turn"] = next(
            (i for i, c in enumerate(curve) if c is not None and c > settings.cp_moderate), None
        )
        out["dynamics.cp_curve_compactions"] = sorted(
            {i for i in inputs.compaction_turns if 0 <= i < len(users)}
        )
    # Intent coherence: the task against every agent turn.
    if task is not None and inputs.agent_turns:
        target = vec(task)
        out["dynamics.intent_coherence_curve"] = [
            _clean(float(target @ vec(t))) if t.strip() else None for t in inputs.agent_turns
        ]
        out["dynamics.intent_coherence_compactions"] = sorted(
            {i for i in inputs.compaction_agent_turns if 0 <= i < len(inputs.agent_turns)}
        )
    # Near-duplicate tool calls.
    calls = [c for c in inputs.tool_calls if c.strip()]
    if calls and len(calls) == len(inputs.tool_calls):
        matrix = np.stack([vec(c) for c in calls])
        sims = matrix @ matrix.T
        earlier = np.tril(sims, k=-1)  # row i: cosine to the calls before i
        near = int((earlier > settings.near_duplicate).any(axis=1).sum())
        out["dynamics.embedding_repetition_rate"] = near / len(calls)
    # Plan graph edit distance.
    if plans and all(plans) and max(len(p) for p in plans) <= settings.plan_max_steps:
        try:
            out["dynamics.plan_ged"] = plan_ged(
                plans[0],
                plans[1],
                [vec(s) for s in plans[0]],
                [vec(s) for s in plans[1]],
                settings,
            )
        except ImportError as exc:  # networkx missing: the other signals still stand
            _log.warning("dynamics.plan_ged not computed: %s", exc)
    return out


def _np() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - numpy comes with the judge extra
        raise ImportError(
            "the embedding session signals need numpy: pip install 'agentsignals[semantic]'"
        ) from exc
    return numpy


def _unit(vectors: Any) -> Any:
    np = _np()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def _clean(value: float) -> float:
    """Rounded to 6 places (float noise of unit vectors: cosine(v, v) is 0.9999999...)."""
    return round(min(1.0, max(-1.0, value)) if math.isfinite(value) else value, 6)


def calibrate_distance(
    embedder: Embedder,
    same: Sequence[tuple[str, str]],
    different: Sequence[tuple[str, str]],
) -> float | None:
    """A distance threshold (1 - cosine) for this embedder from labelled pairs: the midpoint
    between the largest distance of a pair that means the same and the smallest distance of
    a pair that does not. None when the pairs overlap (no threshold separates them). Use it
    for ``cp_moderate`` (and 1 - it for ``near_duplicate``) when the inventory's values,
    stated for sentence-transformers, do not fit the model's spread of cosines."""
    np = _np()
    texts = [t for pair in (*same, *different) for t in pair]
    if not same or not different:
        return None
    vectors = _unit(np.asarray(embedder.embed(texts), dtype=float))
    distances = [1.0 - float(vectors[i] @ vectors[i + 1]) for i in range(0, len(texts), 2)]
    worst_same = max(distances[: len(same)])
    best_different = min(distances[len(same) :])
    if worst_same >= best_different:
        return None
    return round((worst_same + best_different) / 2.0, 6)


# ------------------------------------------------------------------------------- plan GED

# A plan step: a numbered or bulleted line, or "Step N:" (the reasoning classifier's pattern).
_STEP: Final = re.compile(r"^\s*(?:\d{1,2}[.)]\s+|[-*•]\s+|step\s+\d+\s*[:.)-]\s*)(\S.*)$", re.I)


def plan_steps(text: str | None) -> list[str]:
    """The steps of the plans a reasoning block writes (numbered or bulleted lines, "Step N:"),
    in order, stripped."""
    if not text:
        return []
    out = []
    for line in text.splitlines():
        m = _STEP.match(line)
        if m:
            out.append(m.group(1).strip())
    return out


def _planning_blocks(blocks: Sequence[str]) -> tuple[str | None, str | None]:
    """The first and the last reasoning block that write a plan; (None, None) when fewer
    than two do."""
    planning = [b for b in blocks if plan_steps(b)]
    if len(planning) < 2:
        return None, None
    return planning[0], planning[-1]


def plan_ged(
    first: Sequence[str],
    last: Sequence[str],
    first_vectors: Sequence[Any],
    last_vectors: Sequence[Any],
    settings: SemanticSettings = DEFAULT_SETTINGS,
) -> float | None:
    """Graph edit distance between two plans as path graphs (unit costs: a node or edge
    inserted, deleted or relabelled costs 1; two steps are the same label when their unit
    vectors' cosine >= plan_node_match). None when networkx timed out (the value found by
    then is only an upper bound)."""
    try:
        import networkx as nx
    except ImportError as exc:
        raise ImportError(
            "dynamics.plan_ged needs networkx: pip install 'agentsignals[semantic]'"
        ) from exc

    def graph(steps: Sequence[str], vectors: Sequence[Any]) -> Any:
        g = nx.DiGraph()
        for i, vector in enumerate(vectors):
            g.add_node(i, v=vector)
        g.add_edges_from((i, i + 1) for i in range(len(steps) - 1))
        return g

    g1, g2 = graph(first, first_vectors), graph(last, last_vectors)
    threshold = settings.plan_node_match

    def subst(a: dict[str, Any], b: dict[str, Any]) -> float:
        return 0.0 if float(a["v"] @ b["v"]) >= threshold else 1.0

    import time

    started = time.monotonic()
    value = nx.graph_edit_distance(
        g1, g2, node_subst_cost=subst, timeout=settings.plan_ged_timeout_s
    )
    if value is None or time.monotonic() - started >= settings.plan_ged_timeout_s:
        _log.info("dynamics.plan_ged: no exact distance within %ss", settings.plan_ged_timeout_s)
        return None
    return float(value)
