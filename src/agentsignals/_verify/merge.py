"""Merge verifier outcomes and gold-patch localization into feature records.

Matching is by instance id (the trial's task id). When an instance ran more than once, a
report's run id (`agent_signals.run.id`) or attempt index narrows the candidates; a report
for a trial with several attempts applies to its last attempt, the one whose patch the
harness evaluates. An outcome that matches no trace, or more than one trial, is reported,
never dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import msgspec

from agentsignals._features.record import AttemptRecord, TrialRecord
from agentsignals._verify.swebench import GoldTask, Outcome

_READ_CATEGORIES = ("read", "search")


@dataclass
class VerifyResult:
    """Records with outcomes merged, and an account of what matched and what did not."""

    attempts: list[AttemptRecord] = field(default_factory=list)
    trials: list[TrialRecord] = field(default_factory=list)
    matched: list[tuple[Outcome, str]] = field(default_factory=list)  # (outcome, attempt id)
    unmatched: list[Outcome] = field(default_factory=list)  # no trace for the instance
    ambiguous: list[tuple[Outcome, list[str]]] = field(default_factory=list)  # several trials
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        labels: dict[str, int] = defaultdict(int)
        for record in self.attempts:
            if record.verification.patch_outcome_label is not None:
                labels[record.verification.patch_outcome_label] += 1
        parts = [
            f"{len(self.matched)} outcomes matched",
            f"{len(self.unmatched)} matched no trace",
            f"{len(self.ambiguous)} ambiguous",
        ]
        if labels:
            parts.append(", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        return "; ".join(parts)


def merge(
    attempts: Sequence[AttemptRecord],
    outcomes: Iterable[Outcome],
    gold: Mapping[str, GoldTask] | None = None,
    trials: Sequence[TrialRecord] = (),
) -> VerifyResult:
    """New records with `verification.*` (and, given the dataset, localization) filled in."""
    records = {r.attempt_id: msgspec.structs.replace(r) for r in attempts}
    for record in records.values():
        record.verification = msgspec.structs.replace(record.verification)
        record.behavior = msgspec.structs.replace(record.behavior)
        record.anticipation = msgspec.structs.replace(record.anticipation)
    by_task: dict[str, list[AttemptRecord]] = defaultdict(list)
    for record in records.values():
        if record.task_id is not None:
            by_task[record.task_id].append(record)
    result = VerifyResult()
    leaderboard_sources: set[str] = set()
    verified_tasks: set[str] = set()
    for outcome in outcomes:
        if PurePosixPath(outcome.source.replace("\\", "/")).name == "results.json":
            leaderboard_sources.add(outcome.source)
        target = _match(outcome, by_task.get(outcome.instance_id, []), result)
        if target is not None:
            _apply(target, outcome)
            result.matched.append((outcome, target.attempt_id))
            verified_tasks.add(outcome.instance_id)
    if leaderboard_sources:
        # A leaderboard results.json lists the resolved instances (and a few failure kinds):
        # an instance it does not list was submitted and not resolved.
        source = sorted(leaderboard_sources)[0]
        for task_id, candidates in by_task.items():
            if task_id not in verified_tasks:
                last = _last_attempt(candidates)
                last.verification.reward = 0.0
                last.verification.outcome_source = source
                result.notes.append(f"{task_id}: not listed in {source}: unresolved (reward 0)")
    if gold:
        for record in records.values():
            task = gold.get(record.task_id or "")
            if task is not None:
                localize(record, task)
    result.attempts = sorted(
        records.values(), key=lambda r: (r.started_at_ns or 0, r.attempt_index or 0)
    )
    result.trials = [_retrial(t, records) for t in trials]
    return result


def _last_attempt(candidates: list[AttemptRecord]) -> AttemptRecord:
    return max(candidates, key=lambda r: (r.attempt_index or 0, r.started_at_ns or 0))


def _match(
    outcome: Outcome, candidates: list[AttemptRecord], result: VerifyResult
) -> AttemptRecord | None:
    if not candidates:
        result.unmatched.append(outcome)
        return None
    pool = candidates
    if outcome.run_id is not None and any(r.run_id for r in pool):
        pool = [r for r in pool if r.run_id == outcome.run_id]
    if outcome.attempt_index is not None:
        pool = [r for r in pool if r.attempt_index == outcome.attempt_index]
    if not pool:
        result.unmatched.append(outcome)
        return None
    trials = sorted({r.trial_id or r.attempt_id for r in pool})
    if len(trials) > 1:
        result.ambiguous.append((outcome, trials))
        return None
    target = _last_attempt(pool)
    if len(pool) > 1:
        result.notes.append(
            f"{outcome.instance_id}: one outcome for {len(pool)} attempts of a trial: applied to "
            f"attempt {target.attempt_index} (the last, whose patch the harness evaluates)"
        )
    return target


def _apply(record: AttemptRecord, outcome: Outcome) -> None:
    v = record.verification
    v.reward = outcome.reward
    v.patch_outcome_label = outcome.label
    v.fail_to_pass_count = outcome.fail_to_pass
    v.fail_to_fail_count = outcome.fail_to_fail
    v.pass_to_pass_count = outcome.pass_to_pass
    v.pass_to_fail_count = outcome.pass_to_fail
    v.patch_applies = outcome.patch_applies
    v.unverifiable_reason = outcome.unverifiable_reason
    v.outcome_source = outcome.source
    # The seed's no_effect_patch needs touched_files: a report that saw no test change on a
    # patch that applied is no_effect only if the attempt changed files.
    if (
        v.patch_outcome_label == "no_effect_patch"
        and record.behavior.touched_files is not None
        and not record.behavior.touched_files
    ):
        v.patch_outcome_label = "unverifiable"
        v.unverifiable_reason = v.unverifiable_reason or "empty_patch"


def _in_gold(path: str, gold: frozenset[str]) -> bool:
    """Agent paths may be absolute (/testbed/pkg/x.py) or relative (./pkg/x.py)."""
    path = path.replace("\\", "/").removeprefix("./")
    if path in gold:
        return True
    return any(path.endswith("/" + g) for g in gold)


def localize(record: AttemptRecord, task: GoldTask) -> None:
    """Fill the gold-patch localization signals of one attempt record."""
    gold = frozenset(task.gold_files)
    b = record.behavior
    b.gold_files = list(task.gold_files)
    categories = b.tool_category_sequence or []
    stated = b.step_files or [[] for _ in categories]
    changed = b.step_changed_files
    read_step = edit_step = first_named = None
    for i, category in enumerate(categories):
        files = list(stated[i]) if i < len(stated) else []
        step_changed = changed[i] if changed is not None and i < len(changed) else []
        touched_here = files + list(step_changed)
        if first_named is None and touched_here:
            first_named = i
        hits = any(_in_gold(f, gold) for f in touched_here)
        if read_step is None and category in _READ_CATEGORIES and hits:
            read_step = i
        is_edit = category == "edit" or bool(step_changed)
        if edit_step is None and is_edit and hits:
            edit_step = i
    b.first_gold_read_step = read_step
    b.first_gold_edit_step = edit_step
    first_edit = b.first_edit_step
    if first_edit is not None and first_edit < len(categories):
        edit_files = list(stated[first_edit]) if first_edit < len(stated) else []
        if changed is not None and first_edit < len(changed):
            edit_files += changed[first_edit]
        b.localized_correct_file = (
            any(_in_gold(f, gold) for f in edit_files) if edit_files else None
        )
    a = record.anticipation
    if first_named is not None:
        first_files = list(stated[first_named]) + (
            list(changed[first_named]) if changed is not None and first_named < len(changed) else []
        )
        a.first_tool_precision = any(_in_gold(f, gold) for f in first_files)
    if b.touched_files is not None and gold:
        a.scope_drift = len(b.touched_files) / len(gold)


def _retrial(trial: TrialRecord, records: Mapping[str, AttemptRecord]) -> TrialRecord:
    first = records.get(trial.first_attempt.attempt_id) if trial.first_attempt else None
    retries = [records.get(r.attempt_id, r) for r in trial.retries]
    attempts = [a for a in [first, *retries] if a is not None]
    rewards = [(a.attempt_index, a.verification.reward) for a in attempts]
    known = [(i, r) for i, r in rewards if r is not None]
    resolved = next((i for i, r in known if r >= 1.0), None)
    return msgspec.structs.replace(
        trial,
        first_attempt=first,
        retries=retries,
        final_reward=known[-1][1] if known else None,
        resolved_on_attempt=resolved,
    )
