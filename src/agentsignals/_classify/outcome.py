"""Outcomes and test runs as span attributes: the one place that decides their shape.

Used in process (`attempt.record_outcome`, a test tool's result) and by `agentsignals verify`
when it writes verification spans, so both look the same to the feature extraction.
"""

from __future__ import annotations

from typing import Any, Final

from agentsignals import semconv as sc

CORRECT_PATCH: Final = "correct_patch"
PARTIAL_PATCH: Final = "partial_patch"
REGRESSIVE_PATCH: Final = "regressive_patch"
NO_EFFECT_PATCH: Final = "no_effect_patch"
UNVERIFIABLE: Final = "unverifiable"
LABELS: Final[tuple[str, ...]] = (
    CORRECT_PATCH,
    PARTIAL_PATCH,
    REGRESSIVE_PATCH,
    NO_EFFECT_PATCH,
    UNVERIFIABLE,
)


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
    from agentsignals._classify.testlog import parse_junit_xml, parse_test_output

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


def patch_outcome_label(
    *,
    patch_applies: bool | None,
    fail_to_pass: int | None,
    fail_to_fail: int | None,
    pass_to_fail: int | None,
    touched_files_nonempty: bool | None = None,
    infra_failure_reason: str | None = None,
) -> tuple[str, str | None]:
    """``(label, unverifiable_reason)`` by the seed's definitions; the reason is None unless the
    label is ``unverifiable``.

    Checked in this order:

    - ``infra_failure_reason`` (any non-empty text: ``"harness_error"``, ``"timeout"``,
      ``"infra_failure: <reason>"``, ...) -> ``unverifiable`` with that reason, verbatim: the
      verifier did not run properly, so the counts (if any) mean nothing.
    - ``touched_files_nonempty is False`` -> ``unverifiable`` / ``"empty_patch"``: no patch to
      judge, and ``no_effect_patch`` requires touched files.
    - ``patch_applies is False`` -> ``unverifiable`` / ``"patch_apply_failed"``.
    - ``fail_to_pass > 0`` and (``fail_to_fail > 0`` or ``pass_to_fail > 0``) ->
      ``partial_patch`` (some but not all target tests fixed, or fixes with regressions).
    - ``pass_to_fail > 0`` and ``fail_to_pass == 0`` -> ``regressive_patch``.
    - ``pass_to_fail == 0``, ``fail_to_pass == 0``, ``fail_to_fail > 0`` -> ``no_effect_patch``
      (the patch applied, no test result changed).
    - ``pass_to_fail == 0``, ``fail_to_fail == 0`` -> ``correct_patch``. This includes an
      instance with no FAIL_TO_PASS tests at all (0/0), which the harness resolves (reward 1.0).
    - Otherwise (a count the decision needs is None) -> ``unverifiable`` /
      ``"missing_test_counts"``. ``patch_applies`` None is fine when counts are given: counts
      only exist for a patch that applied.

    Counts must be non-negative ints (ValueError otherwise).
    """
    for name, value in (
        ("fail_to_pass", fail_to_pass),
        ("fail_to_fail", fail_to_fail),
        ("pass_to_fail", pass_to_fail),
    ):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")
    if infra_failure_reason:
        return UNVERIFIABLE, infra_failure_reason
    if touched_files_nonempty is False:
        return UNVERIFIABLE, "empty_patch"
    if patch_applies is False:
        return UNVERIFIABLE, "patch_apply_failed"
    f2p, f2f, p2f = fail_to_pass, fail_to_fail, pass_to_fail
    if (
        f2p is not None
        and f2p > 0
        and ((f2f is not None and f2f > 0) or (p2f is not None and p2f > 0))
    ):
        return PARTIAL_PATCH, None
    if p2f is not None and p2f > 0 and f2p == 0:
        return REGRESSIVE_PATCH, None
    if p2f == 0 and f2p is not None and f2f is not None:
        if f2p == 0 and f2f > 0:
            return NO_EFFECT_PATCH, None
        return CORRECT_PATCH, None
    return UNVERIFIABLE, "missing_test_counts"
