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


LABEL_REASON_NO_TEST_DETAIL = "resolved_only"
"""`patch_outcome_label_reason` when the report says only resolved or not (no test counts)."""


def merge(
    attempts: Sequence[AttemptRecord],
    outcomes: Iterable[Outcome],
    gold: Mapping[str, GoldTask] | None = None,
    trials: Sequence[TrialRecord] = (),
    *,
    run_id: str | None = None,
) -> VerifyResult:
    """New records with `verification.*` (and, given the dataset, localization) filled in.

    Outcomes apply only where a report covers them: an instance a report does not list is
    never marked. With `run_id`, the reports are the outcomes of that run: only its attempts
    are candidates (others pass through untouched), and a leaderboard `results.json`, which
    lists the resolved instances only, marks the run's unlisted instances unresolved (reward 0,
    label null with `patch_outcome_label_reason`). Without `run_id` nothing is inferred from
    absence."""
    records = {r.attempt_id: msgspec.structs.replace(r) for r in attempts}
    for record in records.values():
        record.verification = msgspec.structs.replace(record.verification)
        record.behavior = msgspec.structs.replace(record.behavior)
        record.anticipation = msgspec.structs.replace(record.anticipation)
    by_task: dict[str, list[AttemptRecord]] = defaultdict(list)
    for record in records.values():
        if record.task_id is None:
            continue
        if run_id is not None and record.run_id != run_id:
            continue  # another run's attempt: these reports do not cover it
        by_task[record.task_id].append(record)
    result = VerifyResult()
    leaderboard_sources: set[str] = set()
    verified_tasks: set[str] = set()
    for outcome in outcomes:
        if outcome.run_id is not None and run_id is not None and outcome.run_id != run_id:
            continue  # the report names another run
        if outcome.listed_only:
            leaderboard_sources.add(outcome.source)
        target = _match(outcome, by_task.get(outcome.instance_id, []), result)
        if target is not None:
            _apply(target, outcome)
            result.matched.append((outcome, target.attempt_id))
            verified_tasks.add(outcome.instance_id)
    for source in sorted(leaderboard_sources):
        if run_id is None:
            result.notes.append(
                f"{source} lists resolved instances only: traces it does not list are left "
                "without an outcome (give the run id, verify --run-id, to mark that run's "
                "unlisted instances unresolved)"
            )
            continue
        # The leaderboard is this run's: an instance of the run it does not list was
        # submitted and not resolved. It says nothing more: no label.
        for task_id, candidates in sorted(by_task.items()):
            if task_id in verified_tasks:
                continue
            last = _last_attempt(candidates)
            v = last.verification
            v.reward = 0.0
            v.outcome_source = source
            v.patch_outcome_label_reason = LABEL_REASON_NO_TEST_DETAIL
            result.notes.append(f"{task_id}: not listed in {source}: unresolved (reward 0)")
        break  # one leaderboard file marks the absent ones; several would repeat it
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
    """The attempt whose patch the harness evaluates: the last top-level attempt (a subagent,
    which a manager agent started, never submits for the trial)."""
    top = [r for r in candidates if r.parent_attempt_id is None] or candidates
    return max(top, key=lambda r: (r.attempt_index or 0, r.started_at_ns or 0))


def _match(
    outcome: Outcome, candidates: list[AttemptRecord], result: VerifyResult
) -> AttemptRecord | None:
    if not candidates:
        result.unmatched.append(outcome)
        return None
    pool = [r for r in candidates if r.parent_attempt_id is None] or candidates
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
    if len({r.attempt_id for r in pool if r.parent_attempt_id is None}) > 1:
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
    v.patch_outcome_label_reason = (
        LABEL_REASON_NO_TEST_DETAIL
        if outcome.label is None and outcome.reward is not None
        else None
    )
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
    read_step = edit_step = None
    for i, category in enumerate(categories):
        files = list(stated[i]) if i < len(stated) else []
        step_changed = changed[i] if changed is not None and i < len(changed) else []
        touched_here = files + list(step_changed)
        hits = any(_in_gold(f, gold) for f in touched_here)
        if read_step is None and category in _READ_CATEGORIES and hits:
            read_step = i
        is_edit = category == "edit" or bool(step_changed)
        if edit_step is None and is_edit and hits:
            edit_step = i
    b.first_gold_read_step = read_step
    b.first_gold_edit_step = edit_step
    # The inventory's definition: the first file of the diff against the pre-attempt snapshot
    # (touched_files, in the order the agent first edited them) is a gold file. A scratch
    # file the agent created and removed is not in the diff, so it cannot be "first".
    if b.touched_files:
        b.localized_correct_file = _in_gold(b.touched_files[0], gold)
        if b.created_files is not None:
            existing = [f for f in b.touched_files if f not in b.created_files]
            b.localized_correct_existing_file = _in_gold(existing[0], gold) if existing else None
    if b.touched_files is not None and gold:
        record.anticipation.scope_drift = len(b.touched_files) / len(gold)


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
