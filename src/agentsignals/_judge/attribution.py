"""The first wrong step of a failed attempt: where it went wrong, why, and of what kind.

"Everything after it is symptom." Four modes, after the failure-attribution literature
(Who&When, ICML 2025; docs/judge.md has the reading):

- ``candidates`` (default): the deterministic signals name candidate steps (the first edit
  outside the files of the final or gold patch, the first test failure still failing at the
  end, the edit after which passing tests failed, the first repeated call, the first tool error
  not retried, an ending with failing or unrun tests, the first edit, the opening plan) and the
  model picks among them in one call; when it picks none, or nothing fits the context,
  it falls back to ``all_at_once``.
- ``all_at_once``: the whole transcript (chunked when long; the first part that names a step
  wins) and one question.
- ``step_by_step``: step k is shown after the steps before it and the model says whether it is
  the decisive mistake; the first yes wins (up to one call per step).
- ``binary_search``: the model says which half of the remaining segment holds the first mistake
  (about log2(n) calls), then classifies the step it converged on.

The result: ``judge.first_wrong_step.{index, span_id, category, reason, relative_position,
phase, step_phases}`` (and ``agent`` for multi-agent logs), each a JudgeField. ``step_phases``
is the phase of every step of the transcript the index counts in ("" where a step has none):
the frame a report compares the labels' phases and positions with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from agentsignals._features.record import JudgeField
from agentsignals._judge.client import ContextOverflow
from agentsignals._judge.engine import Answer, JobResult, Judge, Usage, citations_for, vote
from agentsignals._judge.rubrics import SYSTEM_PROMPT, OutputField, Prompt, answer_instructions
from agentsignals._judge.transcript import Chunk, Step, Transcript, chunk_transcript, steps_window

if TYPE_CHECKING:
    from agentsignals._features.record import AttemptRecord

__all__ = [
    "CATEGORIES",
    "MODES",
    "RUBRIC_ID",
    "VERSION",
    "Candidate",
    "attribute",
    "find_candidates",
]

RUBRIC_ID: Final = "first_wrong_step"
VERSION: Final = "1"
MODES: Final = ("candidates", "all_at_once", "step_by_step", "binary_search")
CATEGORIES: Final = {
    "wrong_localization": "looked for or settled on the wrong file, function or cause",
    "misread_error": "misread an error message, stack trace or test output",
    "wrong_edit": "made an edit that is wrong or incomplete for the cause it had found",
    "skipped_validation": "did not run tests or checks where they would have shown the problem",
    "premature_submit": "submitted or declared success too early",
    "tool_misuse": "used a tool wrongly (bad arguments, wrong tool, broken command)",
    "wrong_plan": "chose a plan or approach that could not solve the task",
    "repeated_action": "repeated an action without new information instead of changing course",
    "ignored_error": "went on as if a tool error or failing check had not happened",
    "wrong_fact": "stated or used a fact, value or result that is wrong",
    "other": "none of the above",
}
_MAX_ENUM_STEPS: Final = 400

_INTRO: Final = (
    "This run did not achieve its task. Find its first wrong step: the earliest step that "
    "was a mistake and that the run never recovered from. The steps before it are fine; the "
    "steps after it build on it and are symptoms, not causes."
)


def _category_lines() -> str:
    return "\n".join(f"- {name}: {text}" for name, text in CATEGORIES.items())


@dataclass(frozen=True)
class Candidate:
    """A step the deterministic signals point at, and why."""

    step: int
    why: str


def _next_turn(transcript: Transcript, after: Step) -> Step | None:
    for step in transcript.steps[after.index + 1 :]:
        if step.kind == "turn":
            return step
    return None


def _files(step: Step) -> set[str]:
    return set(step.changed_files or step.files or [])


def find_candidates(
    transcript: Transcript, record: AttemptRecord | None = None, *, limit: int = 8
) -> list[Candidate]:
    """Candidate first wrong steps from what the deterministic signals know, in step order
    (at most `limit`, the earliest kept)."""
    found: dict[int, str] = {}

    def add(step: Step | None, why: str) -> None:
        if step is not None and step.index not in found:
            found[step.index] = why

    tools = [s for s in transcript.steps if s.kind == "tool"]
    edits = [s for s in tools if s.changed_files or s.category == "edit"]
    behavior = record.behavior if record is not None else None
    final = set(behavior.touched_files or []) if behavior is not None else set()
    gold = set(behavior.gold_files or []) if behavior is not None else set()
    if gold:
        for step in edits:
            if _files(step) and not _files(step) & gold:
                add(step, "first edit outside the files of the gold patch")
                break
    if final:
        for step in edits:
            if _files(step) - final:
                add(step, "first edit to a file the final patch does not touch")
                break
    runs = [s for s in tools if s.tests_failed is not None]
    if runs:
        still_failing = set(runs[-1].tests_failed or [])
        for run in runs:
            if set(run.tests_failed or []) & still_failing:
                add(
                    _next_turn(transcript, run) or run,
                    "first test failure still failing at the end",
                )
                break
        passed: set[str] = set()
        for run in runs:
            broken = set(run.tests_failed or []) & passed
            if broken:
                before = [e for e in edits if e.index < run.index]
                add(before[-1] if before else run, "the edit after which passing tests failed")
                break
            passed |= set(run.tests_passed or [])
    seen: set[str] = set()
    for step in tools:
        key = step.fingerprint or f"{step.tool_name}\0{step.body.split(chr(10), 1)[0]}"
        if key in seen:
            add(step, "first repeated call")
            break
        seen.add(key)
    for i, step in enumerate(tools):
        if step.failed and step.category != "test":
            retried = any(t.tool_name == step.tool_name for t in tools[i + 1 : i + 3])
            if not retried:
                add(_next_turn(transcript, step) or step, "first tool error not retried")
                break
    if transcript.steps:
        last_edit = edits[-1].index if edits else None
        tested_after = last_edit is not None and any(r.index > last_edit for r in runs)
        ends_failing = bool(runs) and bool(runs[-1].tests_failed)
        if ends_failing or (last_edit is not None and not tested_after):
            turns = [s for s in transcript.steps if s.kind == "turn"]
            add(turns[-1] if turns else transcript.steps[-1], "ends with failing or unrun tests")
    if edits:
        add(edits[0], "first edit")
    turns = [s for s in transcript.steps if s.kind in ("turn", "message")]
    if turns and found:  # only beside real signals: alone it would just bias to the start
        add(turns[0], "the opening plan")
    ordered = sorted(found.items())[:limit]
    return [Candidate(step, why) for step, why in ordered]


# ---------------------------------------------------------------------------------- prompts


def _step_field(labels: list[str]) -> OutputField:
    if len(labels) <= _MAX_ENUM_STEPS:
        return OutputField(
            name="step", type="enum", values=tuple(labels), description="the first wrong step"
        )
    return OutputField(name="step", type="string", max_length=12, description="e.g. S12")


def _fields(
    labels: list[str], actors: list[str], reason_chars: int = 300
) -> tuple[OutputField, ...]:
    out = [_step_field(labels)]
    if len(actors) > 1:
        out.append(
            OutputField(
                name="agent",
                type="enum",
                values=tuple(actors),
                description="the agent that took that step",
            )
        )
    out += [
        OutputField(name="category", type="enum", values=tuple(CATEGORIES)),
        OutputField(
            name="reason",
            type="string",
            max_length=reason_chars,
            description="why that step was wrong, in one or two sentences",
        ),
    ]
    return tuple(out)


def _prompt(
    body: str, fields: tuple[OutputField, ...], name: str, explanation_chars: int = 600
) -> Prompt:
    properties: dict[str, Any] = {"explanation": {"type": "string", "maxLength": explanation_chars}}
    for f in fields:
        properties[f.name] = f.json_schema()
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    text = "\n".join([body, "", "# Answer", answer_instructions(fields, explanation_chars)])
    return Prompt(
        messages=({"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}),
        schema=schema,
        schema_name=name,
        fields=fields,
    )


def _task_block(ground_truth: str | None) -> list[str]:
    out = ["# First wrong step", _INTRO, "", "## Categories", _category_lines(), ""]
    if ground_truth is not None:
        out += ["## The correct answer to the task (for reference)", ground_truth, ""]
    return out


# ------------------------------------------------------------------------------------ modes


@dataclass
class _Pick:
    step: int | None
    category: str | None = None
    reason: str | None = None
    explanation: str = ""
    agent: str | None = None
    error: str | None = None
    samples: int = 0


class _Attributor:
    def __init__(
        self,
        judge: Judge,
        transcript: Transcript,
        usage: Usage,
        ground_truth: str | None,
    ) -> None:
        self.judge = judge
        self.t = transcript
        self.usage = usage
        self.ground_truth = ground_truth
        self.key = f"{RUBRIC_ID}@{VERSION}"
        self.chars = judge.settings.explanation_chars or 600
        self.reason_chars = max(20, self.chars // 2)

    def prompt(self, body: str, fields: tuple[OutputField, ...]) -> Prompt:
        return _prompt(body, fields, RUBRIC_ID, self.chars)

    def fields(self, labels: list[str]) -> tuple[OutputField, ...]:
        return _fields(labels, self.t.actors, self.reason_chars)

    def budget(self, fields: tuple[OutputField, ...]) -> int:
        empty = self.prompt("\n".join(_task_block(self.ground_truth)), fields)
        return self.judge.transcript_budget(empty) - 200

    def _ask(self, prompt: Prompt) -> Answer:
        """Majority over the samples (one field set); the first sample's explanation."""
        answers: list[Answer] = []
        errors: list[str] = []
        for i in range(max(1, self.judge.settings.samples)):
            try:
                answer = self.judge.ask(prompt, self.key, i, self.usage)
            except ContextOverflow as exc:
                return Answer(None, error=f"the prompt did not fit the model's context ({exc})")
            if answer.values is None:
                errors.append(answer.error or "no answer")
            else:
                answers.append(answer)
        if not answers:
            return Answer(None, error="; ".join(sorted(set(errors))))
        verdict = vote(list(prompt.fields), answers, errors, Chunk(0, 1, 0, 0, ""))
        return Answer(verdict.values, explanation=verdict.explanation)

    def _pick_from(self, answer: Answer) -> _Pick:
        if answer.values is None:
            return _Pick(None, error=answer.error)
        label = str(answer.values.get("step", "none"))
        step = _label_index(label, len(self.t.steps))
        if step is None:
            return _Pick(None, explanation=answer.explanation, error="the judge named no step")
        return _Pick(
            step,
            category=answer.values.get("category"),
            reason=answer.values.get("reason"),
            explanation=answer.explanation,
            agent=answer.values.get("agent"),
            samples=max(1, self.judge.settings.samples),
        )

    # -- all at once ---------------------------------------------------------------------
    def all_at_once(self) -> _Pick:
        probe = self.fields([s.label for s in self.t.steps])
        chunks = chunk_transcript(
            self.t, self.budget(probe), chars_per_token=self.judge.settings.chars_per_token
        )
        errors: list[str] = []
        for chunk in chunks:
            labels = chunk.step_labels
            if len(chunks) > 1:
                labels = [*labels, "none"]
            fields = self.fields(labels)
            body = _task_block(self.ground_truth)
            if len(chunks) > 1:
                body.append(
                    f"The transcript is long: this is part {chunk.index + 1} of {chunk.total}. "
                    'Name the first wrong step if it is in this part, or answer step "none" if '
                    "this part has no wrong step."
                )
            body += ["# Transcript", chunk.text]
            pick = self._pick_from(self._ask(self.prompt("\n".join(body), fields)))
            if pick.step is not None:
                return pick
            if pick.error and pick.error != "the judge named no step":
                errors.append(f"part {chunk.index + 1}: {pick.error}")
        if errors:
            return _Pick(None, error="; ".join(errors))
        return _Pick(None, error="the judge named no step")

    # -- candidates ----------------------------------------------------------------------
    def candidates(self, record: AttemptRecord | None) -> tuple[_Pick, list[Candidate]]:
        found = find_candidates(self.t, record)
        if not found:
            return self.all_at_once(), found
        labels = [f"S{c.step}" for c in found] + ["none"]
        fields = self.fields(labels)
        whole = self.t.render()
        budget = self.budget(fields)
        hints = ["## Candidate steps (what the run's signals point at)"]
        hints += [f"- S{c.step}: {c.why}" for c in found]
        if len(whole) / self.judge.settings.chars_per_token <= budget:
            body = _task_block(self.ground_truth)
            body += [
                *hints,
                "",
                'Pick the candidate that is the first wrong step, or answer step "none" if none '
                "of them is.",
                "",
                "# Transcript",
                whole,
            ]
            pick = self._pick_from(self._ask(self.prompt("\n".join(body), fields)))
            if pick.step is not None or (pick.error and pick.error != "the judge named no step"):
                return pick, found
            return self.all_at_once(), found
        # Too long for one call: judge each candidate on the steps up to it, earliest first.
        for cand in found:
            pick = self._yes_no(cand.step, hint=cand.why)
            if pick.step is not None:
                return pick, found
        return self.all_at_once(), found

    # -- step by step --------------------------------------------------------------------
    def _yes_no(self, k: int, hint: str | None = None) -> _Pick:
        fields: tuple[OutputField, ...] = (
            OutputField(
                name="wrong",
                type="boolean",
                description=f"true if S{k} is the first wrong step",
            ),
            OutputField(name="category", type="enum", values=tuple(CATEGORIES)),
            OutputField(name="reason", type="string", max_length=self.reason_chars),
        )
        window = steps_window(
            self.t, k, self.budget(fields), chars_per_token=self.judge.settings.chars_per_token
        )
        body = _task_block(self.ground_truth)
        body.append(
            f"Step S{k} is the last step shown. Judging only by the steps so far: is S{k} the "
            "first wrong step (a mistake the run never recovered from)?"
        )
        if hint:
            body.append(f"(The run's signals point at S{k}: {hint}.)")
        body += ["", "# Transcript", window.text]
        answer = self._ask(self.prompt("\n".join(body), fields))
        if answer.values is None:
            return _Pick(None, error=answer.error)
        if answer.values.get("wrong") is True:
            return _Pick(
                k,
                category=answer.values.get("category"),
                reason=answer.values.get("reason"),
                explanation=answer.explanation,
                samples=max(1, self.judge.settings.samples),
            )
        return _Pick(None, error="no")

    def step_by_step(self) -> _Pick:
        errors: list[str] = []
        for step in self.t.steps:
            pick = self._yes_no(step.index)
            if pick.step is not None:
                return pick
            if pick.error and pick.error != "no":
                errors.append(f"S{step.index}: {pick.error}")
        if errors and len(errors) == len(self.t.steps):
            return _Pick(None, error="; ".join(errors[:3]))
        return _Pick(None, error="the judge named no step")

    # -- binary search -------------------------------------------------------------------
    def binary_search(self) -> _Pick:
        lo, hi = 0, len(self.t.steps) - 1
        if hi < 0:
            return _Pick(None, error="the transcript has no steps")
        half_field = (OutputField(name="half", type="enum", values=("upper", "lower")),)
        while lo < hi:
            mid = (lo + hi) // 2
            window = steps_window(
                self.t,
                hi,
                self.budget(half_field),
                chars_per_token=self.judge.settings.chars_per_token,
            )
            body = _task_block(self.ground_truth)
            body.append(
                f"The first wrong step lies between S{lo} and S{hi}. Is it in the upper half "
                f"(S{lo}-S{mid}) or the lower half (S{mid + 1}-S{hi})?"
            )
            body += ["", "# Transcript", window.text]
            answer = self._ask(self.prompt("\n".join(body), half_field))
            if answer.values is None:
                return _Pick(None, error=answer.error)
            if answer.values["half"] == "upper":
                hi = mid
            else:
                lo = mid + 1
        fields: tuple[OutputField, ...] = (
            OutputField(name="category", type="enum", values=tuple(CATEGORIES)),
            OutputField(name="reason", type="string", max_length=self.reason_chars),
        )
        window = steps_window(
            self.t, lo, self.budget(fields), chars_per_token=self.judge.settings.chars_per_token
        )
        body = _task_block(self.ground_truth)
        body.append(
            f"The first wrong step is S{lo}, the last step shown. Say why, and classify it."
        )
        body += ["", "# Transcript", window.text]
        answer = self._ask(self.prompt("\n".join(body), fields))
        if answer.values is None:
            return _Pick(lo, error=answer.error, samples=0)
        return _Pick(
            lo,
            category=answer.values.get("category"),
            reason=answer.values.get("reason"),
            explanation=answer.explanation,
            samples=max(1, self.judge.settings.samples),
        )


