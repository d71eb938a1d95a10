"""Running rubrics over transcripts: chunks, samples, votes, reducers, cache and accounting.

For each (attempt, rubric): the transcript is split to fit the model's context
(:func:`~agentsignals._judge.transcript.chunk_transcript`), each chunk is asked N times (N
samples, seeds ``seed + i``), the samples of a chunk are combined by majority vote per field, and
the chunks by the field's reducer. A value is reported only when the chunks that could not be
judged could not have changed it; otherwise the field is ``could_not_judge`` with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Final

from agentsignals import semconv as sc
from agentsignals._features.record import JudgeField
from agentsignals._judge.cache import JudgeCache, call_key
from agentsignals._judge.client import ClientConfig, ContextOverflow, ModelClient, ModelError
from agentsignals._judge.parse import ParseError, parse_answer
from agentsignals._judge.rubrics import OutputField, Prompt, Rubric, rubric_prompt
from agentsignals._judge.transcript import (
    DEFAULT_MAX_PART_CHARS,
    Chunk,
    Transcript,
    chunk_transcript,
    estimate_tokens,
)

__all__ = [
    "DEFAULT_CONTEXT_TOKENS",
    "Answer",
    "InjectedFault",
    "JobResult",
    "Judge",
    "JudgeInterrupted",
    "JudgeSettings",
    "Outcome",
    "Usage",
    "cited_steps",
]

DEFAULT_CONTEXT_TOKENS: Final = 32_000
"""The context assumed when neither the settings nor the server say."""

_CITATION: Final = re.compile(r"\[?\bS(\d{1,5})(?:\s*(?:-|–|to)\s*S?(\d{1,5}))?\b\]?")
_MAX_RANGE: Final = 30


@dataclass(frozen=True)
class JudgeSettings:
    """How to judge: the model, sampling, context and concurrency."""

    model: str
    client: ClientConfig
    temperature: float = 0.0
    samples: int = 1
    seed: int | None = 0
    max_tokens: int = 400
    context_tokens: int | None = None  # None: ask the server, else DEFAULT_CONTEXT_TOKENS
    concurrency: int = 4
    chars_per_token: float = 3.0
    max_part_chars: int = DEFAULT_MAX_PART_CHARS
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None
    reask: bool = True
    # Overrides the rubrics' explanation length (and the first wrong step's 600 characters):
    # shorter answers are faster on small local models.
    explanation_chars: int | None = None


@dataclass
class Usage:
    """The judge's own consumption: model calls made, answers read from the cache, tokens and
    cost (live calls; the cached totals are what a run without the cache would have used)."""

    model_calls: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cached_output_tokens: int = 0
    cost_usd: float = 0.0
    reasks: int = 0
    unparseable: int = 0
    model_errors: int = 0
    rechunked: int = 0

    def add(self, other: Usage) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Outcome:
    """What the verifier said about an attempt: used to select attempts (failed ones for the
    first wrong step), shown to the model only by a rubric with ``sees_outcome: true``."""

    resolved: bool | None = None
    reward: float | None = None
    label: str | None = None

    def text(self) -> str:
        parts = []
        if self.resolved is not None:
            parts.append("resolved" if self.resolved else "not resolved")
        if self.reward is not None:
            parts.append(f"reward {self.reward:g}")
        if self.label:
            parts.append(f"label {self.label}")
        return ", ".join(parts) or "unknown"


_TOOL_FAULTS: Final = frozenset(
    {
        sc.FaultKind.TOOL_ERROR.value,
        sc.FaultKind.TOOL_TIMEOUT.value,
        sc.FaultKind.STALE_OUTPUT.value,
    }
)


@dataclass(frozen=True)
class InjectedFault:
    """A fault injected into an attempt (``agentsignals.faults``), read from its
    ``agent_signals.fault.injected`` events: shown to the model only by a rubric with
    ``sees_fault: true`` (whose question it is), and selects attempts for ``applies_to:
    faulted``. Never the outcome."""

    kind: str
    description: str
    # Index in behavior.tool_sequence of the first call that met the fault.
    step: int | None = None
    trigger: str | None = None
    files: tuple[str, ...] = ()
    count: int = 1

    def text(self, transcript: Transcript) -> str:
        """What the model reads: the fault, and where it sits among the transcript's steps."""
        where = "Where it happened in the run is not recorded."
        if self.step is not None:
            step = self.step
            calls = [s for s in transcript.steps if s.tool_index is not None]
            if self.kind in _TOOL_FAULTS:
                hit = next((s for s in calls if s.tool_index == step), None)
                if hit is not None:
                    where = f"It hit the tool call at [{hit.label}]."
            else:
                before = [s for s in calls if s.tool_index is not None and s.tool_index < step]
                where = (
                    f"It took effect right after [{before[-1].label}]."
                    if before
                    else "It took effect before the agent's first tool call."
                )
        lines = [f"{self.kind}: {self.description}", where]
        if self.files:
            lines.append("Affected files: " + ", ".join(self.files[:10]) + ".")
        if self.count > 1:
            lines.append(f"({self.count} faults were injected; this is the first.)")
        return "\n".join(lines)


