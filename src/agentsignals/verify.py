"""Merge verifier outcomes (SWE-bench reports) and gold-patch localization into feature records.

    from agentsignals import verify

    result = verify.verify(
        ["agentsignals-output/traces"],          # traces, or feature files (attempts.jsonl)
        reports=["logs/run_evaluation/my_run"],  # report.json, run-level reports, results.json
        dataset="swe-bench-lite.json",           # JSON, JSON lines or Parquet rows
    )
    for record in result.attempts:
        print(record.task_id, record.verification.patch_outcome_label,
              record.behavior.localized_correct_file)
    print(result.summary())            # matched, matched no trace, ambiguous, labels

Outcomes that match no trace are in `result.unmatched`; nothing is dropped silently.
`write_verification_spans(result, folder)` writes each outcome as a span under its attempt
(OTLP/JSON lines), with a `gen_ai.evaluation.result` event, so trace viewers show it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec

from agentsignals import semconv as sc
from agentsignals._classify.outcome import outcome_attributes
from agentsignals._features.record import AttemptRecord, TrialRecord, supersedes
from agentsignals._features.store import read_records
from agentsignals._verify.merge import VerifyResult, localize, merge
from agentsignals._verify.swebench import (
    LABELS,
    GoldTask,
    Outcome,
    load_dataset,
    load_outcomes,
    parse_patch,
    patch_outcome_label,
)

__all__ = [
    "LABELS",
    "GoldTask",
    "Outcome",
    "VerifyResult",
    "load_dataset",
    "load_outcomes",
    "load_records",
    "localize",
    "merge",
    "parse_patch",
    "patch_outcome_label",
    "verify",
    "write_verification_spans",
]

PathArg = str | os.PathLike[str]


def _is_feature_file(path: Path) -> bool:
    if path.name in ("attempts.jsonl", "trials.jsonl"):
        return True
    try:
        with path.open("rb") as fh:
            head = fh.readline(1 << 20)
    except OSError:
        return False
    return b'"attempt_id"' in head and b'"behavior"' in head


def load_records(
    inputs: PathArg | Iterable[PathArg],
) -> tuple[list[AttemptRecord], list[TrialRecord], list[str]]:
    """Attempt and trial records from feature files (attempts.jsonl/trials.jsonl, or any JSON
    lines of attempt records) and from traces (derived on the fly); plus problems found."""
    from agentsignals import features

    paths = [Path(inputs)] if isinstance(inputs, str | os.PathLike) else [Path(p) for p in inputs]
    attempts: dict[str, AttemptRecord] = {}
    trials: dict[str, TrialRecord] = {}
    problems: list[str] = []
    trace_paths: list[Path] = []
    for path in paths:
        if path.is_dir() and (path / "attempts.jsonl").exists():
            a, t = read_records(path)
        elif path.is_file() and _is_feature_file(path):
            a, t = _read_feature_file(path, problems)
        else:
            trace_paths.append(path)
            continue
        attempts.update({r.attempt_id: r for r in a})
        trials.update({r.trial_id: r for r in t})
    if trace_paths:
        derived = features.extract(trace_paths)
        problems.extend(str(p) for p in derived.problems)
        attempts.update({r.attempt_id: r for r in derived.attempts})
        trials.update({r.trial_id: r for r in derived.trials})
    return list(attempts.values()), list(trials.values()), problems


def _read_feature_file(
    path: Path, problems: list[str]
) -> tuple[list[AttemptRecord], list[TrialRecord]]:
    attempt_decoder = msgspec.json.Decoder(AttemptRecord)
    trial_decoder = msgspec.json.Decoder(TrialRecord)
    attempts: dict[str, AttemptRecord] = {}
    trials: dict[str, TrialRecord] = {}
    with path.open("rb") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                if b'"attempt_id"' in line.split(b'"first_attempt"', 1)[0]:
                    record = attempt_decoder.decode(line)
                    old = attempts.get(record.attempt_id)
                    if old is None or supersedes(record, old):
                        attempts[record.attempt_id] = record
                else:
                    trial = trial_decoder.decode(line)
                    old_trial = trials.get(trial.trial_id)
                    if old_trial is None or supersedes(trial, old_trial):
                        trials[trial.trial_id] = trial
            except msgspec.DecodeError as exc:
                problems.append(f"{path}:{line_no}: not a feature record: {exc}")
    return list(attempts.values()), list(trials.values())


def verify(
    inputs: PathArg | Iterable[PathArg],
    *,
    reports: PathArg | Iterable[PathArg] | None = None,
    dataset: PathArg | None = None,
    outcomes: Iterable[Outcome] = (),
    run_id: str | None = None,
) -> VerifyResult:
    """Load records (from traces or feature files), reports and the dataset, and merge them.

    The result carries the outcomes of the reports given here (and outcomes recorded in
    process): outcomes an earlier `verify` wrote as spans into the folder being read are
    dropped first, so a report that no longer covers an instance leaves it unverified. With
    `run_id`, the reports are that run's: only its attempts are matched, and a leaderboard
    results.json marks the run's unlisted instances unresolved (see `merge`)."""
    attempts, trials, problems = load_records(inputs)
    attempts = [_without_report_outcome(r) for r in attempts]
    report_problems: list[object] = []
    loaded = list(outcomes)
    if reports is not None:
        loaded += load_outcomes(reports, problems=report_problems)  # type: ignore[arg-type]
    gold: dict[str, GoldTask] | None = None
    if dataset is not None:
        gold = load_dataset(dataset, problems=report_problems)  # type: ignore[arg-type]
    result = merge(attempts, loaded, gold, trials, run_id=run_id)
    result.problems = problems + [str(p) for p in report_problems]
    return result