def _label_index(label: str, n: int) -> int | None:
    text = label.strip().upper().lstrip("[").rstrip("]")
    if text.startswith("S"):
        text = text[1:]
    try:
        index = int(text)
    except ValueError:
        return None
    return index if 0 <= index < n else None


def attribute(
    judge: Judge,
    transcript: Transcript,
    *,
    mode: str = "candidates",
    record: AttemptRecord | None = None,
    ground_truth: str | None = None,
) -> JobResult:
    """The first wrong step of one (failed) attempt."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    usage = Usage()
    worker = _Attributor(judge, transcript, usage, ground_truth)
    candidates: list[Candidate] = []
    if not transcript.has_content or not transcript.steps:
        pick = _Pick(
            None,
            error="no content was recorded on the spans"
            if transcript.steps
            else "the transcript has no steps",
        )
    elif mode == "candidates":
        pick, candidates = worker.candidates(record)
    elif mode == "all_at_once":
        pick = worker.all_at_once()
    elif mode == "step_by_step":
        pick = worker.step_by_step()
    else:
        pick = worker.binary_search()
    return _result(judge, transcript, pick, mode, candidates, usage)


def _result(
    judge: Judge,
    transcript: Transcript,
    pick: _Pick,
    mode: str,
    candidates: list[Candidate],
    usage: Usage,
) -> JobResult:
    s = judge.settings
    base: dict[str, Any] = dict(
        model=s.model,
        rubric_version=VERSION,
        temperature=s.temperature,
        seed=s.seed,
        chunks=1,
        chunks_judged=1 if pick.step is not None else 0,
        method=mode,
    )
    names = ["index", "span_id", "category", "reason", "relative_position", "phase", "step_phases"]
    if len(transcript.actors) > 1:
        names.append("agent")
    if pick.step is None:
        reason = pick.error or "the judge named no step"
        fields = {
            n: JudgeField(value=None, status="could_not_judge", reason=reason, **base)
            for n in names
        }
        return JobResult(transcript.attempt_id, RUBRIC_ID, VERSION, fields, usage)
    step = transcript.steps[pick.step]
    n = len(transcript.steps)
    explanation = (pick.explanation or pick.reason or "").strip()
    cites = citations_for(explanation, transcript)
    if step.span_id and step.span_id not in cites:
        cites.insert(0, step.span_id)
    common = dict(
        explanation=explanation or None,
        citations=cites,
        samples=pick.samples,
        **base,
    )
    agent = pick.agent if pick.agent else step.actor
    values: dict[str, Any] = {
        "index": step.index,
        "span_id": step.span_id,
        "category": pick.category,
        "reason": pick.reason,
        "relative_position": round(step.index / (n - 1), 4) if n > 1 else 0.0,
        "phase": step.phase,
        "step_phases": [s.phase or "" for s in transcript.steps],
        "agent": agent,
    }
    fields = {}
    for name in names:
        value = values[name]
        if value is None and name in ("category", "reason"):
            fields[name] = JudgeField(
                value=None,
                status="could_not_judge",
                reason=pick.error or "the judge did not say",
                **common,
            )
        else:
            fields[name] = JudgeField(value=value, **common)
    if candidates:
        cand = [c.step for c in candidates]
        fields["index"].explanation = (
            (fields["index"].explanation or "")
            + f" (candidates: {', '.join(f'S{c}' for c in cand)})"
        ).strip()
    return JobResult(
        transcript.attempt_id,
        RUBRIC_ID,
        VERSION,
        fields,
        usage,
        step_span_id=step.span_id,
        step_index=step.index,
    )