@dataclass
class Answer:
    """One usable answer (or the reason there is none)."""

    values: dict[str, Any] | None
    explanation: str = ""
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class JobResult:
    """The fields one job produced for one attempt."""

    attempt_id: str
    rubric: str
    rubric_version: str
    fields: dict[str, JudgeField]
    usage: Usage = field(default_factory=Usage)
    # For the first wrong step: the span the result belongs to (the step), if any.
    step_span_id: str | None = None
    step_index: int | None = None


class JudgeInterrupted(Exception):
    """The run was interrupted; `results` holds what finished (its answers are cached)."""

    def __init__(self, results: list[JobResult], total: int) -> None:
        super().__init__(f"interrupted after {len(results)} of {total} judgments")
        self.results = results
        self.total = total


def cited_steps(text: str, transcript: Transcript) -> list[int]:
    """Step indexes cited as [S12] (or S12, or [S3-S6]) that exist in the transcript."""
    valid = len(transcript.steps)
    out: list[int] = []
    for m in _CITATION.finditer(text):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else start
        if end < start or end - start > _MAX_RANGE:
            end = start
        for i in range(start, end + 1):
            if i < valid and i not in out:
                out.append(i)
    return out


def citations_for(text: str, transcript: Transcript) -> list[str]:
    """Span ids of the steps `text` cites."""
    out: list[str] = []
    for i in cited_steps(text, transcript):
        span_id = transcript.steps[i].span_id
        if span_id and span_id not in out:
            out.append(span_id)
    return out