_OUTCOME_FIELDS = (
    "reward",
    "patch_outcome_label",
    "patch_outcome_label_reason",
    "fail_to_pass_count",
    "pass_to_fail_count",
    "pass_to_pass_count",
    "fail_to_fail_count",
    "patch_applies",
    "unverifiable_reason",
    "outcome_source",
)


def _without_report_outcome(record: AttemptRecord) -> AttemptRecord:
    """The record without an outcome taken from a report (an earlier verify's spans); an
    outcome the agent recorded in process stays."""
    v = record.verification
    if v.outcome_source is None or v.outcome_source == "in_process":
        return record
    cleared = msgspec.structs.replace(v, **dict.fromkeys(_OUTCOME_FIELDS))
    return msgspec.structs.replace(record, verification=cleared)


def write_verification_spans(result: VerifyResult, directory: PathArg) -> Path:
    """Write one verification span per matched outcome, as a child of its attempt span, to a
    new OTLP/JSON lines file in `directory`; returns its path. `agentsignals features` and
    trace viewers that read the folder pick them up with the run."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time_ns()
    spans = []
    for record in result.attempts:
        v = record.verification
        if v.outcome_source is None or record.trace_id is None or record.span_id is None:
            continue
        attributes, event = outcome_attributes(
            reward=v.reward,
            label=v.patch_outcome_label,
            fail_to_pass=v.fail_to_pass_count,
            fail_to_fail=v.fail_to_fail_count,
            pass_to_pass=v.pass_to_pass_count,
            pass_to_fail=v.pass_to_fail_count,
            patch_applies=v.patch_applies,
            unverifiable_reason=v.unverifiable_reason,
            source=v.outcome_source,
        )
        attributes.update(
            {
                sc.AGENT_SIGNALS_SPAN_TYPE: sc.SpanType.VERIFICATION.value,
                sc.AGENT_SIGNALS_ATTEMPT_ID: record.attempt_id,
                sc.AGENT_SIGNALS_TASK_ID: record.task_id or "",
            }
        )
        if record.trial_id is not None:
            attributes[sc.AGENT_SIGNALS_TRIAL_ID] = record.trial_id
        if record.attempt_index is not None:
            attributes[sc.AGENT_SIGNALS_ATTEMPT_INDEX] = record.attempt_index
        spans.append(
            {
                "traceId": record.trace_id,
                # One id per (attempt, report): writing the same outcome again (verify run
                # twice into the folder it reads) is the same span, deduplicated by readers.
                "spanId": hashlib.blake2b(
                    f"{record.attempt_id}\x1f{v.outcome_source}".encode(), digest_size=8
                ).hexdigest(),
                "parentSpanId": record.span_id,
                "name": f"verify {record.task_id}",
                "kind": 1,
                "startTimeUnixNano": str(now),
                "endTimeUnixNano": str(now),
                "attributes": _otlp_attributes(attributes),
                "events": [
                    {
                        "timeUnixNano": str(now),
                        "name": sc.EVENT_GEN_AI_EVALUATION_RESULT,
                        "attributes": _otlp_attributes(event),
                    }
                ],
            }
        )
    resource = {"attributes": _otlp_attributes({"service.name": "agentsignals-verify"})}
    scope = {"scope": {"name": "agentsignals"}, "schemaUrl": sc.SCHEMA_URL, "spans": spans}
    request = {"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]}
    path = folder / f"verify-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # owner-only, as traces
    with os.fdopen(fd, "wb") as fh:
        fh.write(msgspec.json.encode(request) + b"\n")
    return path


def _otlp_attributes(values: dict[str, object]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for key, value in values.items():
        if isinstance(value, bool):
            any_value: dict[str, object] = {"boolValue": value}
        elif isinstance(value, int):
            any_value = {"intValue": str(value)}
        elif isinstance(value, float):
            any_value = {"doubleValue": value}
        else:
            any_value = {"stringValue": str(value)}
        out.append({"key": key, "value": any_value})
    return out
