"""Outcomes and test runs as span attributes: the one place that decides their shape.

Used in process (`attempt.record_outcome`, a test tool's result) and by `agentsignals verify`
when it writes verification spans, so both look the same to the feature extraction.
"""

from __future__ import annotations

from typing import Any

from agentsignals import semconv as sc

# Test names on a span are capped: a full Django run names thousands; counts stay exact.
MAX_TEST_NAMES = 1000
EVALUATION_NAME = "agent_signals.patch_outcome"


def outcome_attributes(
    *,
    resolved: bool | None = None,
    reward: float | None = None,
    label: str | None = None,
    fail_to_pass: int | None = None,
    fail_to_fail: int | None = None,
    pass_to_pass: int | None = None,
    pass_to_fail: int | None = None,
    patch_applies: bool | None = None,
    unverifiable_reason: str | None = None,
    source: str | None = None,
    patch: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(span attributes, gen_ai.evaluation.result event attributes) for one outcome.

    `patch=False` is for tasks that are not code changes (a scored answer): the reward is
    kept, but no patch outcome label is derived from it.
    """
    from agentsignals._verify.swebench import LABELS, patch_outcome_label

    if reward is None and resolved is not None:
        reward = 1.0 if resolved else 0.0
    known = (fail_to_pass, fail_to_fail, pass_to_fail)
    if label is None and patch:
        if any(v is not None for v in known) or patch_applies is False or unverifiable_reason:
            label, reason = patch_outcome_label(
                patch_applies=patch_applies,
                fail_to_pass=fail_to_pass,
                fail_to_fail=fail_to_fail,
                pass_to_fail=pass_to_fail,
                infra_failure_reason=unverifiable_reason,
            )
            unverifiable_reason = unverifiable_reason or reason
        elif reward == 1.0:
            label = "correct_patch"
    if label is not None and label not in LABELS:
        raise ValueError(f"unknown patch outcome label {label!r}; use one of {LABELS}")
    attributes = {
        sc.AGENT_SIGNALS_VERIFY_REWARD: float(reward) if reward is not None else None,
        sc.AGENT_SIGNALS_VERIFY_PATCH_OUTCOME_LABEL: label,
        sc.AGENT_SIGNALS_VERIFY_FAIL_TO_PASS_COUNT: fail_to_pass,
        sc.AGENT_SIGNALS_VERIFY_FAIL_TO_FAIL_COUNT: fail_to_fail,
        sc.AGENT_SIGNALS_VERIFY_PASS_TO_PASS_COUNT: pass_to_pass,
        sc.AGENT_SIGNALS_VERIFY_PASS_TO_FAIL_COUNT: pass_to_fail,
        sc.AGENT_SIGNALS_VERIFY_PATCH_APPLIES: patch_applies,
        sc.AGENT_SIGNALS_VERIFY_UNVERIFIABLE_REASON: unverifiable_reason,
        sc.AGENT_SIGNALS_VERIFY_SOURCE: source,
    }
    attributes = {k: v for k, v in attributes.items() if v is not None}
    event: dict[str, Any] = {sc.GEN_AI_EVALUATION_NAME: EVALUATION_NAME}
    if reward is not None:
        event[sc.GEN_AI_EVALUATION_SCORE_VALUE] = float(reward)
    if label is not None:
        event[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
    explanation = _explain(fail_to_pass, fail_to_fail, pass_to_fail, unverifiable_reason)
    if explanation:
        event[sc.GEN_AI_EVALUATION_EXPLANATION] = explanation
    return attributes, event


def _explain(f2p: int | None, f2f: int | None, p2f: int | None, reason: str | None) -> str:
    parts = []
    if f2p is not None and f2f is not None:
        parts.append(f"{f2p} of {f2p + f2f} FAIL_TO_PASS tests pass")
    if p2f is not None:
        parts.append(f"{p2f} regressions")
    if reason:
        parts.append(f"unverifiable: {reason}")
    return "; ".join(parts)


def test_run_attributes(output: str | bytes, *, junit: bool = False) -> dict[str, Any]:
    """Span attributes for a test run parsed from console output or JUnit XML; {} when the
    text is not recognisable test output."""
    from agentsignals._verify.testlog import parse_junit_xml, parse_test_output

    if junit:
        run = parse_junit_xml(output)
    else:
        text = output if isinstance(output, str) else output.decode("utf-8", "replace")
        run = parse_test_output(text)
    if run is None:
        return {}
    counts = run.counts
    failed = [*run.failed, *run.errors]
    return {
        sc.AGENT_SIGNALS_TEST_FRAMEWORK: run.framework,
        sc.AGENT_SIGNALS_TEST_PASSED_COUNT: counts.get("passed", len(run.passed)),
        sc.AGENT_SIGNALS_TEST_FAILED_COUNT: counts.get("failed", len(run.failed)),
        sc.AGENT_SIGNALS_TEST_ERROR_COUNT: counts.get("errors", len(run.errors)),
        sc.AGENT_SIGNALS_TEST_SKIPPED_COUNT: counts.get("skipped", len(run.skipped)),
        sc.AGENT_SIGNALS_TEST_PASSED: list(run.passed[:MAX_TEST_NAMES]),
        sc.AGENT_SIGNALS_TEST_FAILED: failed[:MAX_TEST_NAMES],
        sc.AGENT_SIGNALS_TEST_COMPLETE: run.complete,
    }
