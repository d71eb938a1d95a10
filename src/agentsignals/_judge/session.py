"""The model clients of the product-session signals (`agentsignals._features.session_semantic`):
an :class:`HttpEmbedder` over the judge's OpenAI-compatible client, and :class:`RubricSessionJudge`,
which reads a session with the built-in ``session_*`` rubrics through the judge's engine (its
chunking, schema-enforced answers, votes, SQLite cache and could_not_judge).

The judge reads the session's text only (user turns, agent turns, tool calls): never its
outcome. A field the judge could not decide is None in the result, never a default.

Signals and the rubric fields they come from:

- anticipation.task_paraphrase_accuracy, plan_optimality, clarification_sought:
  ``session_task_reading``.
- anticipation.prompt_underspecification: ``session_prompt`` (does the first request name a
  code location / state an expected outcome) combined with its length, the inventory's three
  parts: mean(max(0, 1 - words / prompt_words_specific), not location, not outcome).
- anticipation.instruction_adherence, goal_alignment_at_close: ``session_adherence``.
- anticipation.conflation_turn, dynamics.assumption_lock_turn: ``session_scope`` (the step the
  judge names, as the agent-turn index of that step).
- dynamics.gd_inaction (initial plan items never acted on / plan items) and dynamics.gd_actions
  (tool calls outside the task's scope / tool calls): ``session_goal_drift``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

from agentsignals._features.session_semantic import JUDGE_SIGNALS, SessionText
from agentsignals._judge.client import ModelClient
from agentsignals._judge.engine import JobResult, Judge
from agentsignals._judge.rubrics import Rubric, builtin_rubric
from agentsignals._judge.transcript import Step, Transcript, clip, from_spans, group_by_attempt
from agentsignals._spans.model import Span

__all__ = [
    "SESSION_RUBRICS",
    "HttpEmbedder",
    "RubricSessionJudge",
    "SessionJudgeSettings",
    "session_text_from_transcript",
    "session_texts_from_spans",
    "session_transcript",
]

SESSION_RUBRICS: Final = (
    "session_task_reading",
    "session_prompt",
    "session_adherence",
    "session_scope",
    "session_goal_drift",
)


class HttpEmbedder:
    """An :class:`~agentsignals._features.embedding.Embedder` over any OpenAI-compatible
    ``/v1/embeddings`` endpoint (the judge's client: retries, Retry-After). Wrap it in
    ``CachedEmbedder`` (with the judge's ``JudgeCache`` as the store) to batch and cache."""

    def __init__(self, client: ModelClient, model: str, *, batch: int = 32) -> None:
        self.client = client
        self._model = model
        self.batch = batch

    @property
    def model(self) -> str:
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.client.embed(self._model, list(texts), batch=self.batch)


@dataclass(frozen=True)
class SessionJudgeSettings:
    """Named settings of the judge-based session signals."""

    # anticipation.prompt_underspecification: a first request of this many words or more
    # scores 0 on the length part (shorter ones linearly more).
    prompt_words_specific: int = 60
    # Characters of one user or agent turn the judge reads (the rest is clipped).
    turn_chars: int = 2000
    # Characters of one tool call the judge reads.
    call_chars: int = 400


_STEP_LABEL: Final = re.compile(r"S(\d+)")


class RubricSessionJudge:
    """A :class:`~agentsignals._features.session_semantic.SessionJudge` over the judge's
    engine: each ``session_*`` rubric is one judge job on the session's transcript (answers
    cached by the engine's cache, so a re-run asks nothing)."""

    def __init__(
        self,
        judge: Judge,
        *,
        settings: SessionJudgeSettings | None = None,
        rubrics: Sequence[str] = SESSION_RUBRICS,
    ) -> None:
        self.judge = judge
        self.settings = settings or SessionJudgeSettings()
        self.rubrics: dict[str, Rubric] = {r: builtin_rubric(r) for r in rubrics}
        # The last session's results (explanations, citations, usage); one session at a time.
        self.results: list[JobResult] = []

    def judge_session(self, inputs: SessionText) -> dict[str, object]:
        transcript, turn_of_step, call_steps = session_transcript(inputs, self.settings)
        out: dict[str, object] = dict.fromkeys(JUDGE_SIGNALS)
        first = _first_request(inputs)
        on: dict[str, Transcript] = {r: transcript for r in self.rubrics}
        if "session_prompt" in on:
            if first is None:
                del on["session_prompt"]
            else:
                on["session_prompt"] = _prompt_transcript(first, transcript.attempt_id)
        # One job per rubric, `concurrency` at a time (the engine's pool).
        jobs = [partial(self.judge.judge_rubric, on[r], self.rubrics[r]) for r in on]
        self.results = self.judge.run(jobs) if jobs else []
        answers = {
            result.rubric: {
                n: f.value if f.status == "ok" else None for n, f in result.fields.items()
            }
            for result in self.results
        }

        reading = answers.get("session_task_reading")
        if reading is not None:
            accuracy = _float(reading.get("paraphrase_accuracy"))
            out["anticipation.task_paraphrase_accuracy"] = accuracy
            out["anticipation.plan_optimality"] = reading.get("plan_optimality")
            out["anticipation.clarification_sought"] = reading.get("clarification_sought")
        if first is not None:
            prompt = answers.get("session_prompt")
            if prompt is not None:
                out["anticipation.prompt_underspecification"] = self._underspecification(
                    first, prompt.get("names_code_location"), prompt.get("states_expected_outcome")
                )
        adherence = answers.get("session_adherence")
        if adherence is not None:
            out["anticipation.instruction_adherence"] = adherence.get("instruction_adherence")
            out["anticipation.goal_alignment_at_close"] = _float(
                adherence.get("goal_alignment_at_close")
            )
        scope = answers.get("session_scope")
        if scope is not None:
            out["anticipation.conflation_turn"] = _turn_of(
                scope.get("conflation_steps"), turn_of_step
            )
            out["dynamics.assumption_lock_turn"] = _turn_of(
                scope.get("assumption_lock_steps"), turn_of_step
            )
        drift = answers.get("session_goal_drift")
        if drift is not None:
            items, never = drift.get("plan_items"), drift.get("plan_items_never_acted_on")
            # An answer with more items never acted on than items is inconsistent: None.
            if isinstance(items, int) and isinstance(never, int) and 0 <= never <= items > 0:
                out["dynamics.gd_inaction"] = never / items
            steps = drift.get("out_of_scope_steps")
            if isinstance(steps, list) and call_steps:
                named = {_label_index(s) for s in steps} & call_steps
                out["dynamics.gd_actions"] = len(named) / len(call_steps)
        return out

    def _underspecification(self, prompt: str, location: object, outcome: object) -> float | None:
        if not isinstance(location, bool) or not isinstance(outcome, bool):
            return None
        words = len(prompt.split())
        length = max(0.0, 1.0 - words / max(1, self.settings.prompt_words_specific))
        return round((length + (not location) + (not outcome)) / 3.0, 6)


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _first_request(inputs: SessionText) -> str | None:
    for text in (inputs.task, *(inputs.user_turns[:1])):
        if text and text.strip():
            return text
    return None


def _label_index(label: object) -> int | None:
    m = _STEP_LABEL.search(str(label))
    return int(m.group(1)) if m else None


def _turn_of(labels: object, turn_of_step: dict[int, int]) -> int | None:
    """The agent turn of the earliest step the judge named (an agent turn, or a tool call
    placed in one); None when it named none, or only steps of no agent turn."""
    if not isinstance(labels, list):
        return None
    turns = [
        turn_of_step[i]
        for i in (_label_index(x) for x in labels)
        if i is not None and i in turn_of_step
    ]
    return min(turns) if turns else None


def _attempt_id(inputs: SessionText) -> str:
    text = "\0".join([inputs.task or "", *inputs.user_turns[:1]])
    return "session-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _step(index: int, kind: str, title: str, body: str, limit: int) -> Step:
    body = clip(body, limit)
    first = body.strip().splitlines()[0] if body.strip() else ""
    return Step(
        index=index,
        span_id=None,
        kind=kind,
        title=title,
        body=body,
        digest=f"[S{index}] {title} {clip(first, 120)}".rstrip(),
    )


def session_transcript(
    inputs: SessionText, settings: SessionJudgeSettings | None = None
) -> tuple[Transcript, dict[int, int], set[int]]:
    """The session as the judge reads it: (transcript, the agent turn of each agent step and
    of each tool call placed in a turn, the indices of tool-call steps). Interleaved in
    session order when ``agent_turn_user`` and ``call_turns`` say which user turn each agent
    turn answers and which turn made each call; otherwise user turns, then agent turns with
    their calls, then unplaced calls."""
    s = settings or SessionJudgeSettings()
    steps: list[Step] = []
    agent_of: dict[int, int] = {}
    calls: set[int] = set()

    def add_user(i: int) -> None:
        steps.append(_step(len(steps), "message", f"user turn {i} says:", inputs.user_turns[i],
                           s.turn_chars))  # fmt: skip

    def add_agent(j: int) -> None:
        agent_of[len(steps)] = j
        text = inputs.agent_turns[j] or "(no text: tool calls only)"
        steps.append(_step(len(steps), "turn", f"agent turn {j} says:", text, s.turn_chars))
        for k in calls_of.get(j, []):
            calls.add(len(steps))
            agent_of[len(steps)] = j
            steps.append(_step(len(steps), "tool", f"agent turn {j} tool call:",
                               inputs.tool_calls[k], s.call_chars))  # fmt: skip

    calls_of: dict[int, list[int]] = {}
    placed_calls = inputs.call_turns is not None and len(inputs.call_turns) == len(
        inputs.tool_calls
    )
    if placed_calls:
        assert inputs.call_turns is not None
        for k, j in enumerate(inputs.call_turns):
            calls_of.setdefault(j, []).append(k)
    order = inputs.agent_turn_user
    if order is not None and len(order) == len(inputs.agent_turns):
        next_user = 0
        for j, u in enumerate(order):
            while next_user <= min(u, len(inputs.user_turns) - 1):
                add_user(next_user)
                next_user += 1
            add_agent(j)
        while next_user < len(inputs.user_turns):
            add_user(next_user)
            next_user += 1
    else:
        for i in range(len(inputs.user_turns)):
            add_user(i)
        for j in range(len(inputs.agent_turns)):
            add_agent(j)
    if not placed_calls:
        for call in inputs.tool_calls:
            calls.add(len(steps))
            steps.append(_step(len(steps), "tool", "tool call:", call, s.call_chars))
    transcript = Transcript(
        attempt_id=_attempt_id(inputs),
        steps=steps,
        task=_first_request(inputs),
        has_content=bool(steps),
        source="session_text",
    )
    return transcript, agent_of, calls


def _prompt_transcript(prompt: str, attempt_id: str) -> Transcript:
    """Only the first request (the prompt rubric must not see what the agent did)."""
    step = _step(0, "message", "user turn 0 says:", prompt, 4000)
    return Transcript(attempt_id=attempt_id, steps=[step], task=prompt, source="session_text")


# Claude Code writes these into the user's role; they are not messages the user typed (the
# session record counts interrupts and commands on their own).
_NOT_TYPED: Final = re.compile(
    r"^\s*(?:\[Request interrupted by user[^\]]*\]|<command-name>|<command-message>"
    r"|<local-command-std(?:out|err)>|<system-reminder>)"
)


def _canonical_arguments(arguments: str | None) -> str:
    if not arguments:
        return ""
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
    except ValueError:
        return arguments


def session_text_from_transcript(transcript: Transcript) -> SessionText:
    """A session's text from the judge's transcript of its spans (content captured live, or
    imported with ``--content``): the task and every later user message (text the user typed;
    Claude Code's interrupt and command markers are left out), each turn's visible text and
    reasoning, and each tool call as its name and sorted-key JSON arguments, with the order
    (which user turn each agent turn answers, which turn made each call). Compactions are not
    in a transcript: pass them from the session record (``msgspec.structs.replace``)."""
    users: list[str] = []
    if transcript.task and transcript.task.strip():
        users.append(transcript.task)
    agents: list[str] = []
    reasoning: list[str] = []
    agent_turn_user: list[int] = []
    calls: list[str] = []
    call_turns: list[int] = []
    for step in transcript.steps:
        if step.kind == "turn":
            for text in step.user_texts:
                if text.strip() and not _NOT_TYPED.match(text) and text != transcript.task:
                    users.append(text)
            agents.append("\n".join(step.texts))
            agent_turn_user.append(max(0, len(users) - 1))
            if step.reasoning:
                reasoning.append("\n".join(step.reasoning))
        elif step.kind == "tool":
            calls.append(f"{step.tool_name or step.title} {_canonical_arguments(step.arguments)}")
            call_turns.append(max(0, len(agents) - 1))
    return SessionText(
        task=transcript.task,
        user_turns=users,
        agent_turns=agents,
        tool_calls=calls,
        reasoning=reasoning,
        agent_turn_user=agent_turn_user,
        call_turns=call_turns,
    )


def session_texts_from_spans(spans: Sequence[Span]) -> dict[str, SessionText]:
    """Every attempt's :class:`SessionText` (by attempt id) from typed spans with content."""
    return {
        attempt_id: session_text_from_transcript(from_spans(group))
        for attempt_id, group in group_by_attempt(spans).items()
    }