def _value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class Judge:
    """A configured judge: a model client, a cache and the accounting of one run."""

    def __init__(
        self,
        settings: JudgeSettings,
        *,
        cache: JudgeCache | None = None,
        client: ModelClient | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.client = client if client is not None else ModelClient(settings.client)
        self.usage = Usage()
        self._lock = threading.Lock()
        self._context: int | None = settings.context_tokens

    # ------------------------------------------------------------------------ context
    @property
    def context_tokens(self) -> int:
        if self._context is None:
            found = self.client.context_tokens(self.settings.model)
            self._context = found if found else DEFAULT_CONTEXT_TOKENS
        return self._context

    def transcript_budget(self, prompt_without_transcript: Prompt) -> int:
        """Tokens left for the transcript in a prompt: the context less the answer, the rest
        of the prompt and a 5% margin."""
        overhead = sum(
            estimate_tokens(m["content"], self.settings.chars_per_token) + 8
            for m in prompt_without_transcript.messages
        )
        context = self.context_tokens
        budget = context - self.settings.max_tokens - overhead - context // 20
        return max(256, budget)

    # --------------------------------------------------------------------------- calls
    def _account(self, usage: Usage, cached: bool, inp: int | None, out: int | None,
                 cost: float | None) -> None:  # fmt: skip
        inp = inp or 0
        out = out or 0
        with self._lock:
            self._count(self.usage, cached, inp, out, cost)
        self._count(usage, cached, inp, out, cost)

    def _bump(self, usage: Usage, name: str) -> None:
        """One more re-ask / unreadable answer / model error / re-chunk, for the job and the
        run."""
        setattr(usage, name, getattr(usage, name) + 1)
        with self._lock:
            setattr(self.usage, name, getattr(self.usage, name) + 1)

    def _count(self, usage: Usage, cached: bool, inp: int, out: int, cost: float | None) -> None:
        if cached:
            usage.cache_hits += 1
            usage.cached_input_tokens += inp
            usage.cached_output_tokens += out
            return
        usage.model_calls += 1
        usage.input_tokens += inp
        usage.output_tokens += out
        if cost is not None:
            usage.cost_usd += cost
        else:
            s = self.settings
            if s.price_input_per_mtok is not None:
                usage.cost_usd += inp * s.price_input_per_mtok / 1e6
            if s.price_output_per_mtok is not None:
                usage.cost_usd += out * s.price_output_per_mtok / 1e6

    def complete(
        self,
        messages: Sequence[dict[str, str]],
        schema: dict[str, Any] | None,
        schema_name: str,
        rubric_key: str,
        sample: int,
        usage: Usage,
    ) -> str:
        """One model answer's text, from the cache or the model (ModelError when neither)."""
        s = self.settings
        seed = s.seed + sample if s.seed is not None else None
        sampling = {
            "temperature": s.temperature,
            "seed": seed,
            "max_tokens": s.max_tokens,
            "sample": sample,
        }
        key = call_key(s.model, list(messages), rubric_key, sampling)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self._account(usage, True, hit.input_tokens, hit.output_tokens, hit.cost_usd)
                return hit.response
        result = self.client.chat(
            s.model,
            messages,
            schema=schema,
            schema_name=schema_name,
            temperature=s.temperature,
            seed=seed,
            max_tokens=s.max_tokens,
        )
        self._account(usage, False, result.input_tokens, result.output_tokens, result.cost_usd)
        if self.cache is not None:
            self.cache.put(
                key,
                model=s.model,
                rubric=rubric_key,
                response=result.text,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                cost_usd=result.cost_usd,
                mode=result.mode,
            )
        return result.text

    def ask(
        self,
        prompt: Prompt,
        rubric_key: str,
        sample: int,
        usage: Usage,
        fields: Sequence[OutputField] | None = None,
    ) -> Answer:
        """One parsed answer: the model's reply checked against the fields, with one re-ask
        when it cannot be read. ContextOverflow propagates (the caller re-chunks)."""
        fields = list(prompt.fields if fields is None else fields)
        try:
            text = self.complete(
                prompt.messages, prompt.schema, prompt.schema_name, rubric_key, sample, usage
            )
        except ContextOverflow:
            raise
        except ModelError as exc:
            self._bump(usage, "model_errors")
            return Answer(None, error=f"model error: {exc}")
        try:
            values = parse_answer(text, fields)
        except ParseError as first:
            if not self.settings.reask:
                self._bump(usage, "unparseable")
                return Answer(None, error=f"unparseable answer: {first}")
            self._bump(usage, "reasks")
            retry = (
                *prompt.messages,
                {"role": "assistant", "content": text[:2000]},
                {
                    "role": "user",
                    "content": f"That answer could not be used: {first}. Reply again with only "
                    "the JSON object, with exactly the keys asked for.",
                },
            )
            try:
                text = self.complete(
                    retry, prompt.schema, prompt.schema_name, rubric_key, sample, usage
                )
                values = parse_answer(text, fields)
            except ContextOverflow:
                self._bump(usage, "unparseable")
                return Answer(None, error=f"unparseable answer: {first}")
            except ModelError as exc:
                self._bump(usage, "model_errors")
                return Answer(None, error=f"model error on the re-ask: {exc}")
            except ParseError as second:
                self._bump(usage, "unparseable")
                return Answer(None, error=f"unparseable answer after one re-ask: {second}")
        explanation = str(values.pop("explanation", ""))
        return Answer(values, explanation=explanation)

    # ------------------------------------------------------------------------- rubrics
    def _samples(
        self, prompt: Prompt, rubric_key: str, usage: Usage
    ) -> tuple[list[Answer], list[str]]:
        answers: list[Answer] = []
        errors: list[str] = []
        for i in range(max(1, self.settings.samples)):
            answer = self.ask(prompt, rubric_key, i, usage)
            if answer.values is None:
                errors.append(answer.error or "no answer")
            else:
                answers.append(answer)
        return answers, errors

    def judge_rubric(
        self,
        transcript: Transcript,
        rubric: Rubric,
        outcome: Outcome | None = None,
        fault: InjectedFault | None = None,
    ) -> JobResult:
        """Every field of `rubric` for one transcript (`fault` is shown only to a rubric with
        ``sees_fault``, `outcome` only to one with ``sees_outcome``)."""
        usage = Usage()
        if self.settings.explanation_chars is not None:
            rubric = dataclasses.replace(rubric, explanation_chars=self.settings.explanation_chars)
        if not transcript.has_content:
            reason = (
                "no content was recorded on the spans (capture content with "
                "capture_content=True or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT; "
                "import trajectories with `agentsignals import --content`)"
            )
            return self._unjudged(transcript, rubric, reason, usage, chunks=0)
        outcome_text = ""
        if rubric.sees_outcome:
            outcome_text = "\n\n## Outcome (the verifier's result)\n" + (
                outcome.text() if outcome is not None else "unknown"
            )
        if rubric.sees_fault:
            outcome_text += "\n\n## Fault injected (by the harness; the agent was not told)\n" + (
                fault.text(transcript) if fault is not None else "none"
            )
        empty = rubric_prompt(rubric, outcome_text)
        budget = self.transcript_budget(empty)
        chunks: list[Chunk] = []
        verdicts: list[_ChunkVerdict] = []
        for _ in range(5):
            chunks = chunk_transcript(
                transcript, budget, chars_per_token=self.settings.chars_per_token
            )
            try:
                verdicts = [
                    self._judge_chunk(rubric, chunk, outcome_text, usage) for chunk in chunks
                ]
                break
            except ContextOverflow:
                self._bump(usage, "rechunked")
                budget = max(128, int(budget * 0.6))
        else:
            reason = (
                "the transcript did not fit the model's context even split into "
                f"{len(chunks)} parts (budget {budget} tokens)"
            )
            return self._unjudged(transcript, rubric, reason, usage, chunks=len(chunks))
        fields = {f.name: self._reduce(f, verdicts, transcript, rubric) for f in rubric.fields}
        return JobResult(transcript.attempt_id, rubric.id, rubric.version, fields, usage)

    def _judge_chunk(
        self, rubric: Rubric, chunk: Chunk, outcome_text: str, usage: Usage
    ) -> _ChunkVerdict:
        prompt = rubric_prompt(rubric, chunk.text + outcome_text, chunk.index + 1, chunk.total)
        answers, errors = self._samples(prompt, rubric.key, usage)
        return vote(rubric.fields, answers, errors, chunk)

    def _unjudged(
        self, transcript: Transcript, rubric: Rubric, reason: str, usage: Usage, chunks: int
    ) -> JobResult:
        fields = {
            f.name: JudgeField(
                value=None,
                status="could_not_judge",
                reason=reason,
                model=self.settings.model,
                rubric_version=rubric.version,
                temperature=self.settings.temperature,
                seed=self.settings.seed,
                chunks=chunks,
                chunks_judged=0,
                method="rubric",
            )
            for f in rubric.fields
        }
        return JobResult(transcript.attempt_id, rubric.id, rubric.version, fields, usage)

    def _reduce(
        self,
        f: OutputField,
        verdicts: list[_ChunkVerdict],
        transcript: Transcript,
        rubric: Rubric,
    ) -> JudgeField:
        value, supporting, reason = reduce_field(f, verdicts)
        judged = [v for v in verdicts if v.values is not None]
        base: dict[str, Any] = dict(
            model=self.settings.model,
            rubric_version=rubric.version,
            temperature=self.settings.temperature,
            seed=self.settings.seed,
            chunks=len(verdicts),
            chunks_judged=len(judged),
            method="rubric",
        )
        if reason is not None:
            return JudgeField(value=None, status="could_not_judge", reason=reason, **base)
        many = len(verdicts) > 1
        explanation = " ".join(
            (f"[part {v.chunk.index + 1}/{v.chunk.total}] " if many else "") + v.explanation
            for v in supporting
            if v.explanation
        ).strip()
        agreements = [v.agreement[f.name] for v in supporting if f.name in v.agreement]
        samples = min((v.samples for v in supporting), default=0)
        return JudgeField(
            value=value,
            explanation=explanation or None,
            citations=citations_for(explanation, transcript),
            samples=samples,
            agreement=round(min(agreements), 4) if agreements else None,
            **base,
        )

    # ----------------------------------------------------------------------------- run
    def run(
        self,
        jobs: Sequence[Callable[[], JobResult]],
        *,
        progress: Callable[[int, int, Usage], None] | None = None,
    ) -> list[JobResult]:
        """Run judgment jobs `concurrency` at a time. Ctrl-C (KeyboardInterrupt) cancels what
        has not started and raises JudgeInterrupted with what finished."""
        results: list[JobResult] = []
        total = len(jobs)
        if progress is not None:
            progress(0, total, self.usage)
        pool = ThreadPoolExecutor(max_workers=max(1, self.settings.concurrency))
        pending: set[Future[JobResult]] = set()
        iterator = iter(jobs)
        try:
            # Keep a bounded window in flight so an interrupt does not leave thousands queued.
            window = max(1, self.settings.concurrency) * 2
            for job in iterator:
                pending.add(pool.submit(job))
                if len(pending) >= window:
                    break
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    results.append(result)
                    if progress is not None:
                        progress(len(results), total, self.usage)
                    nxt = next(iterator, None)
                    if nxt is not None:
                        pending.add(pool.submit(nxt))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise JudgeInterrupted(results, total) from None
        pool.shutdown(wait=True)
        return results


# --------------------------------------------------------------------------------- voting


@dataclass
class _ChunkVerdict:
    chunk: Chunk
    values: dict[str, Any] | None
    explanation: str = ""
    agreement: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    error: str | None = None


def vote(
    fields: Sequence[OutputField], answers: list[Answer], errors: list[str], chunk: Chunk
) -> _ChunkVerdict:
    """The samples of one chunk combined: per field the most common value (ties: the earliest
    sample's); the explanation of the sample that agrees with the most fields."""
    if not answers:
        reason = "; ".join(sorted(set(errors))) or "no answer"
        return _ChunkVerdict(chunk, None, error=reason)
    chosen: dict[str, Any] = {}
    agreement: dict[str, float] = {}
    for f in fields:
        keys = [_value_key(a.values[f.name]) for a in answers if a.values is not None]
        counts = Counter(keys)
        best = max(counts.values())
        winner = next(k for k in keys if counts[k] == best)
        chosen[f.name] = json.loads(winner)
        agreement[f.name] = best / len(keys)
    best_answer = max(
        answers,
        key=lambda a: sum(
            _value_key((a.values or {}).get(f.name)) == _value_key(chosen[f.name]) for f in fields
        ),
    )
    return _ChunkVerdict(chunk, chosen, best_answer.explanation, agreement, samples=len(answers))


def reduce_field(
    f: OutputField, verdicts: Sequence[_ChunkVerdict]
) -> tuple[Any, list[_ChunkVerdict], str | None]:
    """(value, the chunk verdicts that support it, reason it cannot be known or None)."""
    judged = [v for v in verdicts if v.values is not None]
    failed = [v for v in verdicts if v.values is None]
    if not judged:
        reasons = "; ".join(sorted({v.error or "no answer" for v in failed}))
        return None, [], f"no part could be judged ({reasons})"
    missing = (
        f"{len(failed)} of {len(verdicts)} parts could not be judged "
        f"({'; '.join(sorted({v.error or 'no answer' for v in failed}))[:300]})"
    )
    values = [v.values[f.name] for v in judged if v.values is not None]
    how = f.reducer
    if how == "any":
        hits = [v for v in judged if v.values and v.values[f.name] is True]
        if hits:
            return True, hits, None
        return (False, judged, None) if not failed else (None, [], missing)
    if how == "all":
        misses = [v for v in judged if v.values and v.values[f.name] is False]
        if misses:
            return False, misses, None
        return (True, judged, None) if not failed else (None, [], missing)
    if how == "majority":
        keys = [_value_key(x) for x in values]
        counts = Counter(keys).most_common()
        top_key, top = counts[0]
        second = counts[1][1] if len(counts) > 1 else 0
        if failed and top <= second + len(failed):
            return None, [], missing
        if top == second:
            top_key = next(k for k in keys if Counter(keys)[k] == top)
        support = [v for v in judged if v.values and _value_key(v.values[f.name]) == top_key]
        return json.loads(top_key), support, None
    if failed:
        return None, [], missing
    if how in ("max", "min"):
        pick = max(values) if how == "max" else min(values)
        support = [v for v in judged if v.values and v.values[f.name] == pick]
        return pick, support[:1], None
    if how == "first":
        return values[0], judged[:1], None
    if how == "last":
        return values[-1], judged[-1:], None
    if how == "union":
        merged: list[str] = []
        for value in values:
            for item in value:
                if item not in merged:
                    merged.append(item)
        return merged, judged, None
    # join
    if len(values) == 1:
        return values[0], judged, None
    return (
        " ".join(f"[part {v.chunk.index + 1}] {v.values[f.name]}" for v in judged if v.values),
        judged,
        None,
    )
